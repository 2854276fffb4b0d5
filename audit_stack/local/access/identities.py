"""Callers of the emulator by access key id: each function (as its execution role), each event
source mapping's poller (as its function's role), the emulator itself, and everyone else (the
configured outside principal)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

INTERNAL_ACCESS_KEY_ID = "LOCALEMULATORSELF"
"""The emulator's own requests (deployment, message move tasks): CloudFormation and SQS acting
as services, which IAM does not stop."""
OUTSIDE_ACCESS_KEY_ID = "testing"
"""What a caller outside the emulator signs with (the CLI's and AWS CLI's dummy key): any key
the emulator did not hand out is the outside principal."""
SECRET_ACCESS_KEY = "testing"
_CREDENTIAL = re.compile(r"Credential=(?P<key>[^/,\s]+)/")


def default_administrator(account_id: str) -> str:
    """The outside principal unless told otherwise: an administrator role of the account."""
    return f"arn:aws:iam::{account_id}:role/Administrator"


@dataclass(frozen=True)
class Caller:
    """The identity behind an access key."""

    principal_arn: str
    source_function_arn: str | None = None
    """lambda:SourceFunctionArn: set on a function's own calls, not on its poller's"""
    internal: bool = False


def access_key_id(kind: str, name: str) -> str:
    """A stable, AWS-shaped temporary access key id for a function or a poller."""
    digest = hashlib.sha256(f"{kind}:{name}".encode()).hexdigest()[:16].upper()
    return f"ASIA{digest}"


def credentials(key_id: str) -> dict[str, str]:
    """The environment variables of a worker that calls as ``key_id``."""
    return {
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": "testing",
    }


class Identities:
    """Access key id -> caller."""

    def __init__(self, outside_principal: str) -> None:
        self.outside = Caller(outside_principal)
        self._callers: dict[str, Caller] = {
            INTERNAL_ACCESS_KEY_ID: Caller("emulator", internal=True)
        }

    def add_function(self, function_arn: str, role_arn: str) -> str:
        """Register a function's own calls; the access key id its workers use."""
        key = access_key_id("function", function_arn)
        self._callers[key] = Caller(role_arn, source_function_arn=function_arn)
        return key

    def add_poller(self, mapping_uuid: str, role_arn: str) -> str:
        """Register an event source mapping's polling (as the function's role)."""
        key = access_key_id("event-source-mapping", mapping_uuid)
        self._callers[key] = Caller(role_arn)
        return key

    def of_key(self, key_id: str | None) -> Caller:
        return self._callers.get(key_id or "", self.outside)

    def of_authorization(self, authorization: str) -> Caller:
        """The caller of a signed request, from its Authorization header."""
        match = _CREDENTIAL.search(authorization)
        return self.of_key(match.group("key") if match else None)
