"""Marks every CloudFormation resource of an AuditPipeline with its pipeline and role.

The mark (``Metadata["AuditPipeline"]``, read by ``audit_stack.discovery``) is added by an aspect
at synthesis, so resources that the construct creates later, or that a subclass adds, are marked
too: a Lambda function without an explicit role gets one from its construct id.
"""

from __future__ import annotations

import jsii
from aws_cdk import AspectPriority, Aspects, CfnResource, IAspect, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct, IConstruct

from audit_stack.discovery import ALARM, METADATA_KEY, function_role

__all__ = ["PipelineMarker"]


class PipelineMarker:
    """Remembers the roles of a pipeline's resources and marks them at synthesis."""

    def __init__(self, pipeline: Construct) -> None:
        stack_path = Stack.of(pipeline).node.path
        self.path = pipeline.node.path.removeprefix(stack_path).lstrip("/")
        self._roles: dict[str, str] = {}
        Aspects.of(pipeline).add(_MarkResources(self), priority=AspectPriority.MUTATING)

    def assign(self, construct: IConstruct, role: str) -> None:
        """Give the CloudFormation resource of ``construct`` (an L2 or an L1) this role."""
        resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
        if resource is None:
            raise ValueError(f"{construct.node.path} has no CloudFormation resource to mark")
        self._roles[resource.node.path] = role

    def role_of(self, resource: CfnResource) -> str | None:
        if resource.node.path in self._roles:
            return self._roles[resource.node.path]
        if isinstance(resource, lambda_.CfnFunction) and resource.node.scope is not None:
            return function_role(resource.node.scope.node.id)
        if isinstance(resource, cloudwatch.CfnAlarm):
            return ALARM
        return None


@jsii.implements(IAspect)
class _MarkResources:
    def __init__(self, marker: PipelineMarker) -> None:
        self._marker = marker

    def visit(self, node: IConstruct) -> None:
        if not isinstance(node, CfnResource):
            return
        mark = {"pipeline": self._marker.path}
        role = self._marker.role_of(node)
        if role is not None:
            mark["role"] = role
        node.add_metadata(METADATA_KEY, mark)
