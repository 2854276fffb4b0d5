"""Which resources of a synthesized stack belong to which AuditPipeline, and in which role.

``AuditPipeline`` marks each of its CloudFormation resources with ``Metadata["AuditPipeline"]``:
``{"pipeline": <construct path within the stack>, "role": <role>}``. The emulator, its pytest
fixture and the ``audit`` CLI read that mark from the template (a cloud assembly's, or
CloudFormation's GetTemplate on AWS), so they work for any stack holding any number of pipelines,
with no stack outputs involved. Kept free of aws_cdk: the CLI and the emulator import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

METADATA_KEY = "AuditPipeline"

# Roles of single resources. Functions get their own role names: "publisher", "recorder", and
# whatever later functions are called (a function's role defaults to its construct id without
# the "Function" suffix, in kebab case), so tooling finds new functions without changes here.
TOPIC = "topic"
QUEUE = "queue"
DEAD_LETTER_QUEUE = "dead-letter-queue"
TABLE = "table"
PUBLISHER = "publisher"
RECORDER = "recorder"
# Every CloudWatch alarm of the pipeline has this role.
ALARM = "alarm"

_FUNCTION_TYPE = "AWS::Lambda::Function"


class PipelineNotFoundError(LookupError):
    """No pipeline, several without a choice, or an unknown choice; the message lists them."""


@dataclass(frozen=True)
class PipelineResources:
    """One AuditPipeline of a template: its construct path and its resources by role."""

    path: str
    """The construct path within the stack, e.g. ``Audit`` or ``Tenants/Audit``."""
    roles: Mapping[str, str]
    """role -> logical id, for the roles held by exactly one resource (topic, queue, functions)."""
    function_roles: tuple[str, ...]
    """The roles of the pipeline's Lambda functions, e.g. ``("publisher", "recorder")``."""
    alarms: tuple[str, ...]
    """Logical ids of the pipeline's CloudWatch alarms."""
    members: tuple[str, ...]
    """Logical ids of every resource of the pipeline."""

    @property
    def id(self) -> str:
        """The construct id given to AuditPipeline, e.g. ``Audit``."""
        return self.path.rsplit("/", 1)[-1]

    def logical_id(self, role: str) -> str:
        """The logical id of the resource with this role; KeyError naming the known roles."""
        if role not in self.roles:
            raise KeyError(
                f"pipeline {self.path!r} has no {role!r}; roles: {', '.join(sorted(self.roles))}"
            )
        return self.roles[role]


def find_pipelines(template: Mapping[str, Any]) -> list[PipelineResources]:
    """Every AuditPipeline marked in a template, in construct-path order."""
    members: dict[str, list[str]] = {}
    roles: dict[str, dict[str, str]] = {}
    functions: dict[str, list[str]] = {}
    alarms: dict[str, list[str]] = {}
    resources: Mapping[str, Any] = template.get("Resources") or {}
    for logical_id, resource in resources.items():
        mark = (resource.get("Metadata") or {}).get(METADATA_KEY)
        if not isinstance(mark, Mapping) or not isinstance(mark.get("pipeline"), str):
            continue
        path = mark["pipeline"]
        members.setdefault(path, []).append(logical_id)
        role = mark.get("role")
        if not isinstance(role, str):
            continue
        if role == ALARM:
            alarms.setdefault(path, []).append(logical_id)
            continue
        roles.setdefault(path, {})[role] = logical_id
        if resource.get("Type") == _FUNCTION_TYPE:
            functions.setdefault(path, []).append(role)
    return [
        PipelineResources(
            path=path,
            roles=dict(roles.get(path, {})),
            function_roles=tuple(functions.get(path, [])),
            alarms=tuple(alarms.get(path, [])),
            members=tuple(ids),
        )
        for path, ids in sorted(members.items())
    ]


def select_pipeline(
    pipelines: Iterable[PipelineResources], wanted: str | None, *, where: str
) -> PipelineResources:
    """The pipeline named ``wanted`` (construct id or path), or the only one when ``wanted`` is
    None. ``where`` names the stack in error messages."""
    found = list(pipelines)
    choices = ", ".join(pipeline.path for pipeline in found)
    if not found:
        raise PipelineNotFoundError(f"{where} holds no AuditPipeline")
    if wanted is None:
        if len(found) == 1:
            return found[0]
        raise PipelineNotFoundError(
            f"{where} holds {len(found)} AuditPipelines: pick one of {choices}"
        )
    matching = _matching(found, wanted)
    if len(matching) == 1:
        return matching[0]
    if not matching:
        raise PipelineNotFoundError(
            f"{where} has no AuditPipeline {wanted!r}; pipelines: {choices}"
        )
    raise PipelineNotFoundError(
        f"{wanted!r} names {len(matching)} AuditPipelines in {where}: pick one of "
        + ", ".join(pipeline.path for pipeline in matching)
    )


def _matching(found: list[PipelineResources], wanted: str) -> list[PipelineResources]:
    """The pipelines ``wanted`` names: its path in the stack (an exact path wins: "Audit" is the
    top-level pipeline even when "Tenants/Audit" exists), its construct id, or its full path
    (the stack's path in front: the longest path that ends it)."""
    exact = [pipeline for pipeline in found if pipeline.path == wanted]
    if exact:
        return exact
    if "/" not in wanted:
        return [pipeline for pipeline in found if pipeline.id == wanted]
    suffixes = [pipeline for pipeline in found if wanted.endswith("/" + pipeline.path)]
    longest = max((len(pipeline.path) for pipeline in suffixes), default=0)
    return [pipeline for pipeline in suffixes if len(pipeline.path) == longest]


def function_role(construct_id: str) -> str:
    """The default role of a function: its construct id without "Function", in kebab case
    (``SealerFunction`` -> ``sealer``)."""
    name = construct_id.removesuffix("Function") or construct_id
    kebab = "".join(
        f"-{char.lower()}" if char.isupper() and index else char.lower()
        for index, char in enumerate(name)
    )
    return kebab
