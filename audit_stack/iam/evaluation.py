"""Whether a request is allowed, from the identity policies of its principal and the resource
policy of its resource, as AWS's policy evaluation logic decides it.

https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policies_
  resource-based.html (same-account: identity OR resource policy; cross-account: both)
https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-overview.html (a key policy must
  allow, itself or by delegating to the account's IAM policies)

1. An explicit Deny in any applicable policy wins.
2. Otherwise, in the resource's account, an Allow in the identity policies or a resource-policy
   Allow naming the principal (or ``*``) allows. A resource-policy Allow naming the account
   (``arn:aws:iam::ACCOUNT:root`` or ``ACCOUNT``) only delegates to the identity policies.
   For a KMS key, the key policy must allow: naming the principal, or delegating to the
   account's identity policies. A principal of another account needs both.
3. Otherwise the request is implicitly denied.

Not evaluated here: SCPs/RCPs, permission boundaries, session policies (the emulator's callers
have none) and policy variables other than request context keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from audit_stack.iam.conditions import check_operator, conditions_hold
from audit_stack.iam.errors import UnsupportedPolicyError
from audit_stack.iam.matching import action_matches, arn_matches

_ARN_ACCOUNT = re.compile(r"^arn:aws[a-z-]*:(iam|sts)::(?P<account>\d{12}):")
_VARIABLE = re.compile(r"\$\{([^}]+)\}")
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)

Policy = Mapping[str, Any]
"""A policy document: ``{"Version": ..., "Statement": [...]}``."""


class Decision(Enum):
    ALLOWED = "allowed"
    EXPLICIT_DENY = "explicitly denied"
    IMPLICIT_DENY = "not allowed"


@dataclass(frozen=True)
class Request:
    """One request as IAM sees it.

    :param principal: the caller: an IAM ARN (a role, user or ``...:root``) or a service
        principal (``sns.amazonaws.com``).
    :param context: condition keys (any case) -> value or values. ``aws:PrincipalArn`` and
        ``aws:PrincipalAccount`` are added from ``principal`` when it is an IAM ARN.
    """

    principal: str
    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)

    @property
    def principal_account(self) -> str | None:
        match = _ARN_ACCOUNT.match(self.principal)
        return match.group("account") if match else None

    @property
    def is_service(self) -> bool:
        return not self.principal.startswith("arn:")

    def condition_context(self) -> dict[str, list[str]]:
        values: dict[str, list[str]] = {}
        if not self.is_service:
            values["aws:principalarn"] = [self.principal]
            if self.principal_account is not None:
                values["aws:principalaccount"] = [self.principal_account]
        else:
            values["aws:principalservicename"] = [self.principal]
        for key, value in self.context.items():
            values[key.lower()] = [value] if isinstance(value, str) else list(value)
        return values


@dataclass(frozen=True)
class Evaluation:
    decision: Decision
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision is Decision.ALLOWED


@dataclass(frozen=True)
class _Match:
    """A statement that applies to the request, and where it was found."""

    effect: str
    where: str
    sid: str | None
    delegates: bool = False
    """resource policy only: the statement names the caller's account, not the caller"""

    def describe(self) -> str:
        return f"{self.where}" + (f" (statement {self.sid})" if self.sid else "")


def statements(policy: Policy) -> list[Mapping[str, Any]]:
    raw = policy.get("Statement", [])
    return list(raw) if isinstance(raw, list) else [raw]


def validate(policy: Policy, *, resource_policy: bool) -> None:
    """Raise UnsupportedPolicyError if a statement uses what the evaluator cannot decide."""
    for statement in statements(policy):
        unknown = set(statement) - _STATEMENT_KEYS
        if unknown:
            raise UnsupportedPolicyError(f"policy statement element(s) {sorted(unknown)} unknown")
        if statement.get("Effect") not in {"Allow", "Deny"}:
            raise UnsupportedPolicyError(f"policy statement Effect {statement.get('Effect')!r}")
        has_principal = "Principal" in statement or "NotPrincipal" in statement
        if has_principal != resource_policy:
            where = "a resource policy" if resource_policy else "an identity policy"
            raise UnsupportedPolicyError(
                f"{where} statement {'needs' if resource_policy else 'cannot have'} a Principal"
            )
        for operator in statement.get("Condition", {}):
            check_operator(operator)


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _substitute(pattern: str, context: Mapping[str, list[str]]) -> str:
    """Policy variables ``${aws:PrincipalArn}`` from the request context (``${*}`` etc. kept)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in {"*", "?", "$"}:
            return name
        values = context.get(name.lower())
        # IAM: a variable with no value makes the pattern match nothing.
        return values[0] if values else "\0"

    return _VARIABLE.sub(replace, pattern)


def _principal_kind(entry: Any, request: Request) -> str | None:
    """How a Principal element names the caller: "direct", "account" (delegation), or None."""
    if entry == "*":
        return "direct"
    if not isinstance(entry, Mapping):
        raise UnsupportedPolicyError(f"Principal {entry!r}: expected '*' or an object")
    found: str | None = None
    for kind, names in entry.items():
        for name in _listed(names):
            name = str(name)
            if kind == "Service":
                if request.is_service and name == request.principal:
                    return "direct"
            elif kind == "AWS":
                if name == "*":
                    return "direct"
                if not request.is_service and name == request.principal:
                    return "direct"
                account = request.principal_account
                if account is not None and name in {account, f"arn:aws:iam::{account}:root"}:
                    found = "account"
            elif kind not in {"Federated", "CanonicalUser"}:
                raise UnsupportedPolicyError(f"Principal type {kind!r} is not supported")
    return found


def _applies(
    statement: Mapping[str, Any], request: Request, context: Mapping[str, list[str]]
) -> bool:
    """Action, Resource and Condition of a statement all match the request."""
    if "Action" in statement:
        if not any(action_matches(str(a), request.action) for a in _listed(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(action_matches(str(a), request.action) for a in _listed(statement["NotAction"])):
            return False
    else:
        raise UnsupportedPolicyError("policy statement has neither Action nor NotAction")
    if "Resource" in statement:
        resources = [_substitute(str(r), context) for r in _listed(statement["Resource"])]
        if not any(arn_matches(request.resource, pattern) for pattern in resources):
            return False
    elif "NotResource" in statement:
        resources = [_substitute(str(r), context) for r in _listed(statement["NotResource"])]
        if any(arn_matches(request.resource, pattern) for pattern in resources):
            return False
    # A resource policy may omit Resource: it is then the resource it is attached to.
    return conditions_hold(statement.get("Condition", {}), context)


def _matching(
    policy: Policy,
    request: Request,
    context: Mapping[str, list[str]],
    *,
    where: str,
    is_resource_policy: bool,
) -> Iterable[_Match]:
    for statement in statements(policy):
        delegates = False
        if is_resource_policy:
            if "Principal" in statement:
                kind = _principal_kind(statement["Principal"], request)
                if kind is None:
                    continue
                delegates = kind == "account"
            elif "NotPrincipal" in statement:
                if _principal_kind(statement["NotPrincipal"], request) == "direct":
                    continue
            else:
                raise UnsupportedPolicyError(f"{where}: a statement without Principal")
        if _applies(statement, request, context):
            yield _Match(str(statement["Effect"]), where, statement.get("Sid"), delegates)


def evaluate(
    request: Request,
    *,
    identity_policies: Sequence[Policy] = (),
    resource_policy: Policy | None = None,
    resource_account: str | None = None,
    key_policy: bool = False,
) -> Evaluation:
    """The decision for ``request`` (see the module docstring for the rules).

    :param identity_policies: every policy attached to the principal (inline and managed).
    :param resource_policy: the resource's policy (queue, topic, table, secret), or a KMS key's
        key policy with ``key_policy=True``.
    :param resource_account: the resource's account (default: the principal's).
    """
    context = request.condition_context()
    account = resource_account or request.principal_account
    matches: list[_Match] = []
    for index, policy in enumerate(identity_policies):
        matches.extend(
            _matching(
                policy,
                request,
                context,
                where=f"identity policy #{index + 1}",
                is_resource_policy=False,
            )
        )
    resource_matches: list[_Match] = []
    if resource_policy is not None:
        where = "key policy" if key_policy else "resource-based policy"
        resource_matches = list(
            _matching(resource_policy, request, context, where=where, is_resource_policy=True)
        )
    for match in [*matches, *resource_matches]:
        # A Deny naming the account (delegates) applies to every principal of the account too.
        if match.effect == "Deny":
            return Evaluation(Decision.EXPLICIT_DENY, f"explicit deny in {match.describe()}")
    identity_allow = next((m for m in matches if m.effect == "Allow"), None)
    direct_allow = next(
        (m for m in resource_matches if m.effect == "Allow" and not m.delegates), None
    )
    delegation = next((m for m in resource_matches if m.effect == "Allow" and m.delegates), None)
    same_account = not request.is_service and request.principal_account == account
    if direct_allow is not None and (same_account or request.is_service or key_policy):
        return Evaluation(Decision.ALLOWED, f"allowed by {direct_allow.describe()}")
    if key_policy:
        if delegation is not None and identity_allow is not None:
            return Evaluation(
                Decision.ALLOWED,
                f"allowed by {identity_allow.describe()}, which the key policy enables",
            )
        return Evaluation(
            Decision.IMPLICIT_DENY,
            "no key policy statement allows it (nor enables the account's IAM policies)",
        )
    if same_account and identity_allow is not None:
        return Evaluation(Decision.ALLOWED, f"allowed by {identity_allow.describe()}")
    if not same_account and identity_allow is not None and (direct_allow or delegation):
        return Evaluation(Decision.ALLOWED, "allowed by identity and resource-based policy")
    return Evaluation(Decision.IMPLICIT_DENY, "no identity or resource-based policy allows it")
