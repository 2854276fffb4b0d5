"""The emulator's layout holds: ``http/`` is transport only, the emulator's own service APIs and
its test instruments live in folders of their own and reach the endpoint only through the
protocols the pipeline registers them by, and the Lambda runtime is split into worker, pool and
registry."""

from __future__ import annotations

import ast
from pathlib import Path

LOCAL = Path(__file__).resolve().parents[3] / "audit_stack" / "local"
PACKAGE = "audit_stack.local"


def _modules(folder: str) -> set[str]:
    return {path.stem for path in (LOCAL / folder).glob("*.py")}


def _package(path: Path) -> str:
    return ".".join((PACKAGE, *path.parent.relative_to(LOCAL).parts))


def _imports(path: Path, package: str) -> set[str]:
    """Every module (or name in one) a file imports, relative imports resolved in ``package``."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def test_http_holds_only_the_server_operation_naming_and_errors() -> None:
    assert _modules("http") == {"__init__", "server", "operations", "errors"}


def test_http_imports_no_service_api_and_no_instrument() -> None:
    forbidden = (f"{PACKAGE}.services", f"{PACKAGE}.instruments")
    reaching_out = {
        f"{path.name}: {module}"
        for path in (LOCAL / "http").glob("*.py")
        for module in _imports(path, _package(path))
        if module.startswith(forbidden)
    }

    assert reaching_out == set()


def test_the_service_apis_and_the_instruments_live_in_their_own_folders() -> None:
    assert {"lambda_api", "stack_api", "message_moves", "skipped_services"} <= _modules("services")
    assert {"faults", "metering"} <= _modules("instruments")


def test_the_lambda_runtime_is_split_into_worker_pool_and_registry() -> None:
    assert not (LOCAL / "runtime" / "functions.py").exists()
    assert {"worker", "pool", "registry"} <= _modules("runtime")


def test_the_import_check_sees_a_service_api_imported_by_http(tmp_path: Path) -> None:
    """The check above can fail: it sees a service API or an instrument imported absolutely
    or relatively."""
    module = tmp_path / "server.py"
    module.write_text(
        "from audit_stack.local.services.lambda_api import LambdaApi\n"
        "from ..instruments import faults\n"
        "import audit_stack.local.services.stack_api\n"
    )

    imported = _imports(module, f"{PACKAGE}.http")

    assert {
        f"{PACKAGE}.services.lambda_api",
        f"{PACKAGE}.instruments.faults",
        f"{PACKAGE}.services.stack_api",
    } <= imported
