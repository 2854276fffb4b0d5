"""The pipeline functions' code asset: the Lambda code and the pure-Python libraries it vendors.

The Lambda Python runtime gives the functions the standard library and boto3, and the Powertools
layer gives them Powertools and fastjsonschema; anything else the code imports ships inside its
own asset. Staged at synthesis from the installed distributions (pinned in requirements-dev.txt),
with no Docker and no network, as the publisher layer is (``publisher_layer.py``).
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from functools import cache
from pathlib import Path
from typing import Final

from audit_stack.lambda_code import lambda_code_dir

__all__ = [
    "VENDORED_DISTRIBUTIONS",
    "copy_distribution",
    "function_code_dir",
    "stage_function_code",
]

VENDORED_DISTRIBUTIONS: Final = ("idna",)
"""What the Lambda code imports that neither the runtime nor the Powertools layer ships:
``idna`` (IDNA 2008 / UTS #46 for e-mail domains, ``audit_events/subject.py``)."""
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def copy_distribution(name: str, destination: Path) -> None:
    """An installed pure-Python distribution's package folders, as pip would install them."""
    distribution = importlib.metadata.distribution(name)
    tops = (distribution.read_text("top_level.txt") or name).split()
    for top in tops:
        source = Path(str(distribution.locate_file(top)))
        if source.is_dir():
            shutil.copytree(source, destination / top, ignore=_IGNORED)


def stage_function_code(destination: Path) -> Path:
    """Write the functions' asset under ``destination``: ``audit_events/`` and the vendored
    libraries beside it (the task root, on the function's path first)."""
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        lambda_code_dir() / "audit_events", destination / "audit_events", ignore=_IGNORED
    )
    for name in VENDORED_DISTRIBUTIONS:
        copy_distribution(name, destination)
    return destination


@cache
def function_code_dir() -> Path:
    """One staging folder per process; CDK copies it into cdk.out under its content hash."""
    return stage_function_code(Path(tempfile.mkdtemp(prefix="audit-function-code-")))
