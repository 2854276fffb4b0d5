"""The one synthesis helper (audit_stack.synth) and the tests' synthesis cache, without the CDK:
a stand-in CLI and stand-in apps show what runs, where, with which PATH, and what a failure says."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from audit_stack import synth
from tests.conftest import cached_assembly, sources_digest

# A stand-in `cdk`: records its arguments, its folder and its PATH, then writes a manifest where
# --output says, or fails with CDK-like output when FAIL is set.
_FAKE_CDK = """#!/bin/sh
echo "$@" > "$PWD/args.txt"
echo "$PATH" > "$PWD/path.txt"
if [ -n "$FAIL" ]; then echo "Error: AwsSolutions-SQS3 on Queue"; echo "stack trace" >&2; exit 1; fi
mkdir -p "$4" && echo "{}" > "$4/manifest.json"
"""


def _app_dir(tmp_path: Path, *, cdk_json: bool = True) -> Path:
    app = tmp_path / "app"
    (app / "node_modules" / ".bin").mkdir(parents=True)
    cdk = app / "node_modules" / ".bin" / "cdk"
    cdk.write_text(_FAKE_CDK)
    cdk.chmod(cdk.stat().st_mode | stat.S_IXUSR)
    if cdk_json:
        (app / "cdk.json").write_text('{"app": "python3 app.py"}')
    return app


def test_synthesize_runs_the_apps_own_cdk_synth_quietly_into_outdir(tmp_path: Path) -> None:
    app = _app_dir(tmp_path)
    out = tmp_path / "out"

    assert synth.synthesize(app, out) == out

    assert (out / "manifest.json").is_file()
    assert (app / "args.txt").read_text().split() == ["synth", "--quiet", "--output", str(out)]


def test_the_interpreters_folder_comes_first_on_path_without_an_activated_venv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    app = _app_dir(tmp_path)

    synth.synthesize(app, tmp_path / "out")

    path = (app / "path.txt").read_text().strip().split(os.pathsep)
    assert path[0] == str(Path(sys.executable).parent)
    assert path[1:] == ["/usr/bin", "/bin"]


def test_the_environment_keeps_the_cdk_cli_offline_and_adds_extra_last() -> None:
    env = synth.synthesis_environment({"CDK_CONTEXT_JSON": "{}", "CDK_DISABLE_VERSION_CHECK": "0"})

    assert env["CDK_DISABLE_CLI_TELEMETRY"] == "1"
    assert env["CDK_CONTEXT_JSON"] == "{}"
    # The caller's extra wins: it is the caller's decision.
    assert env["CDK_DISABLE_VERSION_CHECK"] == "0"


def test_a_failed_synthesis_raises_with_the_cdks_own_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL", "1")
    app = _app_dir(tmp_path)

    with pytest.raises(synth.SynthesisError) as raised:
        synth.synthesize(app, tmp_path / "out")

    message = str(raised.value)
    assert "cdk synth failed (exit code 1)" in message
    assert "AwsSolutions-SQS3 on Queue" in message
    assert "stack trace" in message


def test_a_folder_without_cdk_json_is_refused_before_anything_runs(tmp_path: Path) -> None:
    app = _app_dir(tmp_path, cdk_json=False)

    with pytest.raises(synth.SynthesisError, match=r"no cdk\.json"):
        synth.synthesize(app, tmp_path / "out")

    assert not (app / "args.txt").exists()


def test_without_a_cdk_cli_the_error_says_how_to_install_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-venv" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    with pytest.raises(synth.SynthesisError, match="npm install aws-cdk"):
        synth.cdk_command(tmp_path)


def test_the_cdk_on_path_serves_an_app_without_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = _app_dir(tmp_path) / "node_modules" / ".bin"
    monkeypatch.setenv("PATH", str(installed))

    assert synth.cdk_command(tmp_path / "elsewhere") == [str(installed / "cdk")]


def test_a_python_app_runs_with_this_interpreter_and_its_failure_is_reported(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    writes = "import pathlib, sys; pathlib.Path(sys.argv[1]).mkdir(); print('ok')"

    assert synth.synthesize_python_app(["-c", writes, str(out)], out, cwd=tmp_path) == out
    assert out.is_dir()

    fails = "import sys; print('RuntimeError: bad prop', file=sys.stderr); sys.exit(3)"
    with pytest.raises(synth.SynthesisError, match=r"(?s)exit code 3.*RuntimeError: bad prop"):
        synth.synthesize_python_app(["-c", fails], out, cwd=tmp_path)


def test_the_cache_builds_once_per_key_and_keeps_only_the_latest(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(outdir: Path) -> None:
        builds.append(outdir)
        outdir.mkdir()
        (outdir / "manifest.json").write_text("{}")

    first = cached_assembly("app", build, "a", cache_dir=tmp_path)
    again = cached_assembly("app", build, "a", cache_dir=tmp_path)
    other = cached_assembly("app", build, "b", cache_dir=tmp_path)

    assert first == again
    assert len(builds) == 2
    assert (other / "manifest.json").is_file()
    assert not first.exists(), "the entry of the other key is stale and removed"


def test_a_failed_build_leaves_no_entry_and_the_next_session_builds_again(tmp_path: Path) -> None:
    def broken(outdir: Path) -> None:
        outdir.mkdir()
        raise synth.SynthesisError("cdk synth failed")

    with pytest.raises(synth.SynthesisError):
        cached_assembly("app", broken, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.glob("app-*")] == []

    built = cached_assembly("app", lambda out: out.mkdir(), cache_dir=tmp_path)
    assert built.is_dir()


def test_the_cache_key_follows_the_sources(tmp_path: Path) -> None:
    for name in ("app.py", "cdk.json"):
        (tmp_path / name).write_text("1")
    (tmp_path / "lambdas" / "audit_events").mkdir(parents=True)
    handler = tmp_path / "lambdas" / "audit_events" / "handler.py"
    handler.write_text("A = 1\n")
    before = sources_digest(root=tmp_path)

    assert sources_digest(root=tmp_path) == before
    handler.write_text("A = 2\n")
    assert sources_digest(root=tmp_path) != before
    assert sources_digest("other props", root=tmp_path) != sources_digest(root=tmp_path)
