"""Who may do what to the pipeline: IAM action lists as named constants, the grants, and the
resource policies that deny everyone else.

Principal lists that grants extend (the secret's readers, the DLQ's redrivers) are read at
synthesis, so a grant made after the construct was built still reaches its resource policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jsii
from aws_cdk import (
    ArnFormat,
    DefaultStackSynthesizer,
    Fn,
    IStableAnyProducer,
    Lazy,
    Stack,
    Tags,
    Token,
)
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from audit_stack.construct.encryption import PUBLISHER_KEY_ACTIONS, require_key_statement
from audit_stack.lambda_code import contract

__all__ = [
    "APPEND_ACTIONS",
    "FUNCTION_KEY_ACTIONS",
    "INSERT_ACTIONS",
    "LOOKUP_KEY_ACTIONS",
    "PUBLISH_ACTIONS",
    "QUEUE_CONSUME_ACTIONS",
    "RECORDER_KEY_ACTIONS",
    "RECORDER_TABLE_ACTIONS",
    "REDACTION_ATTRIBUTES",
    "REDACT_TABLE_ACTIONS",
    "REDACT_UPDATE_ACTIONS",
    "REDRIVE_DLQ_ACTIONS",
    "REDRIVE_KEY_ACTIONS",
    "REDRIVE_QUEUE_ACTIONS",
    "SEALER_DIGEST_TABLE_ACTIONS",
    "SECRET_LOOKUP_ACTIONS",
    "SIGN_ACTIONS",
    "TABLE_WRITE_ACTIONS_DENIED_TO_ALL",
    "TOPIC_CHANGE_ACTIONS",
    "VERIFY_KEY_ACTIONS",
    "VERIFY_TABLE_ACTIONS",
    "PrincipalArns",
    "Redactors",
    "TaggedPrincipals",
    "add_principal",
    "allow_cross_account_publishers",
    "append_only_statements",
    "bind_to_function",
    "deny_all_but",
    "deployment_role_arn",
    "grant_lookup",
    "grant_publish",
    "grant_record",
    "grant_redact",
    "grant_redrive",
    "in_another_stack",
    "only_consumer_receives",
    "only_custodians_change_the_key",
    "only_granted_principals_publish",
    "only_lookup_principals_read",
    "only_the_deployment_changes_the_topic",
    "only_topic_or_redrive_sends",
    "only_writers_read_the_writer_key",
    "principal_arn",
    "redaction_statements",
]

PUBLISH_ACTIONS = ("sns:Publish",)
# The one write the audit and digest tables allow, to the one role that appends to each.
APPEND_ACTIONS = ("dynamodb:PutItem",)
# Data-plane writes of a DynamoDB table. The audit and digest tables deny them all to every
# principal, except PutItem to the one role that appends to each.
TABLE_WRITE_ACTIONS_DENIED_TO_ALL = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)
# The recorder's batched write: PartiQL INSERT, which stores an item only if its key is new
# (BatchExecuteStatement is authorized statement by statement, as dynamodb:PartiQLInsert). The
# audit table leaves it to the recorder alone; the digest table denies it to all.
INSERT_ACTIONS = ("dynamodb:PartiQLInsert",)
# PutItem and INSERT on the table only (no indexes, no other writes): the recorder can add audit
# events, never change or remove them. ConditionCheckItem writes nothing: it lets a re-keyed clear
# producer's event check, in its write's transaction, the marker of the id it was published with.
RECORDER_TABLE_ACTIONS = (*APPEND_ACTIONS, *INSERT_ACTIONS, "dynamodb:ConditionCheckItem")
# A function's use of the customer key for the queues and tables it reads and writes: exact
# actions rather than grant_encrypt_decrypt's ReEncrypt*/GenerateDataKey*.
FUNCTION_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey")
RECORDER_KEY_ACTIONS = FUNCTION_KEY_ACTIONS
# Only the recorder reports records: exact action (grant_send_messages would add
# kms:ReEncrypt*/GenerateDataKey* with a customer key).
SEALER_DIGEST_TABLE_ACTIONS = ("dynamodb:Query", *APPEND_ACTIONS)
SIGN_ACTIONS = ("kms:Sign",)
# What `audit verify` reads: the records, the digests and the signing key's public key.
VERIFY_TABLE_ACTIONS = ("dynamodb:Scan", "dynamodb:Query", "dynamodb:GetItem")
VERIFY_KEY_ACTIONS = ("kms:GetPublicKey", "kms:DescribeKey")
# What a holder of the pseudonym secret may do: read every version (a lookup across rotations).
SECRET_LOOKUP_ACTIONS = (
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
)
LOOKUP_KEY_ACTIONS = ("kms:Decrypt",)
# Everything that replaces, re-stages, rotates, exposes or deletes the pseudonym key: each would
# change every pseudonym from then on, or hand the key to someone (Secrets Manager's actions,
# docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html).
SECRET_CUSTODY_ACTIONS = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:DeleteSecret",
    "secretsmanager:ReplicateSecretToRegions",
    "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
)
# What an operator needs to move messages from the DLQ back to the queue (a message move task
# sends to the source queue with the caller's own permissions).
REDRIVE_DLQ_ACTIONS = (
    "sqs:StartMessageMoveTask",
    "sqs:ListMessageMoveTasks",
    "sqs:CancelMessageMoveTask",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
)
REDRIVE_QUEUE_ACTIONS = ("sqs:SendMessage",)
REDRIVE_KEY_ACTIONS = ("kms:GenerateDataKey", "kms:Decrypt")
# What takes a message out of a queue for good (or hides it): only the queue's consumer may.
# An SQS event source polls with the function's execution role, outside the function, so these
# are bound to the role (aws:PrincipalArn), never to lambda:SourceFunctionArn.
QUEUE_CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:PurgeQueue",
)
# Topic changes that a topic policy can deny (SNS's "Valid Amazon SNS policy actions"):
# Unsubscribe and SetSubscriptionAttributes act on a subscription and cannot be named in a
# topic policy, so the control-change rule alarms on them instead.
TOPIC_CHANGE_ACTIONS = (
    "sns:AddPermission",
    "sns:RemovePermission",
    "sns:SetTopicAttributes",
    "sns:DeleteTopic",
    "sns:Subscribe",
    "sns:PutDataProtectionPolicy",
)


class PrincipalArns:
    """IAM principal ARNs collected by grants; a resource policy reads them at synthesis."""

    def __init__(self) -> None:
        self._arns: list[str] = []

    def add(self, arn: str) -> None:
        self._arns.append(arn)

    def __len__(self) -> int:
        return len(self._arns)

    def values(self) -> list[str]:
        """The ARNs granted so far (call it at synthesis, from a Lazy producer)."""
        return list(self._arns)

    def at_synthesis(self, *, omit_when_empty: bool = False) -> Any:
        """A token for the list, resolved after every grant (None when empty, if asked)."""
        return Lazy.any(_Produce(lambda: list(self._arns) or (None if omit_when_empty else [])))


def append_only_statements(
    writer: iam.IRole, *, redactors: Redactors | None = None
) -> list[iam.PolicyStatement]:
    """A table resource policy: no principal may change or remove items; only ``writer`` adds.

    With ``redactors`` (the audit table), ``UpdateItem`` in the shape of a redaction, and
    ``DeleteItem`` and a stub's ``PutItem`` (moving a record in clear to its pseudonym), are
    left to the principals given ``grant_redact`` (``redaction_statements``, ``Redactors``), and
    PartiQL INSERT (the recorder's batched write) to ``writer`` alone.
    """
    denied: tuple[str, ...] = TABLE_WRITE_ACTIONS_DENIED_TO_ALL
    writers: Any = writer.role_arn
    only_writer_inserts: list[iam.PolicyStatement] = []
    if redactors is not None:
        changes = (*REDACT_UPDATE_ACTIONS, *PSEUDONYMISE_MOVE_ACTIONS, *INSERT_ACTIONS)
        denied = tuple(action for action in denied if action not in changes)
        writers = redactors.and_writer(writer.role_arn)
        inserter = PrincipalArns()
        inserter.add(writer.role_arn)
        only_writer_inserts.append(
            deny_all_but(
                "AppendOnlyOneInserter",
                actions=INSERT_ACTIONS,
                resources=["*"],
                principals=inserter,
            )
        )
    return [
        iam.PolicyStatement(
            sid="AppendOnlyNoChanges",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(denied),
            # "*" is this table: a resource policy cannot name its own generated ARN.
            resources=["*"],
        ),
        *(redaction_statements(redactors) if redactors is not None else []),
        iam.PolicyStatement(
            sid="AppendOnlyOneWriter",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(APPEND_ACTIONS),
            resources=["*"],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": writers}},
        ),
        *only_writer_inserts,
    ]


# -- lawful erasure: redaction (issue 18 item 2; README "Erasure", docs/INTEGRITY.md) ----------

# The one change to a record anybody may make: a break-glass role's redaction (`audit redact`).
REDACT_UPDATE_ACTIONS = ("dynamodb:UpdateItem",)
# `audit redact --pseudonymise` moves a record written in clear (its key is the address) to a
# stub under the pseudonym: one transaction that puts the stub and deletes the clear item.
PSEUDONYMISE_MOVE_ACTIONS = ("dynamodb:DeleteItem",)
# What `audit redact` reads: a subject's records (Query), one record (GetItem), an event by id
# (Scan); and UpdateItem for the redaction itself.
REDACT_TABLE_ACTIONS = (
    "dynamodb:Query",
    "dynamodb:GetItem",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
    "dynamodb:PutItem",
    "dynamodb:DeleteItem",
)
REDACT_KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
# Every attribute a redaction's UpdateItem may name (``dynamodb:Attributes``: the key, the
# personal attributes it REMOVEs, the three it SETs). Not record_hash: nobody may change it,
# which is what keeps a stub's Merkle leaf the sealed one.
REDACTION_ATTRIBUTES = (
    contract.PARTITION_KEY,
    contract.SORT_KEY,
    *contract.PERSONAL_ATTRIBUTES,
    contract.REDACTED_AT_ATTRIBUTE,
    contract.REDACTION_REASON_ATTRIBUTE,
    contract.REDACTED_BY_ATTRIBUTE,
)
# ReturnValues that would send record content back (the erased content, with the *_OLD ones).
REDACTION_RETURN_VALUES_DENIED = ("ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW")


class Redactors:
    """The principals given ``grant_redact``, and the audit table's statements about them.

    Until the first grant, ``OnlyRedactorsChange`` denies UpdateItem and DeleteItem to everyone
    and no statement bounds a redactor's puts (there is no redactor); the first grant exempts
    the redactors from the first and adds the bounds (``redactor_put_bounds``), each naming the
    list as read at synthesis, so later grants count.
    """

    def __init__(self) -> None:
        self.arns = PrincipalArns()
        self.only_redactors_change = iam.PolicyStatement(
            sid="OnlyRedactorsChange",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=[*REDACT_UPDATE_ACTIONS, *PSEUDONYMISE_MOVE_ACTIONS],
            resources=["*"],
        )
        self._add_to_policy: Callable[[iam.PolicyStatement], None] | None = None

    def attach(self, add_to_policy: Callable[[iam.PolicyStatement], None]) -> None:
        """How to add a statement to the audit table's policy (at the first grant)."""
        self._add_to_policy = add_to_policy

    def and_writer(self, writer_arn: str) -> Any:
        """The principals PutItem is left to: the writer, and the redactors (stubs only)."""
        return Lazy.any(_Produce(lambda: [writer_arn, *self.arns.values()]))

    def add(self, arn: str) -> None:
        if not len(self.arns):
            self.only_redactors_change.add_condition(
                "ArnNotEquals", {"aws:PrincipalArn": self.arns.at_synthesis()}
            )
            if self._add_to_policy is None:
                raise RuntimeError("Redactors.attach was not called")
            for statement in redactor_put_bounds(self.arns):
                self._add_to_policy(statement)
        self.arns.add(arn)


def redactor_put_bounds(redactors: PrincipalArns) -> list[iam.PolicyStatement]:
    """A redactor's PutItem (``--pseudonymise``) may only write a stub: with ``redacted_at``,
    without the personal attributes. Its content is vouched for by its sealed redaction entry,
    or ``audit verify`` calls it tampering; a delete without one is reported missing."""
    names = {"aws:PrincipalArn": redactors.at_synthesis()}
    return [
        iam.PolicyStatement(
            sid="RedactorsPutOnlyStubs",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(APPEND_ACTIONS),
            resources=["*"],
            conditions={
                "ArnEquals": names,
                # True when no attribute of the item is redacted_at (and when none is named).
                "ForAllValues:StringNotEquals": {
                    "dynamodb:Attributes": [contract.REDACTED_AT_ATTRIBUTE]
                },
            },
        ),
        iam.PolicyStatement(
            sid="RedactorsPutNothingPersonal",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(APPEND_ACTIONS),
            resources=["*"],
            conditions={
                "ArnEquals": names,
                "ForAnyValue:StringEquals": {
                    "dynamodb:Attributes": list(contract.PERSONAL_ATTRIBUTES)
                },
            },
        ),
    ]


def redaction_statements(redactors: Redactors) -> list[iam.PolicyStatement]:
    """The audit table's UpdateItem and DeleteItem rules: only the ``grant_redact`` principals
    may update or delete an item (nobody, while none is named), and an update may only name the
    redaction's attributes (``dynamodb:Attributes``) and return nothing
    (``dynamodb:ReturnValues``).

    DynamoDB evaluates these condition keys in resource-based policies as in identity policies
    (the Developer Guide's "Using IAM policy conditions for fine-grained access control").
    """
    return [
        redactors.only_redactors_change,
        iam.PolicyStatement(
            sid="UpdatesOnlyRedact",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(REDACT_UPDATE_ACTIONS),
            resources=["*"],
            conditions={
                "ForAnyValue:StringNotEquals": {"dynamodb:Attributes": list(REDACTION_ATTRIBUTES)}
            },
        ),
        iam.PolicyStatement(
            sid="RedactionsReturnNothing",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=list(REDACT_UPDATE_ACTIONS),
            resources=["*"],
            conditions={
                "StringEquals": {"dynamodb:ReturnValues": list(REDACTION_RETURN_VALUES_DENIED)}
            },
        ),
    ]


def grant_redact(
    grantee: iam.IGrantable, table_arn: str, encryption_key: kms.IKey | None
) -> iam.Grant:
    """What ``audit redact`` needs of the table (the resource policy names the grantee too)."""
    return _grant_table(
        grantee, table_arn, REDACT_TABLE_ACTIONS, encryption_key, REDACT_KEY_ACTIONS
    )


def only_lookup_principals_read(
    secret: secretsmanager.Secret, readers: PrincipalArns, tagged: TaggedPrincipals
) -> None:
    """IAM alone would let any principal with secretsmanager:GetSecretValue on "*" (an
    administrator) read the key; this denies every principal not granted a lookup (roles of
    other stacks by their tag)."""
    secret.add_to_resource_policy(
        deny_all_but(
            "OnlyGrantedPrincipalsReadThePseudonymKey",
            actions=["secretsmanager:GetSecretValue"],
            resources=["*"],
            principals=readers,
            tagged=tagged,
        )
    )


PRINCIPAL_TAG_VALUE = "true"


class TaggedPrincipals:
    """Grantees in other stacks than the resource's, let through its "deny all but" statement
    by a principal tag rather than by their role ARN.

    Their role ARN is a reference to their stack: in the resource's policy it would make the
    pipeline's stack depend on theirs while they read the topic's and the secret's ARNs from the
    pipeline's stack, a dependency cycle. The tag is written on the grantee's role in its own
    stack, and the deny statement only names the tag key (a literal), so the dependency stays one
    way. The trade-off: a principal that may tag itself with this key and use the resource on
    "*" (an administrator) passes the deny; such a principal can also change the resource policy.
    """

    def __init__(self, tag_key: str) -> None:
        self.tag_key = tag_key
        self._tagged = 0

    def add(self, role: iam.Role) -> None:
        Tags.of(role).add(self.tag_key, PRINCIPAL_TAG_VALUE)
        self._tagged += 1

    def exemption(self) -> dict[str, str]:
        """``aws:PrincipalTag/<key>`` for the deny's ``StringNotEquals``, once a role is
        tagged (an empty operator is not valid IAM)."""
        return {f"aws:PrincipalTag/{self.tag_key}": PRINCIPAL_TAG_VALUE} if self._tagged else {}


def in_another_stack(
    grantee: iam.IGrantable, resource: IConstruct, *, purpose: str
) -> iam.Role | None:
    """The grantee's role when it is a principal of another stack than ``resource``'s (its ARN
    would be a cross-stack reference), else None.

    :raises ValueError: for a principal of another stack that is not an ``iam.Role`` (a user):
        only a role can be tagged, and its ARN would be a dependency cycle.
    """
    principal = grantee.grant_principal
    if not isinstance(principal, Construct) or Stack.of(principal) is Stack.of(resource):
        return None
    if not Token.is_unresolved(principal_arn(grantee, purpose=purpose)):
        return None  # an imported principal's literal ARN: no reference, no cycle
    if not isinstance(principal, iam.Role):
        raise ValueError(
            f"AuditPipeline {purpose}: a grantee in another stack must be an iam.Role of that "
            f"stack (its role is tagged), got {type(principal).__name__}"
        )
    return principal


def only_writers_read_the_writer_key(secret: secretsmanager.Secret, writers: PrincipalArns) -> None:
    """Only the recorder's and the sealer's roles read the writer key: an administrator with
    secretsmanager:GetSecretValue on "*" could otherwise MAC an item of their own making."""
    secret.add_to_resource_policy(
        deny_all_but(
            "OnlyTheWritersReadTheWriterKey",
            actions=["secretsmanager:GetSecretValue"],
            resources=["*"],
            principals=writers,
        )
    )


def only_custodians_change_the_key(
    secret: secretsmanager.Secret,
    custodians: PrincipalArns,
    *,
    sid: str = "OnlyCustodiansChangeThePseudonymKey",
) -> None:
    """Nobody but the key's custodians (the deployment's role and a break-glass role given
    ``grant_key_custody``) may write, rotate, re-stage, delete or re-police the pseudonym key:
    a quietly replaced key splits every account's trail in two, a lifted policy exposes it."""
    secret.add_to_resource_policy(
        deny_all_but(
            sid,
            actions=SECRET_CUSTODY_ACTIONS,
            resources=["*"],
            principals=custodians,
        )
    )


def only_topic_or_redrive_sends(
    queue: sqs.Queue, topic: sns.ITopic, redrivers: PrincipalArns
) -> None:
    """Only the topic feeds the queue, and the principals allowed to redrive its DLQ: anyone
    else with sqs:SendMessage could inject a well-formed event."""
    queue.add_to_resource_policy(
        deny_all_but(
            "OnlyTheTopicOrARedriveSends",
            actions=["sqs:SendMessage"],
            resources=[queue.queue_arn],
            # Omitted while nobody may redrive: then only the topic sends.
            principals=redrivers,
            omit_when_empty=True,
            also_exempt={"ArnNotEquals": {"aws:SourceArn": topic.topic_arn}},
        )
    )


def grant_publish(
    grantee: iam.IGrantable, topic: sns.ITopic, encryption_key: kms.IKey | None
) -> iam.Grant:
    """sns:Publish on the topic, and the customer key's two actions if there is one."""
    grant = iam.Grant.add_to_principal(
        grantee=grantee, actions=list(PUBLISH_ACTIONS), resource_arns=[topic.topic_arn]
    )
    # With the AWS-managed aws/sns key, its own key policy already lets any principal of the
    # account use it through SNS; a customer key needs exactly these two actions.
    if encryption_key is not None:
        encryption_key.grant(grantee, *PUBLISHER_KEY_ACTIONS)
    return grant


def grant_record(
    recorder: iam.IGrantable, table_arn: str, encryption_key: kms.IKey | None
) -> iam.Grant:
    """What the recorder needs of the table: append, nothing else."""
    return _grant_table(
        recorder, table_arn, RECORDER_TABLE_ACTIONS, encryption_key, RECORDER_KEY_ACTIONS
    )


def _grant_table(
    grantee: iam.IGrantable,
    table_arn: str,
    actions: Sequence[str],
    encryption_key: kms.IKey | None,
    key_actions: Sequence[str],
) -> iam.Grant:
    """``actions`` on the table, and ``key_actions`` on its customer key if it has one."""
    grant = iam.Grant.add_to_principal(
        grantee=grantee, actions=list(actions), resource_arns=[table_arn]
    )
    if encryption_key is not None:
        encryption_key.grant(grantee, *key_actions)
    return grant


def grant_redrive(
    grantee: iam.IGrantable,
    *,
    queue: sqs.IQueue,
    dead_letter_queue: sqs.IQueue,
    encryption_key: kms.IKey | None,
    redrivers: PrincipalArns,
) -> iam.Grant:
    """Move messages from the DLQ back to the queue; the grantee joins the queue's senders."""
    redrivers.add(principal_arn(grantee, purpose="grant_redrive"))
    grant = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(REDRIVE_DLQ_ACTIONS),
        resource_arns=[dead_letter_queue.queue_arn],
    )
    iam.Grant.add_to_principal(
        grantee=grantee, actions=list(REDRIVE_QUEUE_ACTIONS), resource_arns=[queue.queue_arn]
    )
    if encryption_key is not None:
        encryption_key.grant(grantee, *REDRIVE_KEY_ACTIONS)
    return grant


def grant_lookup(
    grantee: iam.IGrantable,
    *,
    secret: secretsmanager.ISecret | None,
    encryption_key: kms.IKey | None,
    readers: PrincipalArns,
    tagged_readers: TaggedPrincipals | None,
) -> iam.Grant:
    """Read the pseudonym secret (every version); nothing without one (subject in clear).
    A role of another stack is let through by a tag (``TaggedPrincipals``), any other by ARN."""
    if secret is None or tagged_readers is None:
        return iam.Grant.drop(grantee, "subject_in_clear: no pseudonym secret")
    add_principal(grantee, secret, readers=readers, tagged=tagged_readers, purpose="grant_lookup")
    grant = iam.Grant.add_to_principal(
        grantee=grantee, actions=list(SECRET_LOOKUP_ACTIONS), resource_arns=[secret.secret_arn]
    )
    if encryption_key is not None:
        encryption_key.grant(grantee, *LOOKUP_KEY_ACTIONS)
    return grant


def allow_cross_account_publishers(
    scope: Construct,
    topic: sns.ITopic,
    encryption_key: kms.IKey | None,
    *,
    accounts: Sequence[str],
    organization_id: str | None,
) -> None:
    """A topic policy statement per kind of principal, and the key policy statement those
    publishers need (only through SNS) with a customer-managed key."""
    groups: list[tuple[str, list[iam.IPrincipal]]] = []
    if accounts:
        groups.append(("Accounts", [iam.AccountPrincipal(account) for account in accounts]))
    if organization_id is not None:
        groups.append(("Organization", [iam.OrganizationPrincipal(organization_id)]))
    for name, principals in groups:
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid=f"AllowAuditPublishersFrom{name}",
                principals=principals,
                actions=list(PUBLISH_ACTIONS),
                resources=[topic.topic_arn],
            )
        )
        if encryption_key is not None:
            stack = Stack.of(scope)
            require_key_statement(
                scope,
                encryption_key,
                iam.PolicyStatement(
                    sid=f"AllowAuditPublishersFrom{name}",
                    principals=principals,
                    actions=list(PUBLISHER_KEY_ACTIONS),
                    resources=["*"],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"sns.{stack.region}.{stack.url_suffix}"}
                    },
                ),
                purpose=f"publishers from other accounts ({name.lower()}) cannot encrypt "
                "their audit events for the topic otherwise",
            )


# -- integrity v2: deny every principal but the named ones (docs/INTEGRITY.md, layer 1) --------


def principal_arn(grantee: iam.IGrantable, *, purpose: str) -> str:
    """The ARN a resource policy names ``grantee`` by (its role, user or ARN principal).

    :raises ValueError: for grantees without one (service or account principals): a "deny all
        but these principals" statement could not exempt them.
    """
    principal = grantee.grant_principal
    for attribute in ("role_arn", "user_arn"):
        arn = getattr(principal, attribute, None)
        if isinstance(arn, str):
            return arn
    if isinstance(principal, iam.ArnPrincipal):
        return principal.arn
    raise ValueError(
        f"AuditPipeline {purpose}: the grantee must be an IAM role or user (or have one, like "
        f"a function), got {type(principal).__name__}: the resource policy denies every "
        "principal it does not name"
    )


def add_principal(
    grantee: iam.IGrantable,
    resource: IConstruct,
    *,
    readers: PrincipalArns,
    tagged: TaggedPrincipals,
    purpose: str,
) -> None:
    """Name ``grantee`` in ``resource``'s "deny all but" statement: a role of another stack by
    its tag (``TaggedPrincipals``: no dependency cycle), any other principal by its ARN."""
    other_stacks_role = in_another_stack(grantee, resource, purpose=purpose)
    if other_stacks_role is not None:
        tagged.add(other_stacks_role)
    else:
        readers.add(principal_arn(grantee, purpose=purpose))


def deny_all_but(
    sid: str,
    *,
    actions: Sequence[str],
    resources: Sequence[str],
    principals: PrincipalArns,
    tagged: TaggedPrincipals | None = None,
    exempt_values: Mapping[str, PrincipalArns] | None = None,
    also_exempt: Mapping[str, Mapping[str, Any]] | None = None,
    omit_when_empty: bool = False,
) -> iam.PolicyStatement:
    """The one builder of "deny these actions to every principal but the named ones": a
    resource-policy statement denying ``actions`` to every principal whose ARN is not in
    ``principals``, nor tagged by ``tagged``, nor named under another key of
    ``exempt_values`` (``{"aws:PrincipalAccount": accounts}``, under ``StringNotEquals``).

    Every list is read at synthesis, so later grants count; an empty one is left out (an
    empty operator is not valid IAM). ``also_exempt`` adds fixed negated conditions
    (``{"ArnNotEquals": {"aws:SourceArn": topic_arn}}``); the conditions of a statement all
    have to hold, so each one exempts more principals. ``omit_when_empty``: no principal ARN
    condition while ``principals`` is empty (then only the others apply).
    """
    fixed = {operator: dict(keys) for operator, keys in (also_exempt or {}).items()}
    exempt = dict(exempt_values or {})

    def string_not_equals() -> dict[str, Any] | None:
        keys: dict[str, Any] = {
            **fixed.get("StringNotEquals", {}),
            **{key: values.at_synthesis() for key, values in exempt.items() if len(values)},
            **(tagged.exemption() if tagged is not None else {}),
        }
        return keys or None

    conditions: dict[str, Any] = {}
    if exempt or tagged is not None or "StringNotEquals" in fixed:
        conditions["StringNotEquals"] = Lazy.any(_Produce(string_not_equals))
    conditions.update(
        (operator, keys) for operator, keys in fixed.items() if operator != "StringNotEquals"
    )
    conditions.setdefault("ArnNotEquals", {})["aws:PrincipalArn"] = principals.at_synthesis(
        omit_when_empty=omit_when_empty
    )
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=list(actions),
        resources=list(resources),
        conditions=conditions,
    )


def only_granted_principals_publish(
    topic: sns.ITopic,
    *,
    publishers: PrincipalArns,
    accounts: PrincipalArns,
    organizations: PrincipalArns,
    tagged: TaggedPrincipals,
) -> None:
    """IAM alone lets any principal of the account with sns:Publish on "*" forge an event; the
    topic denies everyone but ``grant_publish``'s principals (roles of other stacks by their
    tag) and ``allow_publishers``'s accounts and organization."""
    topic.add_to_resource_policy(
        deny_all_but(
            "OnlyGrantedPrincipalsPublish",
            actions=PUBLISH_ACTIONS,
            resources=[topic.topic_arn],
            principals=publishers,
            tagged=tagged,
            exempt_values={"aws:PrincipalAccount": accounts, "aws:PrincipalOrgID": organizations},
        )
    )


def deployment_role_arn(scope: Construct) -> str | None:
    """The CloudFormation execution role of the stack's bootstrap, or None when the
    synthesizer deploys with the caller's own credentials (no role to name)."""
    synthesizer = Stack.of(scope).synthesizer
    if not isinstance(synthesizer, DefaultStackSynthesizer):
        return None
    return Fn.sub(synthesizer.cloud_formation_execution_role_arn)


def only_the_deployment_changes_the_topic(topic: sns.ITopic, deployer_arn: str) -> None:
    """Subscriptions, the topic policy and the topic itself change only through CloudFormation
    (its execution role): a new subscription with a filter that matches nothing, or the topic's
    deletion, would drop events without an error."""
    deployers = PrincipalArns()
    deployers.add(deployer_arn)
    topic.add_to_resource_policy(
        deny_all_but(
            "OnlyTheDeploymentChangesTheTopic",
            actions=TOPIC_CHANGE_ACTIONS,
            resources=[topic.topic_arn],
            principals=deployers,
        )
    )


def only_consumer_receives(queue: sqs.IQueue, consumers: PrincipalArns) -> None:
    """Nobody but the queue's consumer (an administrator included) may receive, hide, delete or
    purge its messages: each would drop audit events before they are recorded."""
    queue.add_to_resource_policy(
        deny_all_but(
            "OnlyTheConsumerReceives",
            actions=QUEUE_CONSUME_ACTIONS,
            resources=[queue.queue_arn],
            principals=consumers,
        )
    )


def bind_to_function(
    scope: Construct,
    construct_id: str,
    function: lambda_.Function,
    *,
    actions: Sequence[str],
    resources: Sequence[str],
) -> iam.Policy:
    """Deny ``actions`` to every session of the function's role that does not run inside the
    function (``lambda:SourceFunctionArn``): another function given the role cannot use them.

    An identity policy on the role, because Lambda's documentation says the key cannot be used
    in resource-based policies (table, key policies); a separate policy, because the function
    depends on its role's default policy and this one names the function (a cycle otherwise).
    """
    role = function.role
    if role is None:
        raise ValueError(f"{function.node.path} has no execution role")
    return iam.Policy(
        scope,
        construct_id,
        roles=[role],
        statements=[
            iam.PolicyStatement(
                sid="OnlyFromInsideTheFunction",
                effect=iam.Effect.DENY,
                actions=list(actions),
                resources=list(resources),
                conditions={"ArnNotEquals": {"lambda:SourceFunctionArn": function.function_arn}},
            )
        ],
    )


@jsii.implements(IStableAnyProducer)
class _Produce:
    """A value computed at synthesis, after every grant has been made."""

    def __init__(self, produce: Callable[[], Any]) -> None:
        self._produce = produce

    def produce(self) -> Any:
        return self._produce()


# -- operators: grant_read and grant_operate (README "Permissions the operator needs") --------

# Every `audit` command reads the stack's template and resources to find the pipeline.
OPERATOR_STACK_ACTIONS = ("cloudformation:GetTemplate", "cloudformation:ListStackResources")
# `audit trail`, `audit events`: queries on the table and its by-type index.
READ_TABLE_ACTIONS = ("dynamodb:Query",)
READ_KEY_ACTIONS = ("kms:Decrypt",)
# `audit status`: both queues' depths, the alarms' states, the oldest message's age.
STATUS_QUEUE_ACTIONS = ("sqs:GetQueueAttributes",)
STATUS_ALARM_ACTIONS = ("cloudwatch:DescribeAlarms",)
# GetMetricData supports no resource-level permissions.
STATUS_METRIC_ACTIONS = ("cloudwatch:GetMetricData",)
# `audit dlq show`: peek at the DLQ (messages are made visible again at once).
DLQ_SHOW_ACTIONS = ("sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility")


def grant_stack_discovery(grantee: iam.IGrantable, stack: Stack) -> iam.Grant:
    """What every ``audit`` command needs first: the pipeline's stack's template and resources."""
    return iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(OPERATOR_STACK_ACTIONS),
        resource_arns=[
            stack.format_arn(
                service="cloudformation", resource="stack", resource_name=f"{stack.stack_name}/*"
            )
        ],
    )


def grant_table_queries(
    grantee: iam.IGrantable, table_arn: str, encryption_key: kms.IKey | None
) -> iam.Grant:
    """``dynamodb:Query`` on the table and its indexes (and decrypting with a customer key)."""
    grant = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(READ_TABLE_ACTIONS),
        resource_arns=[table_arn, f"{table_arn}/index/*"],
    )
    if encryption_key is not None:
        encryption_key.grant(grantee, *READ_KEY_ACTIONS)
    return grant


def grant_status(grantee: iam.IGrantable, stack: Stack, queues: Sequence[sqs.IQueue]) -> iam.Grant:
    """``audit status``: queue attributes, this stack's alarms, metric data."""
    grant = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(STATUS_QUEUE_ACTIONS),
        resource_arns=[queue.queue_arn for queue in queues],
    )
    iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(STATUS_ALARM_ACTIONS),
        resource_arns=[
            stack.format_arn(
                service="cloudwatch",
                resource="alarm",
                resource_name="*",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
            )
        ],
    )
    iam.Grant.add_to_principal(
        grantee=grantee, actions=list(STATUS_METRIC_ACTIONS), resource_arns=["*"]
    )
    return grant


def grant_dlq_show(
    grantee: iam.IGrantable, dead_letter_queue: sqs.IQueue, encryption_key: kms.IKey | None
) -> iam.Grant:
    """``audit dlq show``: receive and release the DLQ's messages."""
    grant = iam.Grant.add_to_principal(
        grantee=grantee,
        actions=list(DLQ_SHOW_ACTIONS),
        resource_arns=[dead_letter_queue.queue_arn],
    )
    if encryption_key is not None:
        encryption_key.grant(grantee, *READ_KEY_ACTIONS)
    return grant
