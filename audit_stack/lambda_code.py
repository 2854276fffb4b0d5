"""Where the Lambda asset lives, and its subject functions for the CLI (no aws_cdk import).

The ``audit`` CLI derives the same subjects as the functions do, so it runs the asset's own
``audit_events/subject.py`` (standard library only) instead of a copy of it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from types import ModuleType


def lambda_code_dir() -> Path:
    """Where the Lambda asset lives: inside the installed package, else the repository."""
    installed = Path(__file__).resolve().parent / "lambdas"
    if (installed / "audit_events").is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "lambdas"


@functools.cache
def _subject_module() -> ModuleType:
    path = lambda_code_dir() / "audit_events" / "subject.py"
    spec = importlib.util.spec_from_file_location("audit_stack._asset_subject", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normalize_email(email: str) -> str:
    """audit_events.subject.normalize_email (ValueError for a domain that is not valid IDNA)."""
    return str(_subject_module().normalize_email(email))


def pseudonymous_subject(normalized_email: str, secret: bytes) -> str:
    """audit_events.subject.pseudonymous_subject: the keyed pseudonym of an address."""
    return str(_subject_module().pseudonymous_subject(normalized_email, secret))
