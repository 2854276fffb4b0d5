"""The endpoint's pure parts: which operation a request is, the one error builder, faults."""

from __future__ import annotations

import io
import json
import threading
import time
from typing import Any
from xml.etree import ElementTree

import pytest

from audit_stack.local.http.errors import ApiError, error_response, not_emulated
from audit_stack.local.http.operations import Operation, identify
from audit_stack.local.instruments.faults import DYNAMODB_WRITE_FAULTS, Faults, InjectedFault

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


def test_fixed_fault_of_one_function_fails_only_its_invocations() -> None:
    faults = Faults()
    recorder = Operation(
        "lambda", "Invoke", "rest", function_name="arn:aws:lambda:r:1:function:rec"
    )
    publisher = Operation("lambda", "Invoke", "rest", function_name="pub")

    with faults.fixed("lambda:Invoke", error_code="ServiceException", function_name="rec"):
        injected = faults.apply(recorder)
        assert faults.apply(publisher) is None

    assert injected is not None
    assert (injected.error.code, injected.error.status) == (
        "ServiceException",
        "500 Internal Server Error",
    )
    assert faults.apply(recorder) is None


def test_fixed_latency_is_released_when_the_block_ends() -> None:
    faults = Faults()
    put = Operation("dynamodb", "PutItem", "json")
    answers: list[Any] = []
    with faults.fixed("dynamodb:PutItem", error_code="InternalServerError", latency=30):
        held = threading.Thread(target=lambda: answers.append(faults.apply(put)))
        started = time.monotonic()
        held.start()
        time.sleep(0.1)
    held.join(5)

    # Lifted before the latency ended: the request goes through, as a recovered network's would.
    assert answers == [None]
    assert time.monotonic() - started < 5


def test_seeded_faults_repeat_with_the_same_seed() -> None:
    def decisions(seed: int) -> list[str | None]:
        faults = Faults()
        put = Operation("dynamodb", "PutItem", "json")
        with faults.seeded("dynamodb:PutItem", rate=0.5, faults=DYNAMODB_WRITE_FAULTS, seed=seed):
            outcomes = [faults.apply(put) for _ in range(40)]
        return [outcome.label if outcome else None for outcome in outcomes]

    first = decisions(7)

    assert first == decisions(7)
    assert 0 < sum(label is not None for label in first) < 40


def test_fault_arguments_are_checked() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="error_code, a latency"):
        faults.fixed("dynamodb:PutItem", error_code=None).__enter__()
    with pytest.raises(ValueError, match="service:Operation"):
        faults.fixed("PutItem", error_code="X").__enter__()
    with pytest.raises(ValueError, match="rate"):
        faults.seeded("dynamodb:PutItem", rate=2, faults=[InjectedFault("X")], seed=0).__enter__()
