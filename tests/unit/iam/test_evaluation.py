"""The policy evaluator decides as AWS's policy evaluation logic documents it.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
"""

from __future__ import annotations

from typing import Any

import pytest

from audit_stack.iam import Decision, Request, UnsupportedPolicyError, evaluate, validate

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Writer"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/Other"
FOREIGN_ROLE = "arn:aws:iam::444455556666:role/Foreign"
QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:audit"
TABLE = f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Audit"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd"
TOPIC = f"arn:aws:sns:eu-west-1:{ACCOUNT}:events"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any = "*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(request: Request, **kwargs: Any) -> Decision:
    return evaluate(request, **kwargs).decision


def test_a_request_no_policy_allows_is_implicitly_denied() -> None:
    """Evaluation logic: "By default, all requests are implicitly denied"."""
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    assert decide(request, identity_policies=[policy()]) is Decision.IMPLICIT_DENY


def test_an_identity_policy_allow_allows_in_the_same_account() -> None:
    """Evaluation logic: an allow in an identity-based policy allows within the account."""
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    allowed = evaluate(request, identity_policies=[policy(allow("sqs:SendMessage", QUEUE))])
    assert allowed.decision is Decision.ALLOWED
    assert "identity policy #1" in allowed.reason


def test_an_explicit_deny_in_a_resource_policy_beats_an_identity_allow() -> None:
    """Evaluation logic: "An explicit deny in any policy overrides any allows"."""
    request = Request(ROLE, "dynamodb:UpdateItem", TABLE)
    evaluation = evaluate(
        request,
        identity_policies=[policy(allow())],
        resource_policy=policy(
            {**deny("dynamodb:UpdateItem"), "Principal": "*", "Sid": "AppendOnly"}
        ),
    )
    assert evaluation.decision is Decision.EXPLICIT_DENY
    assert "AppendOnly" in evaluation.reason


def test_an_explicit_deny_in_an_identity_policy_beats_a_resource_policy_allow() -> None:
    """Evaluation logic: a deny in any policy type wins over an allow in another."""
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    decision = decide(
        request,
        identity_policies=[policy(deny("sqs:*"))],
        resource_policy=policy({**allow("sqs:SendMessage"), "Principal": {"AWS": ROLE}}),
    )
    assert decision is Decision.EXPLICIT_DENY


def test_a_resource_policy_naming_the_principal_allows_without_an_identity_policy() -> None:
    """Resource-based policies, same account: "the request is allowed if either the
    identity-based policy or the resource-based policy allows it".
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policies_resource-based.html
    """
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    resource_policy = policy({**allow("sqs:SendMessage", QUEUE), "Principal": {"AWS": [ROLE]}})
    assert decide(request, resource_policy=resource_policy) is Decision.ALLOWED
    other = Request(OTHER_ROLE, "sqs:SendMessage", QUEUE)
    assert decide(other, resource_policy=resource_policy) is Decision.IMPLICIT_DENY


def test_a_resource_policy_naming_the_account_only_delegates_to_identity_policies() -> None:
    """Policy evaluation for resource-based policies: a statement naming the account root
    delegates to the account's IAM policies instead of allowing its principals by itself.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    """
    resource_policy = policy(
        {**allow("sqs:SendMessage"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}}
    )
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    assert decide(request, resource_policy=resource_policy) is Decision.IMPLICIT_DENY
    assert (
        decide(request, resource_policy=resource_policy, identity_policies=[policy(allow())])
        is Decision.ALLOWED
    )


def test_a_resource_policy_deny_naming_the_account_applies_to_each_of_its_principals() -> None:
    """Principal element: an account principal in a Deny covers every principal in it."""
    resource_policy = policy({**deny("sqs:SendMessage"), "Principal": {"AWS": ACCOUNT}})
    request = Request(ROLE, "sqs:SendMessage", QUEUE)
    assert (
        decide(request, resource_policy=resource_policy, identity_policies=[policy(allow())])
        is Decision.EXPLICIT_DENY
    )


def test_a_principal_of_another_account_needs_both_policies() -> None:
    """Cross-account policy evaluation logic: both the identity policy in the trusted account
    and the resource policy must allow.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
    """
    request = Request(FOREIGN_ROLE, "sns:Publish", TOPIC)
    resource_policy = policy({**allow("sns:Publish"), "Principal": {"AWS": FOREIGN_ROLE}})
    identity = [policy(allow("sns:Publish"))]
    kwargs: dict[str, Any] = {"resource_account": ACCOUNT}
    assert decide(request, resource_policy=resource_policy, **kwargs) is Decision.IMPLICIT_DENY
    assert decide(request, identity_policies=identity, **kwargs) is Decision.IMPLICIT_DENY
    assert (
        decide(request, identity_policies=identity, resource_policy=resource_policy, **kwargs)
        is Decision.ALLOWED
    )


def test_a_key_policy_must_allow_or_enable_iam_policies() -> None:
    """KMS key policies: "Unless the key policy explicitly allows it, you cannot use IAM
    policies to allow access to a KMS key".
    https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html
    """
    request = Request(ROLE, "kms:Sign", KEY)
    administrator = [policy(allow())]
    only_sealer = policy({**allow("kms:Sign"), "Principal": {"AWS": OTHER_ROLE}})
    assert (
        decide(
            request, identity_policies=administrator, resource_policy=only_sealer, key_policy=True
        )
        is Decision.IMPLICIT_DENY
    )
    enables_iam = policy({**allow("kms:*"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    assert (
        decide(
            request, identity_policies=administrator, resource_policy=enables_iam, key_policy=True
        )
        is Decision.ALLOWED
    )
    assert decide(request, resource_policy=enables_iam, key_policy=True) is Decision.IMPLICIT_DENY


def test_a_service_principal_is_allowed_only_by_a_statement_naming_it() -> None:
    """Principal element, AWS service principals: a resource policy grants a service by its
    service principal name.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
    """
    resource_policy = policy(
        {
            **allow("sqs:SendMessage", QUEUE),
            "Principal": {"Service": "sns.amazonaws.com"},
            "Condition": {"ArnEquals": {"aws:SourceArn": TOPIC}},
        }
    )
    ours = Request("sns.amazonaws.com", "sqs:SendMessage", QUEUE, {"aws:SourceArn": TOPIC})
    theirs = Request("sns.amazonaws.com", "sqs:SendMessage", QUEUE, {"aws:SourceArn": TOPIC + "2"})
    other_service = Request(
        "events.amazonaws.com", "sqs:SendMessage", QUEUE, {"aws:SourceArn": TOPIC}
    )
    assert decide(ours, resource_policy=resource_policy) is Decision.ALLOWED
    assert decide(theirs, resource_policy=resource_policy) is Decision.IMPLICIT_DENY
    assert decide(other_service, resource_policy=resource_policy) is Decision.IMPLICIT_DENY


def test_not_action_applies_to_every_action_but_the_listed_ones() -> None:
    """NotAction: "matches everything except the specified list of actions".
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notaction.html
    """
    identity = [policy({"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": "*"})]
    assert decide(Request(ROLE, "dynamodb:PutItem", TABLE), identity_policies=identity) is (
        Decision.ALLOWED
    )
    assert decide(Request(ROLE, "dynamodb:DeleteItem", TABLE), identity_policies=identity) is (
        Decision.IMPLICIT_DENY
    )


def test_not_resource_applies_to_every_resource_but_the_listed_ones() -> None:
    """NotResource: the statement matches every resource except those listed.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notresource.html
    """
    identity = [
        policy(allow()),
        policy({"Effect": "Deny", "Action": "dynamodb:*", "NotResource": f"{TABLE}*"}),
    ]
    assert decide(Request(ROLE, "dynamodb:PutItem", TABLE), identity_policies=identity) is (
        Decision.ALLOWED
    )
    other_table = TABLE.replace("Audit", "Other")
    assert decide(Request(ROLE, "dynamodb:PutItem", other_table), identity_policies=identity) is (
        Decision.EXPLICIT_DENY
    )


def test_not_principal_applies_to_everyone_but_the_listed_principal() -> None:
    """NotPrincipal with Deny: every principal except those listed is denied.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
    """
    resource_policy = policy({**deny("kms:Sign"), "NotPrincipal": {"AWS": [ROLE]}})
    identity = [policy(allow())]
    assert (
        decide(
            Request(ROLE, "kms:Sign", KEY),
            identity_policies=identity,
            resource_policy=resource_policy,
        )
        is Decision.ALLOWED
    )
    assert (
        decide(
            Request(OTHER_ROLE, "kms:Sign", KEY),
            identity_policies=identity,
            resource_policy=resource_policy,
        )
        is Decision.EXPLICIT_DENY
    )


@pytest.mark.parametrize(
    ("pattern", "action", "matches"),
    [
        ("sqs:*", "sqs:SendMessage", True),
        ("SQS:sendmessage", "sqs:SendMessage", True),  # actions are case-insensitive
        ("dynamodb:Put*", "dynamodb:PutItem", True),
        ("dynamodb:Partiql?nsert", "dynamodb:PartiQLInsert", True),
        ("dynamodb:Put*", "dynamodb:UpdateItem", False),
        ("*", "kms:Sign", True),
    ],
)
def test_actions_match_with_wildcards_and_without_case(
    pattern: str, action: str, matches: bool
) -> None:
    """Action element: wildcards ``*`` and ``?``; "action names are case-insensitive".
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html
    """
    identity = [policy(allow(pattern))]
    expected = Decision.ALLOWED if matches else Decision.IMPLICIT_DENY
    assert decide(Request(ROLE, action, TABLE), identity_policies=identity) is expected


@pytest.mark.parametrize(
    ("pattern", "matches"),
    [
        (TABLE, True),
        (f"{TABLE}*", True),
        (f"arn:aws:dynamodb:*:{ACCOUNT}:table/Audit", True),
        (f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/audit", False),  # case-sensitive
        (f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/A?dit", True),
        (f"arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/Other", False),
    ],
)
def test_resources_match_with_wildcards_and_case(pattern: str, matches: bool) -> None:
    """Resource element: wildcards in ARNs; ARNs are case-sensitive.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html
    """
    identity = [policy(allow("dynamodb:PutItem", pattern))]
    expected = Decision.ALLOWED if matches else Decision.IMPLICIT_DENY
    assert decide(Request(ROLE, "dynamodb:PutItem", TABLE), identity_policies=identity) is expected


def test_a_policy_variable_in_a_resource_takes_the_request_value() -> None:
    """Policy variables: ``${aws:...}`` is replaced by the request context's value.
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html
    """
    identity = [policy(allow("sqs:SendMessage", "arn:aws:sqs:*:*:${aws:PrincipalAccount}*"))]
    assert (
        decide(
            Request(ROLE, "sqs:SendMessage", f"arn:aws:sqs:eu-west-1:{ACCOUNT}:{ACCOUNT}-q"),
            identity_policies=identity,
        )
        is Decision.ALLOWED
    )
    assert (
        decide(Request(ROLE, "sqs:SendMessage", QUEUE), identity_policies=identity)
        is Decision.IMPLICIT_DENY
    )


def test_a_policy_the_evaluator_cannot_decide_is_refused() -> None:
    """Better refused than guessed: an unknown operator or a resource statement without a
    principal is an error naming it."""
    with pytest.raises(UnsupportedPolicyError, match="StringSounds"):
        validate(
            policy(allow(Condition={"StringSounds": {"aws:PrincipalArn": "x"}})),
            resource_policy=False,
        )
    with pytest.raises(UnsupportedPolicyError, match="needs a Principal"):
        validate(policy(allow()), resource_policy=True)
