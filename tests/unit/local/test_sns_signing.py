"""The emulator's SNS signing: the worker bootstrap that pins its certificate, the requests that
serve and use it, and moto's envelope hook."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import moto.sns.models
import pytest

from audit_stack.local.control.sns_signing import (
    TRUST_BOOTSTRAP,
    NotificationSigner,
    SigningCertificateApi,
    SnsSigningHook,
)
from audit_stack.local.http.errors import ApiError
from audit_stack.local.http.operations import Operation, identify
from audit_stack.local.runtime._lambda_runtime import _run_bootstrap

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:audit"


@pytest.fixture(scope="module")
def signer() -> NotificationSigner:
    return NotificationSigner.generate("http://127.0.0.1:4599")


@pytest.fixture
def probe_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A task root with a module that records the calls the bootstrap makes."""
    package = tmp_path / "probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "pins.py").write_text(
        "calls = []\ndef trust(url, pem):\n    calls.append((url, pem))\n"
    )
    (package / "broken.py").write_text("import no_such_dependency_here\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for name in [name for name in sys.modules if name.startswith("probe_pkg")]:
        del sys.modules[name]


def test_the_bootstrap_calls_the_named_function_with_the_url_and_pem_before_the_handler(
    probe_package: Path, signer: NotificationSigner
) -> None:
    instruction = signer.bootstrap_argument().replace(
        ":".join(TRUST_BOOTSTRAP), "probe_pkg.pins:trust", 1
    )

    _run_bootstrap([instruction])

    assert sys.modules["probe_pkg.pins"].calls == [(signer.cert_url, signer.certificate_pem)]


def test_the_bootstrap_leaves_a_function_without_the_module_alone(probe_package: Path) -> None:
    _run_bootstrap(
        [
            "probe_pkg.absent:trust:http://127.0.0.1:1/x.pem:00",
            "no_such_package.module:trust:http://127.0.0.1:1/x.pem:00",
            "probe_pkg.pins:trust:http://127.0.0.1:1/y.pem:0102",
        ]
    )

    # Skipped without an error, and the instructions after them still ran.
    assert sys.modules["probe_pkg.pins"].calls == [("http://127.0.0.1:1/y.pem", b"\x01\x02")]


def test_the_bootstrap_does_not_hide_a_module_whose_own_import_fails(probe_package: Path) -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_here"):
        _run_bootstrap(["probe_pkg.broken:trust:http://127.0.0.1:1/x.pem:00"])


def test_the_bootstrap_names_the_recorders_trust_seam() -> None:
    module, function = TRUST_BOOTSTRAP
    lambdas = Path(__file__).resolve().parents[3] / "lambdas"
    source = (lambdas / (module.replace(".", "/") + ".py")).read_text()
    assert f"def {function}(url: str, pem: bytes)" in source


def test_the_certificate_is_served_at_its_url_and_nowhere_else(
    signer: NotificationSigner,
) -> None:
    path = signer.cert_url.removeprefix("http://127.0.0.1:4599")
    operation = identify({"REQUEST_METHOD": "GET", "PATH_INFO": path}, b"")
    api = SigningCertificateApi(signer, lambda arn: arn == TOPIC_ARN)

    served = api.handle(operation, {"PATH_INFO": path}, b"")
    elsewhere = "/_emulator/sns/SimpleNotificationService-" + "0" * 32 + ".pem"

    assert operation == Operation("sns", "GetSigningCertificate", "rest")
    assert served.status == "200 OK" and served.body == signer.certificate_pem
    with pytest.raises(ApiError, match="no such certificate"):
        api.handle(operation, {"PATH_INFO": elsewhere}, b"")


def test_the_signing_helper_signs_a_notification_of_a_known_topic_only(
    signer: NotificationSigner,
) -> None:
    operation = identify({"REQUEST_METHOD": "POST", "PATH_INFO": "/_emulator/sns/sign"}, b"")
    api = SigningCertificateApi(signer, lambda arn: arn == TOPIC_ARN)

    answer = api.handle(
        operation, {}, json.dumps({"TopicArn": TOPIC_ARN, "Message": "{}"}).encode()
    )

    envelope = json.loads(answer.body)
    assert operation == Operation("sns", "SignNotification", "rest")
    assert envelope["TopicArn"] == TOPIC_ARN and envelope["SignatureVersion"] == "2"
    assert envelope["SigningCertURL"] == signer.cert_url
    with pytest.raises(ApiError, match="no such topic"):
        api.handle(
            operation, {}, json.dumps({"TopicArn": f"{TOPIC_ARN}x", "Message": "{}"}).encode()
        )


def test_moto_envelopes_are_signed_by_the_emulator_while_the_hook_is_installed(
    signer: NotificationSigner,
) -> None:
    models: Any = moto.sns.models
    original = models.Subscription.get_post_data
    hook = SnsSigningHook()

    class _Topic:
        arn = TOPIC_ARN

    class _Subscription:
        topic = _Topic()
        arn = f"{TOPIC_ARN}:0b7c5d6e"

    hook.install(signer)
    try:
        envelope = models.Subscription.get_post_data(_Subscription(), "hello", "m-1", "subject")
    finally:
        hook.uninstall()

    assert models.Subscription.get_post_data is original
    assert envelope["SigningCertURL"] == signer.cert_url
    assert envelope["Subject"] == "subject" and envelope["MessageId"] == "m-1"
    assert envelope["UnsubscribeURL"].endswith(f"SubscriptionArn={_Subscription.arn}")


@pytest.mark.parametrize(
    ("attributes", "version"),
    [
        ({}, "1"),
        ({"signature_version": "2"}, "2"),
        ({"SignatureVersion": "2"}, "2"),
        ({"signature_version": "2", "SignatureVersion": "1"}, "1"),
    ],
    ids=["AWS default", "CreateTopic", "SetTopicAttributes", "set after create"],
)
def test_moto_envelopes_carry_the_topics_signature_version(
    signer: NotificationSigner, attributes: dict[str, str], version: str
) -> None:
    models: Any = moto.sns.models
    topic = type("Topic", (), {"arn": TOPIC_ARN, **attributes})()
    subscription = type("Subscription", (), {"topic": topic, "arn": f"{TOPIC_ARN}:s"})()
    hook = SnsSigningHook()

    hook.install(signer)
    try:
        envelope = models.Subscription.get_post_data(subscription, "hello", "m-1", None)
    finally:
        hook.uninstall()

    assert envelope["SignatureVersion"] == version
