"""What a function can import, as on Lambda: its asset, its layers, and the Lambda Python
runtime's own libraries; never the rest of the emulator's virtualenv.

Each stand-in is a folder of symbolic links to exactly the installed distributions Lambda would
provide (found with importlib.metadata), made once per emulator run: a handler importing anything
else fails with ``Runtime.ImportModuleError``, as it does on Lambda.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from audit_stack.local.deploy.model import FunctionSpec

# What the Lambda Python runtime ships besides the standard library (/var/runtime): the AWS SDK
# and its dependencies.
LAMBDA_RUNTIME_DISTRIBUTIONS: Final = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
# The Powertools for AWS Lambda (Python) layer: the library and what it requires without extras,
# plus the extras' libraries the published layer ships and this project's functions import
# (fastjsonschema, for the validation utility: the layer's own canary imports it,
# aws-powertools/powertools-lambda-python layer_v3/layer/canary/app.py).
POWERTOOLS_DISTRIBUTION: Final = "aws-lambda-powertools"
POWERTOOLS_LAYER_EXTRAS: Final = ("fastjsonschema",)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"\bextra\s*==")


class LibraryError(RuntimeError):
    """A distribution Lambda provides is not installed beside the emulator."""


def distribution_closure(names: Iterable[str]) -> list[importlib.metadata.Distribution]:
    """The installed distributions ``names`` and what they require (extras left out)."""
    found: dict[str, importlib.metadata.Distribution] = {}
    pending = list(names)
    while pending:
        name = _canonical(pending.pop(0))
        if name in found:
            continue
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            raise LibraryError(
                f"{name} is not installed: the emulator gives functions the installed copy of "
                "what Lambda provides (install audit-pipeline[local])"
            ) from None
        found[name] = distribution
        for requirement in distribution.requires or []:
            requirement_name, _, marker = requirement.partition(";")
            if _EXTRA_MARKER.search(marker):
                continue
            match = _REQUIREMENT_NAME.match(requirement_name)
            if match:
                pending.append(match.group(1))
    return list(found.values())


def link_distributions(
    folder: Path, distributions: Iterable[importlib.metadata.Distribution]
) -> Path:
    """``folder`` holding a symbolic link to each top-level module, package and metadata folder
    of ``distributions``, and nothing else."""
    folder.mkdir(parents=True, exist_ok=True)
    for distribution in distributions:
        tops = {
            path.parts[0]
            for path in distribution.files or []
            if path.parts and path.parts[0] not in {"..", "__pycache__"}
        }
        for top in sorted(tops):
            link = folder / top
            target = Path(str(distribution.locate_file(top)))
            if not link.exists() and target.exists():
                link.symlink_to(target, target_is_directory=target.is_dir())
    return folder


class LambdaLibraries:
    """The per-run folders standing in for the Lambda runtime's libraries and the Powertools
    layer; removed by ``close``."""

    def __init__(self) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="audit-emulator-libraries-"))
        self.runtime_dir = link_distributions(
            self._root / "runtime", distribution_closure(LAMBDA_RUNTIME_DISTRIBUTIONS)
        )
        self._powertools_dir: Path | None = None

    @property
    def powertools_dir(self) -> Path:
        if self._powertools_dir is None:
            self._powertools_dir = link_distributions(
                self._root / "powertools",
                distribution_closure([POWERTOOLS_DISTRIBUTION, *POWERTOOLS_LAYER_EXTRAS]),
            )
        return self._powertools_dir

    def python_path(self, spec: FunctionSpec) -> list[str]:
        """The function's path after its task root, in Lambda's order: its layers (/opt), then
        the runtime's libraries (/var/runtime)."""
        layers = [str(folder) for folder in spec.layer_dirs]
        if spec.powertools_layer:
            layers.append(str(self.powertools_dir))
        return [*layers, str(self.runtime_dir)]

    def close(self) -> None:
        shutil.rmtree(self._root, ignore_errors=True)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
