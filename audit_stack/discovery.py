"""Which resources of a synthesized stack belong to which AuditPipeline, and in which role.

``AuditPipeline`` marks each of its CloudFormation resources with ``Metadata["AuditPipeline"]``:
``{"pipeline": <construct path within the stack>, "role": <role>}``. The emulator, its pytest
fixture and the ``audit`` CLI read that mark from the template (a cloud assembly's, or
CloudFormation's GetTemplate on AWS), so they work for any stack holding any number of pipelines,
with no stack outputs involved. A template without marks (synthesized by a version of the construct
that did not add them, e.g. a stack deployed before) is read from CDK's ``aws:cdk:path`` metadata
and the construct ids the construct has always used. Kept free of aws_cdk: the CLI and the
emulator import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALARM",
    "ANCHOR_BUCKET",
    "DEAD_LETTER_QUEUE",
    "DIGEST_TABLE",
    "METADATA_KEY",
    "PSEUDONYM_SECRET",
    "PUBLISHER",
    "QUEUE",
    "RECORDER",
    "SEALER",
    "SIGNING_KEY",
    "SUBSCRIPTION_DEAD_LETTER_QUEUE",
    "TABLE",
    "TOPIC",
    "PipelineNotFoundError",
    "PipelineResources",
    "find_pipelines",
    "function_environment",
    "function_role",
    "select_pipeline",
]

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
SUBSCRIPTION_DEAD_LETTER_QUEUE = "subscription-dead-letter-queue"
# The digest chain (docs/INTEGRITY.md); its function is found as "sealer".
SEALER = "sealer"
DIGEST_TABLE = "digest-table"
SIGNING_KEY = "signing-key"
# The S3 bucket (Object Lock) of the signed checkpoints, when the pipeline created it.
ANCHOR_BUCKET = "anchor-bucket"
# The key of the subjects' pseudonyms (absent with subject_in_clear).
PSEUDONYM_SECRET = "pseudonym-secret"
# Every CloudWatch alarm of the pipeline has this role.
ALARM = "alarm"

_FUNCTION_TYPE = "AWS::Lambda::Function"
_ALARM_TYPE = "AWS::CloudWatch::Alarm"
_CDK_PATH = "aws:cdk:path"
# For unmarked templates: (construct id, resource type) -> role, as AuditPipeline names them.
_ROLES_BY_CONSTRUCT_ID = {
    ("Topic", "AWS::SNS::Topic"): TOPIC,
    ("Queue", "AWS::SQS::Queue"): QUEUE,
    ("DeadLetterQueue", "AWS::SQS::Queue"): DEAD_LETTER_QUEUE,
    ("Table", "AWS::DynamoDB::Table"): TABLE,
    ("DeleteAccountFunction", _FUNCTION_TYPE): PUBLISHER,
    ("RecordAuditEventFunction", _FUNCTION_TYPE): RECORDER,
    ("SubscriptionDeadLetterQueue", "AWS::SQS::Queue"): SUBSCRIPTION_DEAD_LETTER_QUEUE,
    ("SealerFunction", _FUNCTION_TYPE): SEALER,
    # The digest chain's own resources sit one level down, in the "Sealing" construct.
    ("Sealing/DigestTable", "AWS::DynamoDB::Table"): DIGEST_TABLE,
    ("Sealing/SigningKey", "AWS::KMS::Key"): SIGNING_KEY,
    ("Sealing/AnchorBucket", "AWS::S3::Bucket"): ANCHOR_BUCKET,
    ("PseudonymSecret", "AWS::SecretsManager::Secret"): PSEUDONYM_SECRET,
}


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
    """Every AuditPipeline of a template, in construct-path order: by the construct's marks, or,
    in a template without any, by CDK's path metadata."""
    members: dict[str, list[str]] = {}
    roles: dict[str, dict[str, str]] = {}
    functions: dict[str, list[str]] = {}
    alarms: dict[str, list[str]] = {}
    resources: Mapping[str, Any] = template.get("Resources") or {}
    marks = {
        logical_id: mark
        for logical_id, resource in resources.items()
        if isinstance(mark := (resource.get("Metadata") or {}).get(METADATA_KEY), Mapping)
        and isinstance(mark.get("pipeline"), str)
    }
    for logical_id, mark in (marks or _marks_from_cdk_paths(resources)).items():
        resource = resources[logical_id]
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


def _marks_from_cdk_paths(resources: Mapping[str, Any]) -> dict[str, Mapping[str, str]]:
    """Marks for an unmarked template: a pipeline is a construct path holding both a publisher
    and a recorder (``<stack>/<pipeline>/DeleteAccountFunction/Resource``); its members are the
    resources under that path."""
    paths = {
        logical_id: path.split("/")
        for logical_id, resource in resources.items()
        if isinstance(path := (resource.get("Metadata") or {}).get(_CDK_PATH), str)
    }
    found: dict[str, dict[str, str]] = {}
    for logical_id, parts in paths.items():
        if len(parts) < 4 or parts[-1] != "Resource":
            continue
        kind = resources[logical_id].get("Type")
        for depth in (1, 2):  # the construct id, or a nested construct's "<parent>/<id>"
            role = _ROLES_BY_CONSTRUCT_ID.get(("/".join(parts[-1 - depth : -1]), kind))
            if role is not None:
                # The path within the stack: without the stack (first) and the resource's parts.
                found.setdefault("/".join(parts[1 : -1 - depth]), {})[role] = logical_id
                break
    pipelines = [path for path, roles in found.items() if {PUBLISHER, RECORDER} <= set(roles)]
    marks: dict[str, Mapping[str, str]] = {}
    for pipeline in pipelines:
        for logical_id, parts in paths.items():
            if "/".join(parts[1:]).startswith(pipeline + "/"):
                mark = {"pipeline": pipeline}
                role = next((r for r, i in found[pipeline].items() if i == logical_id), None)
                if role is not None:
                    mark["role"] = role
                elif resources[logical_id].get("Type") == _ALARM_TYPE:
                    mark["role"] = ALARM
                marks[logical_id] = mark
    return marks


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


def function_environment(
    template: Mapping[str, Any], pipeline: PipelineResources, role: str
) -> dict[str, str]:
    """The environment variables the template gives the pipeline's function with this role, as
    text; empty when the function, or its environment, is not in the template."""
    logical_id = pipeline.roles.get(role)
    resource = (template.get("Resources") or {}).get(logical_id) if logical_id else None
    properties = resource.get("Properties") if isinstance(resource, Mapping) else None
    environment = properties.get("Environment") if isinstance(properties, Mapping) else None
    variables = environment.get("Variables") if isinstance(environment, Mapping) else None
    if not isinstance(variables, Mapping):
        return {}
    # Unresolved intrinsics (a {"Ref": ...}) have no value to read here: left out.
    return {
        str(name): str(value)
        for name, value in variables.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }


def function_role(construct_id: str) -> str:
    """The default role of a function: its construct id without "Function", in kebab case
    (``SealerFunction`` -> ``sealer``)."""
    name = construct_id.removesuffix("Function") or construct_id
    kebab = "".join(
        f"-{char.lower()}" if char.isupper() and index else char.lower()
        for index, char in enumerate(name)
    )
    return kebab
