"""IAM enforcement at the emulator's endpoint: every signed request is evaluated against its
caller's identity policies and its resource's policy before it reaches moto, and SNS's own
deliveries to queues against the queue's policy and key, as AWS evaluates them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from moto.sqs.models import sqs_backends

from audit_stack.iam import Evaluation, Policy, Request, evaluate
from audit_stack.local.access.identities import Caller, Identities
from audit_stack.local.access.policies import PolicyStore
from audit_stack.local.access.requests import Names, Target, targets
from audit_stack.local.http.errors import ApiError
from audit_stack.local.http.operations import Environ, Operation

SNS_PRINCIPAL = "sns.amazonaws.com"
# The one action that needs no permission: "No permissions are required to perform this
# operation" (STS API reference, GetCallerIdentity); even an explicit deny does not stop it.
_WHO_AM_I = "sts:GetCallerIdentity"
# (code, HTTP status) of each service's access-denied error.
_DENIED: Mapping[str, tuple[str, str]] = {
    "sqs": ("AccessDenied", "403 Forbidden"),
    "sns": ("AuthorizationError", "403 Forbidden"),
    "dynamodb": ("AccessDeniedException", "400 Bad Request"),
    "kms": ("AccessDeniedException", "400 Bad Request"),
    "secretsmanager": ("AccessDeniedException", "400 Bad Request"),
    "lambda": ("AccessDeniedException", "403 Forbidden"),
}
# Calls that also use the resource's customer managed key, as the caller (through the service).
_KEY_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "sns:Publish": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:SendMessage": ("kms:GenerateDataKey", "kms:Decrypt"),
    "sqs:ReceiveMessage": ("kms:Decrypt",),
}


@dataclass(frozen=True)
class Denial:
    principal: str
    action: str
    resource: str
    evaluation: Evaluation

    def message(self) -> str:
        how = (
            "with an explicit deny in a " + self.evaluation.reason.removeprefix("explicit deny in ")
            if self.evaluation.decision.name == "EXPLICIT_DENY"
            else f"because {self.evaluation.reason}"
        )
        return (
            f"User: {self.principal} is not authorized to perform: {self.action} on resource: "
            f"{self.resource} {how}"
        )


class Enforcer:
    """Decides requests; ``enabled=False`` lets everything through (``--no-enforce-iam``)."""

    def __init__(
        self,
        store: PolicyStore,
        identities: Identities,
        *,
        region: str,
        enabled: bool = True,
        on_event: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.store = store
        self.identities = identities
        self.enabled = enabled
        self._region = region
        self._on_event = on_event
        self._names = Names(
            store.account_id,
            region,
            key_arn=self._key_arn,
            secret_arn=lambda secret: (
                secret
                if secret.startswith("arn:")
                else store.secret_arns.get(
                    secret, f"arn:aws:secretsmanager:{region}:{store.account_id}:secret:{secret}"
                )
            ),
        )

    # -- requests at the endpoint ----------------------------------------------------------

    def authorize(self, operation: Operation, environ: Environ, body: bytes) -> ApiError | None:
        """None if IAM allows the request, else the service's AccessDenied error."""
        # GetCallerIdentity needs no permission: IAM never denies it (STS API reference).
        if not self.enabled or operation.service == "emulator" or operation.action == _WHO_AM_I:
            return None
        caller = self.identities.of_authorization(environ.get("HTTP_AUTHORIZATION", ""))
        if caller.internal:
            return None
        for target in targets(
            operation,
            body,
            self._names,
            environ.get("PATH_INFO", ""),
            environ.get("QUERY_STRING", ""),
        ):
            denial = self.check(caller, target)
            if denial is not None:
                self._on_event(f"AccessDenied: {denial.message()}")
                code, status = _DENIED.get(
                    operation.service,
                    ("AccessDenied", "403 Forbidden")
                    if operation.protocol == "query"
                    else ("AccessDeniedException", "400 Bad Request"),
                )
                return ApiError(code, denial.message(), status)
        return None

    def check(self, caller: Caller, target: Target) -> Denial | None:
        """The denial of one action by a caller, or None when IAM allows it."""
        context: dict[str, str | tuple[str, ...]] = {
            **self._context(caller),
            **dict(target.context),
        }
        request = Request(caller.principal_arn, target.action, target.resource, context)
        identity = self.store.identity_policies(caller.principal_arn)
        key_policy = self.store.key_policies.get(target.resource)
        if target.action.startswith("kms:") and target.resource != "*":
            evaluation = evaluate(
                request,
                identity_policies=identity,
                resource_policy=key_policy or self._default_key_policy(),
                key_policy=True,
            )
        else:
            evaluation = evaluate(
                request,
                identity_policies=identity,
                resource_policy=self._resource_policy(target.resource),
                resource_account=self.store.account_id,
            )
        if not evaluation.allowed:
            return Denial(caller.principal_arn, target.action, target.resource, evaluation)
        key = self.store.encryption_keys.get(target.resource)
        if key is not None:
            service = target.action.split(":")[0]
            via = {**context, "kms:ViaService": f"{service}.{self._region}.amazonaws.com"}
            for key_action in _KEY_ACTIONS.get(target.action, ()):
                evaluation = evaluate(
                    Request(caller.principal_arn, key_action, key, via),
                    identity_policies=identity,
                    resource_policy=self.store.key_policies.get(key, self._default_key_policy()),
                    key_policy=True,
                )
                if not evaluation.allowed:
                    return Denial(caller.principal_arn, key_action, key, evaluation)
        return None

    # -- SNS acting as a service -----------------------------------------------------------

    def delivery_failure(self, topic_arn: str, queue_arn: str) -> str | None:
        """Why SNS cannot deliver from the topic to the queue (None: it can): the queue is
        gone, or its policy or its key's policy does not let SNS in for this topic."""
        parts = queue_arn.split(":")
        account, name = parts[4], parts[5]
        backend = sqs_backends[account][parts[3]]
        if name not in backend.queues:
            return f"queue {queue_arn} does not exist"
        if not self.enabled:
            return None
        context = {
            "aws:SourceArn": topic_arn,
            "aws:SourceAccount": topic_arn.split(":")[4],
            "aws:SecureTransport": "true",
        }
        evaluation = evaluate(
            Request(SNS_PRINCIPAL, "sqs:SendMessage", queue_arn, context),
            resource_policy=self.store.resource_policies.get(queue_arn, {"Statement": []}),
            resource_account=account,
        )
        if not evaluation.allowed:
            return f"the policy of {queue_arn}: sqs:SendMessage {evaluation.decision.value}"
        key = self.store.encryption_keys.get(queue_arn)
        if key is not None:
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                evaluation = evaluate(
                    Request(SNS_PRINCIPAL, action, key, context),
                    resource_policy=self.store.key_policies.get(key, self._default_key_policy()),
                    key_policy=True,
                )
                if not evaluation.allowed:
                    return f"the key policy of {key}: {action} {evaluation.decision.value}"
        return None

    # -- plumbing ----------------------------------------------------------------------------

    def _context(self, caller: Caller) -> dict[str, str]:
        context = {
            # The emulator speaks HTTP on loopback in place of AWS's TLS endpoints, which every
            # SDK uses: its requests stand for TLS ones.
            "aws:SecureTransport": "true",
            "aws:RequestedRegion": self._region,
        }
        if caller.source_function_arn is not None:
            context["lambda:SourceFunctionArn"] = caller.source_function_arn
        return context

    def _resource_policy(self, resource: str) -> Policy | None:
        if resource in self.store.resource_policies:
            return self.store.resource_policies[resource]
        table, _, index = resource.partition("/index/")
        return self.store.resource_policies.get(table) if index else None

    def _default_key_policy(self) -> Policy:
        """The key policy AWS gives a key created without one: IAM policies decide."""
        return {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{self.store.account_id}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ]
        }

    def _key_arn(self, key_id: str) -> str:
        if key_id.startswith("alias/") or ":alias/" in key_id:
            resolved = _alias_target(self.store.account_id, self._region, key_id)
            if resolved is not None:
                return self.store.key_arn(resolved, self._region)
            return key_id if key_id.startswith("arn:") else self._names.arn("kms", key_id)
        return self.store.key_arn(key_id, self._region)


def _alias_target(account_id: str, region: str, alias: str) -> str | None:
    from moto.kms.models import kms_backends

    backend: Any = kms_backends[account_id][region]
    name = alias[alias.index("alias/") :]
    try:
        return str(backend.get_key_id_from_alias(name))
    except Exception:  # an unknown alias: KMS answers NotFound later, as moto will
        return None
