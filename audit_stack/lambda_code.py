"""Where the Lambda code lives, and loading its modules in-process (aws_cdk-free).

The code ships inside the installed package as ``audit_stack.lambdas`` (see pyproject.toml); in
a source checkout (an editable install) it is the repository's top-level ``lambdas/`` folder.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

__all__ = [
    "audit_events_module",
    "contract",
    "lambda_code_dir",
    "normalize_email",
    "pseudonymous_subject",
]

_PACKAGE = "audit_stack.lambdas.audit_events"


def lambda_code_dir() -> Path:
    """Where the Lambda asset lives: inside the installed package, else the repository."""
    installed = Path(__file__).resolve().parent / "lambdas"
    if (installed / "audit_events").is_dir():
        return installed
    return Path(__file__).resolve().parent.parent / "lambdas"


def audit_events_module(name: str) -> ModuleType:
    """``audit_events.<name>`` of the Lambda code, imported as ``audit_stack.lambdas...``, so
    that in-process callers (the producer client) run exactly the code the functions run."""
    if _PACKAGE not in sys.modules:
        try:
            importlib.import_module(_PACKAGE)
        except ModuleNotFoundError:
            # A source checkout: the asset folder is not under audit_stack/.
            folder = lambda_code_dir() / "audit_events"
            spec = importlib.util.spec_from_file_location(
                _PACKAGE, folder / "__init__.py", submodule_search_locations=[str(folder)]
            )
            if spec is None or spec.loader is None:
                raise
            package = importlib.util.module_from_spec(spec)
            sys.modules[_PACKAGE] = package
            spec.loader.exec_module(package)
    return importlib.import_module(f"{_PACKAGE}.{name}")


def normalize_email(email: str) -> str:
    """``audit_events.subject.normalize_email``: the spelling an address's pseudonym is made of
    (a ValueError for a domain that is not valid IDNA)."""
    return str(audit_events_module("subject").normalize_email(email))


def pseudonymous_subject(normalized_email: str, secret: bytes) -> str:
    """``audit_events.subject.pseudonymous_subject``: the keyed pseudonym of an address."""
    return str(audit_events_module("subject").pseudonymous_subject(normalized_email, secret))


# The data contract (table, index, attribute and metric names; lambdas/audit_events/contract.py),
# the same module object the handlers import, typed for mypy through its source path.
if TYPE_CHECKING:
    from audit_events import contract as contract  # "as": a re-export, for mypy
else:
    contract = audit_events_module("contract")
