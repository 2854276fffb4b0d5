"""The emulator's enforcement decisions on a policy store built by hand: a customer managed key
is part of every SQS/SNS call to what it encrypts, and denials answer in each service's shape."""

from __future__ import annotations

import json

from audit_stack.iam import Policy
from audit_stack.local.access.enforcer import Enforcer
from audit_stack.local.access.identities import Caller, Identities
from audit_stack.local.access.policies import PolicyStore
from audit_stack.local.access.requests import Target
from audit_stack.local.http.operations import Operation

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Writer"
QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:audit"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1111"
SEND_ONLY = {"Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}]}
SEND_AND_KEY = {
    "Statement": [
        *SEND_ONLY["Statement"],
        {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": KEY},
    ]
}
ENABLE_IAM = {
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
}


def enforcer(identity: Policy) -> Enforcer:
    store = PolicyStore(ACCOUNT)
    store.role_policies[ROLE] = [identity]
    store.key_policies[KEY] = ENABLE_IAM
    store.encryption_keys[QUEUE] = KEY
    return Enforcer(store, Identities(f"arn:aws:iam::{ACCOUNT}:role/Administrator"), region=REGION)


def test_sending_to_an_encrypted_queue_also_needs_the_key() -> None:
    """SQS server-side encryption with a customer managed key: producers need
    kms:GenerateDataKey and kms:Decrypt
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-key-management.html)."""
    denial = enforcer(SEND_ONLY).check(Caller(ROLE), Target("sqs:SendMessage", QUEUE))
    assert denial is not None
    assert denial.action == "kms:GenerateDataKey"
    assert denial.resource == KEY
    assert enforcer(SEND_AND_KEY).check(Caller(ROLE), Target("sqs:SendMessage", QUEUE)) is None


def test_a_denied_request_answers_in_the_services_own_error_shape() -> None:
    """SQS: AccessDenied (403); DynamoDB: AccessDeniedException (400)
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/CommonErrors.html,
    https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html)."""
    checker = enforcer(SEND_ONLY)
    key = checker.identities.add_function("arn:aws:lambda:::function:f", ROLE)
    environ = {"HTTP_AUTHORIZATION": f"AWS4-HMAC-SHA256 Credential={key}/d/{REGION}/x/aws4"}
    body = json.dumps({"QueueUrl": f"http://127.0.0.1/{ACCOUNT}/audit"}).encode()
    denied = checker.authorize(Operation("sqs", "ReceiveMessage", "json", REGION), environ, body)
    assert denied is not None
    assert (denied.code, denied.status) == ("AccessDenied", "403 Forbidden")
    assert ROLE in denied.message
    table = json.dumps({"TableName": "Audit"}).encode()
    denied = checker.authorize(Operation("dynamodb", "PutItem", "json", REGION), environ, table)
    assert denied is not None
    assert (denied.code, denied.status) == ("AccessDeniedException", "400 Bad Request")


def test_enforcement_off_and_the_emulators_own_calls_are_never_checked() -> None:
    """``enforce_iam=False`` and the emulator's own key let everything through."""
    checker = enforcer(SEND_ONLY)
    environ = {"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=LOCALEMULATORSELF/d/r/s/aws4"}
    operation = Operation("dynamodb", "DeleteTable", "json", REGION)
    body = json.dumps({"TableName": "Audit"}).encode()
    assert checker.authorize(operation, environ, body) is None
    outside = {"HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/d/r/s/aws4"}
    checker.enabled = False
    store = checker.store
    store.resource_policies[f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/Audit"] = {
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "*", "Resource": "*"}]
    }
    assert checker.authorize(operation, outside, body) is None
    checker.enabled = True
    assert checker.authorize(operation, outside, body) is not None
