"""STS GetCallerIdentity answered as the caller the emulator knows (its principal), not moto's
placeholder user: ``audit redact`` records who redacted, and must see the role it runs as.

As on AWS, the call needs no permission (IAM never denies it), and a role's session answers with
its assumed-role ARN (``arn:aws:sts::ACCOUNT:assumed-role/NAME/SESSION``).
"""

from __future__ import annotations

import re
import uuid
from xml.etree import ElementTree

from audit_stack.local.access.identities import Identities
from audit_stack.local.http.errors import Response
from audit_stack.local.http.operations import Environ, Operation

__all__ = ["SESSION_NAME", "CallerIdentityApi"]

_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"
_ROLE = re.compile(
    r"^arn:(?P<partition>[^:]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)$"
)
SESSION_NAME = "audit-local"
"""The session name of the outside principal's (role's) calls."""


class CallerIdentityApi:
    """Answers ``sts:GetCallerIdentity``; moto answers every other STS operation."""

    OPERATIONS = frozenset({"GetCallerIdentity"})
    EXCLUSIVE = False

    def __init__(self, identities: Identities, account_id: str) -> None:
        self._identities = identities
        self._account_id = account_id

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        del operation, body
        caller = self._identities.of_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        arn = caller.principal_arn
        role = _ROLE.match(arn)
        if role is not None:
            arn = (
                f"arn:{role['partition']}:sts::{role['account']}:assumed-role/"
                f"{role['name']}/{SESSION_NAME}"
            )
        elif not arn.startswith("arn:"):
            arn = f"arn:aws:iam::{self._account_id}:root"  # the emulator's own calls
        response = ElementTree.Element("GetCallerIdentityResponse", xmlns=_NAMESPACE)
        result = ElementTree.SubElement(response, "GetCallerIdentityResult")
        for tag, text in (
            ("Arn", arn),
            ("UserId", "AROALOCAL:" + SESSION_NAME),
            ("Account", self._account_id),
        ):
            ElementTree.SubElement(result, tag).text = text
        metadata = ElementTree.SubElement(response, "ResponseMetadata")
        ElementTree.SubElement(metadata, "RequestId").text = str(uuid.uuid4())
        return Response(
            "200 OK",
            [("Content-Type", "text/xml")],
            ElementTree.tostring(response, encoding="utf-8"),
        )
