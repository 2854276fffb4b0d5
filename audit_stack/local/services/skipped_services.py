"""Services whose every resource in the template was skipped answer ``NotImplemented``.

moto would answer them as if the account were empty (EventBridge ``ListRules``: no rules, IAM
``GetRole``: not found, Logs ``DescribeLogGroups``: no groups), a success or a "not found" that the
deployed stack would never give. An honest local API either works with the template's resources
or says it is not emulated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

from audit_stack.local.http.errors import Response
from audit_stack.local.http.operations import Environ, Operation

__all__ = ["SkippedServiceApi", "skipped_services"]

# A CloudFormation service namespace whose API signs with another name.
_SIGNING_NAMES: Final[Mapping[str, str]] = {"cloudwatch": "monitoring"}
# Template-only types with no API behind them, and services the emulator answers itself.
_NO_API: Final = frozenset({"cdk", "cloudformation", "lambda"})


def _service(resource_type: str) -> str:
    namespace = resource_type.split("::")[1].lower()
    return _SIGNING_NAMES.get(namespace, namespace)


def skipped_services(
    deployed_types: Iterable[str], skipped_types: Iterable[str]
) -> dict[str, list[str]]:
    """Signing name -> the skipped resource types of each service with nothing deployed."""
    deployed = {_service(kind) for kind in deployed_types}
    services: dict[str, set[str]] = {}
    for kind in skipped_types:
        service = _service(kind)
        if service not in deployed and service not in _NO_API:
            services.setdefault(service, set()).add(kind)
    return {service: sorted(kinds) for service, kinds in sorted(services.items())}


class SkippedServiceApi:
    """Every operation of a service the emulator skipped answers ``NotImplemented`` (HTTP 501)."""

    OPERATIONS: frozenset[str] = frozenset()
    EXCLUSIVE = True

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        raise AssertionError("no operation is answered: the endpoint refuses them all")
