"""What a deployment reports, in words: each resource created, skipped or not reproduced (the
emulator's verbose output), and the counts the demo prints."""

from __future__ import annotations

from collections.abc import Sequence

from audit_stack.local.deploy.model import Deployment


def deployment_report(deployment: Deployment) -> list[str]:
    """One line per resource created, skipped, and property not reproduced, of one stack."""
    created = deployment.created_types
    return [
        f"deployed stack {deployment.stack_name}",
        *(
            f"created {created[logical_id]} {logical_id}: {physical.ref}"
            for logical_id, physical in deployment.resources.items()
            if logical_id in created
        ),
        *(
            f"skipped {resource_type} {logical_id}: {reason}"
            for logical_id, resource_type, reason in deployment.skipped
        ),
        *(
            f"not reproduced: {logical_id}.{name}: {reason}"
            for logical_id, name, reason in deployment.not_reproduced
        ),
    ]


def resource_counts(stacks: Sequence[Deployment]) -> str:
    """How many resources the stacks created and skipped, e.g. ``31 resources created, 4
    skipped (off the data path)``."""
    created = sum(len(stack.created_types) for stack in stacks)
    skipped = sum(len(stack.skipped) for stack in stacks)
    return f"{created} resources created, {skipped} skipped (off the data path)"
