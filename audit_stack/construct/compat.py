"""What differs between the oldest aws-cdk-lib the construct supports and the newest.

pyproject.toml accepts ``aws-cdk-lib>=2.221.0,<3`` (README, "Which aws-cdk-lib"). Two things the
construct uses arrived later, and this module is their one place:

- ``Runtime.PYTHON_3_14`` (2.222.0): before it, the runtime is named by its identifier and the
  same properties, which synthesizes the same ``Runtime: python3.14``.
- ``Validations``/``Acknowledgment`` (2.257), which cdk-nag 3 reads: with an older aws-cdk-lib
  (hence cdk-nag 2) the same acknowledgements are written as cdk-nag 2's ``cdk_nag`` metadata
  (what ``NagSuppressions.add_resource_suppressions(..., apply_to_children=True)`` writes), on
  every resource of the construct's tree at synthesis, so a policy added after the call is
  covered too.
- ``Table.add_to_resource_policy`` renders nothing before the fix of aws-cdk #35062 (the table's
  ``ResourcePolicy`` stays empty, silently: `make test-lowest` caught it), so the statement is
  also set on the ``CfnTable``, as the fix does.
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk
import jsii
from aws_cdk import AspectPriority, Aspects, CfnResource, IAspect
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import IConstruct

__all__ = ["PYTHON_RUNTIME", "acknowledge", "add_to_table_resource_policy"]

PYTHON_RUNTIME: lambda_.Runtime = getattr(lambda_.Runtime, "PYTHON_3_14", None) or lambda_.Runtime(
    "python3.14",
    lambda_.RuntimeFamily.PYTHON,
    supports_inline_code=True,
    supports_code_guru_profiling=True,
)
"""The functions' runtime: the newest Python that Lambda and Powertools support."""

# cdk-nag ids: a rule ("AwsSolutions-IAM5") or one finding ("AwsSolutions-IAM5[Resource::*]").
_FINDING_ID = re.compile(r"(?P<rule>[^\[\]]+)(?:\[(?P<finding>.+)\])?")


def acknowledge(scope: IConstruct, *acknowledgements: tuple[str, str]) -> None:
    """Acknowledge cdk-nag findings (``(id, reason)`` pairs) on ``scope`` and its children."""
    validations: Any = getattr(aws_cdk, "Validations", None)
    if validations is not None:
        validations.of(scope).acknowledge(
            *(aws_cdk.Acknowledgment(id=id_, reason=reason) for id_, reason in acknowledgements)
        )
        return
    suppressions: list[dict[str, Any]] = []
    for id_, reason in acknowledgements:
        match = _FINDING_ID.fullmatch(id_)
        assert match is not None, id_
        entry: dict[str, Any] = {"id": match["rule"], "reason": reason}
        if match["finding"]:
            entry["applies_to"] = [match["finding"]]
        suppressions.append(entry)
    # Before cdk-nag's own aspect (DEFAULT priority) looks at the resources.
    Aspects.of(scope).add(_NagMetadata(suppressions), priority=AspectPriority.MUTATING)


@jsii.implements(IAspect)
class _NagMetadata:
    """Adds cdk-nag 2's suppressions to each resource it visits (merged with any already there)."""

    def __init__(self, suppressions: list[dict[str, Any]]) -> None:
        self._suppressions = suppressions

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        metadata = node.get_metadata("cdk_nag") or {}
        rules = [*metadata.get("rules_to_suppress", []), *self._suppressions]
        node.add_metadata("cdk_nag", {**metadata, "rules_to_suppress": rules})


def add_to_table_resource_policy(table: dynamodb.Table, statement: iam.PolicyStatement) -> None:
    """``table.add_to_resource_policy(statement)``, rendered into the template in every version."""
    table.add_to_resource_policy(statement)
    cfn_table = table.node.default_child
    assert isinstance(cfn_table, dynamodb.CfnTable)
    cfn_table.resource_policy = dynamodb.CfnTable.ResourcePolicyProperty(
        policy_document=table.resource_policy
    )
