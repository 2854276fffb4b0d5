"""The transport's pure parts: which operation a request is, and the one error builder."""

from __future__ import annotations

import io
import json
from typing import Any
from xml.etree import ElementTree

from audit_stack.local.http.errors import ApiError, error_response, not_emulated
from audit_stack.local.http.operations import Operation, identify

SCOPE = "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/{service}/aws4_request, ..."


def environ(
    service: str | None,
    *,
    method: str = "POST",
    path: str = "/",
    target: str | None = None,
    form: str | None = None,
) -> dict[str, Any]:
    body = (form or "").encode()
    found: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    if service is not None:
        found["HTTP_AUTHORIZATION"] = SCOPE.format(service=service)
    if target is not None:
        found["HTTP_X_AMZ_TARGET"] = target
        found["CONTENT_TYPE"] = "application/x-amz-json-1.0"
    if form is not None:
        found["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    return found


def test_json_protocol_operation_comes_from_the_target() -> None:
    operation = identify(environ("dynamodb", target="DynamoDB_20120810.PutItem"), b"{}")

    assert (operation.action, operation.protocol, operation.region) == (
        "dynamodb:PutItem",
        "json",
        "eu-west-1",
    )


def test_query_protocol_operation_comes_from_the_action() -> None:
    body = b"Action=DescribeStacks&Version=2010-05-15"
    operation = identify(environ("cloudformation", form=body.decode()), body)

    assert (operation.action, operation.protocol) == ("cloudformation:DescribeStacks", "query")


def test_lambda_invoke_and_other_lambda_paths_are_named() -> None:
    invoke = identify(
        environ("lambda", path="/2015-03-31/functions/arn%3Aaws%3Alambda%3Ax/invocations"), b""
    )
    get_function = identify(environ("lambda", method="GET", path="/2015-03-31/functions/f"), b"")

    assert (invoke.action, invoke.function_name) == ("lambda:Invoke", "arn:aws:lambda:x")
    assert get_function.action == "lambda:GetFunction"


def test_unsigned_requests_are_the_emulators_own() -> None:
    assert identify(environ(None, path="/moto-api/reset"), b"").action == "emulator:unsigned"


def test_one_error_builder_answers_in_each_protocol() -> None:
    error = ApiError("ThrottlingException", "slow down <now>")

    as_json = error_response(Operation("dynamodb", "PutItem", "json"), error)
    as_query = error_response(Operation("sns", "Publish", "query"), error)
    as_rest = error_response(Operation("lambda", "Invoke", "rest"), error)

    assert json.loads(as_json.body) == {"__type": "ThrottlingException", "message": error.message}
    parsed = ElementTree.fromstring(as_query.body)
    assert parsed.findtext("Error/Code") == "ThrottlingException"
    assert parsed.findtext("Error/Message") == "slow down <now>"
    assert ("x-amzn-ErrorType", "ThrottlingException") in as_rest.headers
    assert {as_json.status, as_query.status, as_rest.status} == {"400 Bad Request"}


def test_not_emulated_names_the_service_the_operation_and_what_is_answered() -> None:
    error = not_emulated(Operation("lambda", "GetFunction", "rest"), frozenset({"Invoke"}))

    assert error.status.startswith("501")
    assert "lambda:GetFunction is not emulated" in error.message
    assert "Invoke" in error.message
