"""The one builder of AWS error answers, in the protocol of the request (JSON with a target,
query/XML, or REST with an error-type header), for every error the emulator answers itself."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from xml.sax.saxutils import escape

from audit_stack.local.http.operations import Operation


@dataclass(frozen=True)
class Response:
    """One HTTP answer, complete."""

    status: str
    headers: list[tuple[str, str]]
    body: bytes


class ApiError(Exception):
    """An error answer of an API the emulator implements itself (code and message as AWS's)."""

    def __init__(self, code: str, message: str, status: str = "400 Bad Request") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Injected:
    """An error the endpoint answers instead of performing a request, or after performing it
    (an injected fault: the endpoint applies it, instruments decide it and count it)."""

    error: ApiError
    after_request: bool
    label: str


NOT_EMULATED_STATUS = "501 Not Implemented"
NOT_EMULATED_CODE = "NotImplemented"


def not_emulated(operation: Operation, supported: frozenset[str]) -> ApiError:
    """The uniform answer to an API that the emulator does not reproduce."""
    offered = f"; it answers {', '.join(sorted(supported))}" if supported else ""
    return ApiError(
        NOT_EMULATED_CODE,
        f"{operation.action} is not emulated by LocalAuditPipeline{offered}",
        NOT_EMULATED_STATUS,
    )


def error_response(operation: Operation, error: ApiError) -> Response:
    """``error`` written in ``operation``'s protocol, as AWS would answer it."""
    request_id = str(uuid.uuid4())
    if operation.protocol == "json":
        document = {"__type": error.code, "message": error.message}
        return Response(
            error.status,
            [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-RequestId", request_id)],
            json.dumps(document).encode(),
        )
    if operation.protocol == "query":
        xml = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return Response(
            error.status,
            [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)],
            xml.encode(),
        )
    return Response(
        error.status,
        [
            ("Content-Type", "application/json"),
            ("x-amzn-ErrorType", error.code),
            ("x-amzn-RequestId", request_id),
        ],
        json.dumps({"Type": "User", "message": error.message}).encode(),
    )
