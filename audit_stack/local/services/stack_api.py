"""CloudFormation's read API for the locally deployed stack: DescribeStacks, GetTemplate and
ListStackResources.

Tools find a pipeline's queues, table and functions from the stack's template and resources, as
they do on AWS (the operator CLI resolves ``--stack`` and ``--pipeline`` this way on both
targets). Answered from the emulator's own deployment, not from moto's CloudFormation, which
never saw the stack.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from xml.etree import ElementTree

from audit_stack.endpoints import SELECTED_PIPELINE_TAG
from audit_stack.local.deploy.model import Deployment
from audit_stack.local.http.errors import ApiError, Response
from audit_stack.local.http.operations import Environ, Operation

_NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
_CONTENT_TYPE = [("Content-Type", "text/xml")]


class StackApi:
    """Answers CloudFormation's query-protocol requests about one deployed stack."""

    OPERATIONS = frozenset({"DescribeStacks", "GetTemplate", "ListStackResources"})
    # Other operations are refused rather than passed on to moto, whose CloudFormation would
    # answer as if the stack did not exist: the emulator deploys the stack when it starts.
    EXCLUSIVE = True

    def __init__(
        self,
        deployment: Deployment,
        template: Mapping[str, Any],
        *,
        selected_pipeline: str | None = None,
    ) -> None:
        """``selected_pipeline``: the pipeline the emulator was started for, as a stack tag
        (``endpoints.SELECTED_PIPELINE_TAG``) that the operator CLI reads."""
        self._deployment = deployment
        self._template = template
        self._selected_pipeline = selected_pipeline
        self._created = _timestamp(datetime.now(UTC))

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        return self.answer(operation.name, body, operation.region)

    def answer(self, operation: str, body: bytes, region: str | None) -> Response:
        """The answer to one request (``operation`` as in its Action parameter)."""
        parameters = {
            name: values[0]
            for name, values in parse_qs(body.decode("utf-8", errors="replace")).items()
        }
        region = region or self._deployment.region
        stack_name = parameters.get("StackName")
        if stack_name is None and operation == "DescribeStacks":
            stacks = [self._stack()] if region == self._deployment.region else []
            return _result(operation, [_element("Stacks", stacks)])
        if stack_name is None:
            raise ApiError(
                "ValidationError",
                "1 validation error detected: Value null at 'stackName' failed to satisfy "
                "constraint: Member must not be null",
            )
        known = {self._deployment.stack_name, self._deployment.stack_id}
        if region != self._deployment.region or stack_name not in known:
            # AWS's answer for a stack that is not in the region of the request.
            raise ApiError("ValidationError", f"Stack with id {stack_name} does not exist")
        if operation == "DescribeStacks":
            return _result(operation, [_element("Stacks", [self._stack()])])
        if operation == "GetTemplate":
            # The original template, as AWS returns it for TemplateStage "Original".
            template_body = json.dumps(self._template, indent=1)
            stages = _element("StagesAvailable", [_element("member", "Original")])
            return _result(operation, [_element("TemplateBody", template_body), stages])
        return _result(operation, [_element("StackResourceSummaries", self._resources())])

    def _stack(self) -> ElementTree.Element:
        deployment = self._deployment
        template_outputs = self._template.get("Outputs", {})
        outputs = []
        for key, value in deployment.outputs.items():
            output = [_element("OutputKey", key), _element("OutputValue", value)]
            description = template_outputs.get(key, {}).get("Description")
            if isinstance(description, str):
                output.append(_element("Description", description))
            outputs.append(_element("member", output))
        children = [
            _element("StackId", deployment.stack_id),
            _element("StackName", deployment.stack_name),
            _element("CreationTime", self._created),
            _element("StackStatus", "CREATE_COMPLETE"),
            _element("DisableRollback", "false"),
            _element("EnableTerminationProtection", "false"),
            _element("Outputs", outputs),
            _element("Tags", self._tags()),
            _element("DriftInformation", [_element("StackDriftStatus", "NOT_CHECKED")]),
        ]
        description = self._template.get("Description")
        if isinstance(description, str):
            children.insert(2, _element("Description", description))
        return _element("member", children)

    def _tags(self) -> list[ElementTree.Element]:
        if self._selected_pipeline is None:
            return []
        tag = [
            _element("Key", SELECTED_PIPELINE_TAG),
            _element("Value", self._selected_pipeline),
        ]
        return [_element("member", tag)]

    def _resources(self) -> list[ElementTree.Element]:
        deployment = self._deployment
        skipped = {logical_id: reason for logical_id, _, reason in deployment.skipped}
        members = []
        for logical_id, physical in deployment.resources.items():
            children = [
                _element("LogicalResourceId", logical_id),
                _element("PhysicalResourceId", physical.ref),
                _element("ResourceType", deployment.resource_types[logical_id]),
                _element("LastUpdatedTimestamp", self._created),
                _element("ResourceStatus", "CREATE_COMPLETE"),
            ]
            if logical_id in skipped:
                # The placeholder's name is shaped like the real one, but nothing exists behind it.
                children.append(
                    _element(
                        "ResourceStatusReason",
                        f"not created by the local emulator: {skipped[logical_id]}",
                    )
                )
            children.append(
                _element("DriftInformation", [_element("StackResourceDriftStatus", "NOT_CHECKED")])
            )
            members.append(_element("member", children))
        return members


def _element(tag: str, content: str | list[ElementTree.Element]) -> ElementTree.Element:
    element = ElementTree.Element(tag)
    if isinstance(content, str):
        element.text = content
    else:
        element.extend(content)
    return element


def _result(operation: str, children: list[ElementTree.Element]) -> Response:
    response = ElementTree.Element(f"{operation}Response", xmlns=_NAMESPACE)
    response.append(_element(f"{operation}Result", children))
    response.append(_element("ResponseMetadata", [_element("RequestId", str(uuid.uuid4()))]))
    return Response("200 OK", _CONTENT_TYPE, ElementTree.tostring(response, encoding="utf-8"))


def _timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
