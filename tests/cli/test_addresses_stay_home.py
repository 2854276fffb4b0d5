"""Addresses stay home: `audit dlq show` redacts message bodies unless asked, and `audit trail`
takes the address on standard input or from a file (out of shell history and the process list),
finds records under every version of the key and says so when it cannot; the functions normalise
domains under IDNA 2008 with the idna copy their asset vendors."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import boto3
import pytest
from botocore.stub import Stubber

from audit_stack import discovery, lambda_code
from audit_stack.cli import dlq, trail
from audit_stack.cli.errors import EXIT_USAGE
from audit_stack.cli.target import Target
from audit_stack.construct.functions import PUBLISHER_HANDLER
from audit_stack.lambda_code import contract
from audit_stack.local import LocalAuditPipeline
from audit_stack.local.runtime.python_path import LambdaLibraries
from tests.cli.conftest import Audit
from tests.cli.helpers import depth, empty_dead_letter_queue, event_ids, publish_event

ADDRESS = "Dead.Letter.Owner@mail.example"
BODY = f'{{"Type": "Notification", "Message": "subject {ADDRESS}"}}'


@pytest.fixture
def dead_letter_with_an_address(pipeline: LocalAuditPipeline) -> Iterator[None]:
    """One message in the DLQ whose body and attribute both hold an address in clear."""
    empty_dead_letter_queue(pipeline)
    pipeline.client("sqs").send_message(
        QueueUrl=pipeline.outputs["DeadLetterQueueUrl"],
        MessageBody=BODY,
        MessageAttributes={"owner": {"DataType": "String", "StringValue": ADDRESS}},
    )
    yield
    empty_dead_letter_queue(pipeline)


@pytest.mark.usefixtures("dead_letter_with_an_address")
def test_dlq_show_redacts_bodies_by_default_in_json_and_text_and_says_so(audit: Audit) -> None:
    as_json = audit("dlq", "show", "--json")
    as_text = audit("dlq", "show")

    assert as_json.exit_code == as_text.exit_code == 0
    for run in (as_json, as_text):
        assert ADDRESS not in run.stdout + run.stderr
    shown = as_json.json()
    assert shown["bodies_shown"] is False
    (message,) = shown["messages"]
    assert message["body"] is None
    assert message["body_bytes"] == len(BODY.encode())
    assert message["message_attributes"] == {"owner": {"DataType": "String"}}
    assert message["problem"]  # the diagnosis needs no body
    assert dlq.BODIES_REDACTED in as_text.stdout


@pytest.mark.usefixtures("dead_letter_with_an_address")
def test_dlq_show_shows_bodies_only_with_show_bodies_and_says_so(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    as_json = audit("dlq", "show", "--show-bodies", "--json")
    as_text = audit("dlq", "show", "--show-bodies")

    shown = as_json.json()
    assert shown["bodies_shown"] is True
    (message,) = shown["messages"]
    assert message["body"] == BODY
    assert message["message_attributes"]["owner"]["StringValue"] == ADDRESS
    assert dlq.BODIES_SHOWN in as_text.stdout and BODY in as_text.stdout
    assert depth(pipeline, "DeadLetterQueueUrl") == (1, 0)  # still nothing consumed


@pytest.fixture
def recorded_address(audit: Audit, pipeline: LocalAuditPipeline) -> str:
    """An account with a recorded event; its address as typed."""
    address = "Stdin.Trail@mail.example"
    assert audit("delete-account", address).exit_code == 0
    pipeline.run_until_idle()
    return address


def _trail_ids(audit: Audit, *argv: str) -> list[str]:
    run = audit("trail", *argv, "--json")
    assert run.exit_code == 0, run.stderr
    return event_ids(run.json())


def test_trail_reads_the_address_from_standard_input_or_a_file_like_the_argument(
    audit: Audit,
    recorded_address: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    address = recorded_address
    positional = _trail_ids(audit, address)
    monkeypatch.setattr("sys.stdin", io.StringIO(f"  {address.upper()}\n"))
    from_stdin = _trail_ids(audit, "-")
    subject_file = tmp_path / "subject.txt"
    subject_file.write_text(f"{address}\n", encoding="utf-8")
    from_file = _trail_ids(audit, "--subject-file", str(subject_file))

    assert len(positional) >= 1
    assert from_stdin == from_file == positional


@pytest.mark.parametrize(
    ("argv", "stdin", "file_text", "message"),
    [
        ([], "", None, "give the subject as SUBJECT, as - (read from standard input) or with"),
        (["x@mail.example", "--subject-file", "FILE"], "", "y@mail.example", "exactly one"),
        (["-"], "", None, "standard input: must hold exactly one subject, on one line"),
        (["-"], "a@mail.example\nb@mail.example\n", None, "standard input: must hold exactly"),
        (["--subject-file", "FILE"], "", "", "--subject-file "),
        (["--subject-file", "FILE"], "", "a@mail.example\nb@mail.example", "--subject-file "),
        (["--subject-file", "MISSING"], "", None, "--subject-file "),
    ],
)
def test_a_missing_doubled_or_unreadable_address_is_a_usage_error_that_never_repeats_it(
    audit: Audit,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    stdin: str,
    file_text: str | None,
    message: str,
) -> None:
    subject_file = tmp_path / "subject.txt"
    if file_text is not None:
        subject_file.write_text(file_text, encoding="utf-8")
    argv = [
        str(subject_file)
        if word == "FILE"
        else str(tmp_path / "missing")
        if word == "MISSING"
        else word
        for word in argv
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))

    run = audit("trail", *argv)

    assert run.exit_code == EXIT_USAGE
    assert run.stderr.startswith("audit: error: ")
    assert message in run.stderr
    assert "@mail.example" not in run.stderr and run.stdout == ""


def test_the_publisher_imports_the_vendored_idna_in_the_emulators_strict_path(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    """Neither the Lambda runtime nor the Powertools layer ships ``idna``: the functions run it
    from their own asset (else the invocation fails with Runtime.ImportModuleError), so
    ``faß.de`` is recorded under IDNA 2008's ``xn--fa-hia.de``, apart from ``fass.de``."""
    libraries = LambdaLibraries()
    try:
        provided = {path.name for path in libraries.runtime_dir.iterdir()}
        provided |= {path.name for path in libraries.powertools_dir.iterdir()}
    finally:
        libraries.close()
    publisher = next(spec for spec in pipeline.functions if spec.handler == PUBLISHER_HANDLER)

    published = pipeline.invoke("publisher", {"email": "Ursula@Faß.de"})
    pipeline.run_until_idle()

    assert "idna" not in provided
    assert (publisher.code_dir / "idna" / "uts46data.py").is_file()
    assert _trail_ids(audit, "ursula@xn--fa-hia.de") == [published["event_id"]]
    assert _trail_ids(audit, "ursula@fass.de") == []


def test_trail_without_the_key_versions_list_shows_the_current_ones_and_warns_plainly(
    audit: Audit, pipeline: LocalAuditPipeline
) -> None:
    address = "rotated.warning@mail.example"
    secrets = pipeline.client("secretsmanager")
    secret_arn = pipeline.outputs["PseudonymSecretArn"]
    old = secrets.get_secret_value(SecretId=secret_arn)["SecretString"].encode()
    now = datetime.now(UTC)
    before = publish_event(
        pipeline,
        lambda_code.pseudonymous_subject(address, old),
        now - timedelta(minutes=1),
        contract.ACCOUNT_DELETED,
        subject_type=contract.SUBJECT_TYPE_PSEUDONYM,
    )
    # Rotated by hand (the custodian's put-secret-value); a producer with the new key publishes.
    secrets.put_secret_value(SecretId=secret_arn, SecretString="w" * 64)
    after = publish_event(
        pipeline,
        lambda_code.pseudonymous_subject(address, b"w" * 64),
        now,
        contract.ACCOUNT_DELETED,
        subject_type=contract.SUBJECT_TYPE_PSEUDONYM,
    )
    pipeline.run_until_idle()

    complete = audit("trail", address, "--json")
    with pipeline.inject_fault(
        "secretsmanager:ListSecretVersionIds", error_code="AccessDeniedException"
    ):
        partial = audit("trail", address, "--json")
        as_text = audit("trail", address)

    assert event_ids(complete.json()) == [after, before]
    assert complete.json()["warnings"] == [] and "warning" not in complete.stderr
    assert partial.exit_code == as_text.exit_code == 0
    assert event_ids(partial.json()) == [after]
    assert partial.json()["warnings"] == [trail.ROTATION_UNLISTED]
    for run in (partial, as_text):
        assert run.stderr.count("audit: warning: ") == 1
        assert trail.ROTATION_UNLISTED in run.stderr


class _SecretsOnly:
    """A target whose only resource is the pseudonym secret, read through ``client``."""

    def __init__(self, secrets: Any) -> None:
        self.resources = {discovery.PSEUDONYM_SECRET: SECRET_ARN}
        self._secrets = secrets

    def client(self, service: str) -> Any:
        assert service == "secretsmanager"
        return self._secrets


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:audit-AbCdEf"


def test_an_older_key_version_that_cannot_be_read_is_counted_in_a_warning() -> None:
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    versions = [{"VersionId": f"v{n}" + "0" * 30} for n in range(4)]
    with Stubber(secrets) as stub:
        stub.add_response(
            "get_secret_value",
            {"SecretString": "current", "VersionId": versions[0]["VersionId"]},
            {"SecretId": SECRET_ARN},
        )
        stub.add_response(
            "list_secret_version_ids",
            {"Versions": versions[:2], "NextToken": "page-2"},
            {"SecretId": SECRET_ARN, "IncludeDeprecated": True},
        )
        stub.add_response(
            "list_secret_version_ids",
            {"Versions": versions[2:]},
            {"SecretId": SECRET_ARN, "IncludeDeprecated": True, "NextToken": "page-2"},
        )
        stub.add_client_error("get_secret_value", "AccessDeniedException")
        older = {"SecretString": "older", "VersionId": versions[2]["VersionId"]}
        stub.add_response("get_secret_value", older)
        stub.add_client_error("get_secret_value", "ResourceNotFoundException")

        found = trail.lookup(cast(Target, _SecretsOnly(secrets)), "Someone@Mail.Example")

    assert found.partitions == [
        lambda_code.pseudonymous_subject("someone@mail.example", b"current"),
        lambda_code.pseudonymous_subject("someone@mail.example", b"older"),
    ]
    assert found.warnings == [trail.ROTATION_UNREADABLE.format(count=1)]
    assert "1 older version(s) of the pseudonym secret could not be read" in found.warnings[0]


def test_the_clear_partition_is_queried_in_both_pre_v2_spellings_only_when_asked() -> None:
    secrets = boto3.client("secretsmanager", region_name="eu-west-1")
    with Stubber(secrets) as stub:
        for _ in range(2):
            stub.add_response("get_secret_value", {"SecretString": "k", "VersionId": "v" * 32})
            stub.add_response("list_secret_version_ids", {"Versions": []})
        target = cast(Target, _SecretsOnly(secrets))
        default = trail.lookup(target, "E\u0301lodie@Cafe\u0301.fr")
        with_clear = trail.lookup(target, "E\u0301lodie@Cafe\u0301.fr", include_clear=True)

    pseudonym = lambda_code.pseudonymous_subject("élodie@xn--caf-dma.fr", b"k")
    assert default.partitions == [pseudonym]
    assert with_clear.partitions == [
        pseudonym,
        "\u00e9lodie@xn--caf-dma.fr",  # NFC: what version 2 writes in clear
        "e\u0301lodie@xn--caf-dma.fr",  # NFD: what a version 1 producer may have sent
    ]
