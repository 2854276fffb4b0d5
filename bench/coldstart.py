"""Cold-start cost of each function: import time of its handler module, and its asset's size.

Each import runs in a fresh interpreter set up like the emulator's workers (isolated, the asset
folder then the installed libraries on sys.path, the function's own environment), several times;
the median is reported.
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from audit_stack.local import LocalAuditPipeline
from audit_stack.local.runtime.pool import FunctionRuntime
from audit_stack.local.runtime.python_path import LambdaLibraries
from bench.configurations import Configuration

# Imports boto3, then the handler's module, timing each: the second number is what the handler
# adds to a cold start above the SDK every Python function loads anyway.
_PROBE = """
import importlib, json, sys, time
task_root, module, *site_dirs = sys.argv[1:]
sys.path[:0] = [task_root, *site_dirs]
started = time.perf_counter()
import boto3
sdk_done = time.perf_counter()
importlib.import_module(module)
print(json.dumps({"boto3": sdk_done - started, "handler": time.perf_counter() - sdk_done}))
"""


@dataclass(frozen=True)
class ColdStart:
    """One function's import cost and its code asset."""

    configuration: str
    logical_id: str
    handler: str
    boto3_ms: float
    handler_overhead_ms: float
    samples_ms: tuple[float, ...]
    asset: str
    asset_zip_bytes: int


def asset_zip_size(folder: Path) -> int:
    """The size of the folder as a deflated zip, as CloudFormation would upload it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return len(buffer.getvalue())


def _import_once(runtime: FunctionRuntime) -> tuple[float, float]:
    spec = runtime.spec
    module = spec.handler.rsplit(".", 1)[0]
    sites = runtime.python_path
    result = subprocess.run(
        # -I -S -B as the emulator's workers: no user site, no .pth files, no bytecode written.
        [sys.executable, "-I", "-S", "-B", "-c", _PROBE, str(spec.code_dir), module, *sites],
        cwd=spec.code_dir,
        env=runtime.environment("bench/cold-start"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing {spec.handler} failed:\n{result.stderr}")
    timings = json.loads(result.stdout)
    return float(timings["boto3"]) * 1000, float(timings["handler"]) * 1000


def measure(configuration: Configuration, repetitions: int) -> list[ColdStart]:
    """Import time and asset size of every function of the configuration."""
    found: list[ColdStart] = []
    libraries = LambdaLibraries()
    with (
        LocalAuditPipeline(configuration.assembly_dir, configuration.stack_name) as pipeline,
        contextlib.closing(libraries),
    ):
        for spec in pipeline.deployment.functions:
            runtime = FunctionRuntime(
                spec,
                endpoint_url=pipeline.endpoint_url,
                region=pipeline.region,
                on_log=lambda function, line: None,
                python_path=libraries.python_path(spec),
            )
            samples = [_import_once(runtime) for _ in range(repetitions)]
            overheads = tuple(handler for _, handler in samples)
            found.append(
                ColdStart(
                    configuration=configuration.key,
                    logical_id=spec.logical_id,
                    handler=spec.handler,
                    boto3_ms=statistics.median(sdk for sdk, _ in samples),
                    handler_overhead_ms=statistics.median(overheads),
                    samples_ms=overheads,
                    asset=spec.code_dir.name,
                    asset_zip_bytes=asset_zip_size(spec.code_dir),
                )
            )
    return found
