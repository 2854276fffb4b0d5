"""The pytest plugin's own synthesis takes context and an app command from ini options, so a
suite tests its app locally without keeping a `-c local=true` variant of it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit_stack import synth
from audit_stack.local.pytest_plugin import synth_context
from tests.cdk_app import cdk_json_context
from tests.foreign_app import synth_environment

# cdk.json's app never runs: the suite's ini option names another command, and its context
# names the queue.
APP = """
import aws_cdk as cdk

app = cdk.App()
stack = cdk.Stack(app, "LocalVariant")
cdk.aws_sqs.Queue(
    stack, "Jobs", queue_name=app.node.try_get_context("queue_name"), enforce_ssl=True
)
app.synth()
"""
USER_TEST = """
def test_the_plugin_synthesized_with_the_ini_context(local_audit_pipeline):
    urls = local_audit_pipeline.client("sqs").list_queues()["QueueUrls"]
    assert local_audit_pipeline.stack_name == "LocalVariant"
    assert [url.rsplit("/", 1)[1] for url in urls] == ["jobs-from-ini"]
"""


def test_the_plugin_synthesizes_with_the_ini_context_and_app_command(tmp_path: Path) -> None:
    (tmp_path / "local_app.py").write_text(APP)
    cdk_json = {"app": "python -c 'raise SystemExit(3)'", "context": cdk_json_context()}
    (tmp_path / "cdk.json").write_text(json.dumps(cdk_json))
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\n"
        "audit_app = python local_app.py\n"
        "audit_synth_context = queue_name=jobs-from-ini\n"
    )
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["audit_stack.local.pytest_plugin"]\n')
    (tmp_path / "test_user.py").write_text(USER_TEST)

    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**synth.synthesis_environment(), **synth_environment()},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "1 passed" in completed.stdout


def test_context_words_are_key_value_pairs() -> None:
    assert synth_context(["local=true", "name=a=b", "empty="]) == {
        "local": "true",
        "name": "a=b",
        "empty": "",
    }


@pytest.mark.parametrize("word", ["local", "=true"])
def test_a_context_word_without_a_key_and_value_is_a_usage_error_naming_it(word: str) -> None:
    with pytest.raises(pytest.UsageError, match=f"audit_synth_context: '{word}' is not key=value"):
        synth_context([word])
