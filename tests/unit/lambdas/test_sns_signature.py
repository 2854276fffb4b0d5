"""The recorder's SNS signature check: known answers made with `cryptography`, the URL rule, the
certificate cache and the trust seam, and the recorder refusing what SNS did not sign."""

from __future__ import annotations

import base64
import datetime
import http.client
import io
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from audit_events import sns_signature
from audit_events.sns_signature import (
    CertificateUnavailableError,
    InvalidCertificateError,
    RsaPublicKey,
    UnverifiedMessageError,
    check_signing_cert_url,
    pem_certificate_der,
    rsa_public_key_from_certificate,
    signing_host,
    string_to_sign,
    verify_notification,
    verify_pkcs1v15_sha256,
)

from .builders import (
    REGION,
    TOPIC_ARN,
    account_deleted,
    other_signer,
    record_for,
    sns_notification,
    sns_test_signer,
    sqs_event,
    sqs_record,
)
from .conftest import emitted_metrics

MESSAGE = b"Message\n{}\nMessageId\nid\nTimestamp\n2025-03-14T09:26:53.589Z\nTopicArn\narn\n"


def _certificate(key: Any, *, sign_with: Any = None) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(sign_with or key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_key(rsa_key: rsa.RSAPrivateKey) -> RsaPublicKey:
    return rsa_public_key_from_certificate(_certificate(rsa_key))


def _sign(key: rsa.RSAPrivateKey, message: bytes) -> bytes:
    return key.sign(message, padding.PKCS1v15(), hashes.SHA256())


# --- Known answers: the certificate's key ------------------------------------------------------


def test_public_key_read_from_a_certificate_is_the_key_cryptography_put_there(
    rsa_key: rsa.RSAPrivateKey, public_key: RsaPublicKey
) -> None:
    numbers = rsa_key.public_key().public_numbers()
    assert public_key == RsaPublicKey(numbers.n, numbers.e)


def test_public_key_is_read_from_the_pem_form_too(rsa_key: rsa.RSAPrivateKey) -> None:
    der = _certificate(rsa_key)
    pem = x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)
    assert pem_certificate_der(pem) == der


def test_a_certificate_with_an_ec_key_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidCertificateError, match="not an RSA key"):
        rsa_public_key_from_certificate(_certificate(key))


def test_an_rsa_key_shorter_than_2048_bits_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidCertificateError, match="shorter than 2048 bits"):
        rsa_public_key_from_certificate(_certificate(key))


@pytest.mark.parametrize("cut", [1, 10, 300])
def test_a_truncated_certificate_is_refused(rsa_key: rsa.RSAPrivateKey, cut: int) -> None:
    with pytest.raises(InvalidCertificateError):
        rsa_public_key_from_certificate(_certificate(rsa_key)[:-cut])


def test_trailing_bytes_after_a_certificate_are_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(InvalidCertificateError, match="unexpected bytes"):
        rsa_public_key_from_certificate(_certificate(rsa_key) + b"\x00")


def test_text_that_is_not_a_pem_certificate_is_refused() -> None:
    with pytest.raises(InvalidCertificateError, match="no PEM certificate"):
        pem_certificate_der(b"<html>not found</html>")


# --- Known answers: PKCS#1 v1.5 with SHA-256 -------------------------------------------------


def test_a_signature_made_by_cryptography_verifies(
    rsa_key: rsa.RSAPrivateKey, public_key: RsaPublicKey
) -> None:
    assert verify_pkcs1v15_sha256(public_key, MESSAGE, _sign(rsa_key, MESSAGE))


def test_a_changed_message_fails(rsa_key: rsa.RSAPrivateKey, public_key: RsaPublicKey) -> None:
    signature = _sign(rsa_key, MESSAGE)
    assert not verify_pkcs1v15_sha256(public_key, MESSAGE.replace(b"{}", b"[]"), signature)


def test_a_signature_by_another_key_fails(public_key: RsaPublicKey) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not verify_pkcs1v15_sha256(public_key, MESSAGE, _sign(other, MESSAGE))


@pytest.mark.parametrize(
    "damage",
    [
        lambda signature: signature[:-1],
        lambda signature: signature + b"\x00",
        lambda signature: b"\x00" + signature[1:],
        lambda signature: signature[:-1] + bytes([signature[-1] ^ 1]),
        lambda signature: b"",
    ],
    ids=["truncated", "extended", "first byte zeroed", "last bit flipped", "empty"],
)
def test_a_damaged_signature_fails(
    rsa_key: rsa.RSAPrivateKey, public_key: RsaPublicKey, damage: Any
) -> None:
    assert not verify_pkcs1v15_sha256(public_key, MESSAGE, damage(_sign(rsa_key, MESSAGE)))


def test_a_signature_as_large_as_the_modulus_fails(public_key: RsaPublicKey) -> None:
    too_large = public_key.modulus.to_bytes(public_key.size_bytes, "big")
    assert not verify_pkcs1v15_sha256(public_key, MESSAGE, too_large)


def test_a_sha1_signature_fails_the_sha256_check(
    rsa_key: rsa.RSAPrivateKey, public_key: RsaPublicKey
) -> None:
    sha1 = rsa_key.sign(MESSAGE, padding.PKCS1v15(), hashes.SHA1())
    assert not verify_pkcs1v15_sha256(public_key, MESSAGE, sha1)


# --- The string to sign and the certificate URL rule -------------------------------------------


def test_string_to_sign_is_aws_documented_layout_with_subject_only_when_present() -> None:
    envelope = {
        "Type": "Notification",
        "MessageId": "m",
        "TopicArn": "t",
        "Message": "hello",
        "Timestamp": "ts",
        "SignatureVersion": "2",
    }
    assert string_to_sign(envelope) == (
        b"Message\nhello\nMessageId\nm\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    )
    assert string_to_sign({**envelope, "Subject": "s"}) == (
        b"Message\nhello\nMessageId\nm\nSubject\ns\nTimestamp\nts\nTopicArn\nt\nType\nNotification\n"
    )


@pytest.mark.parametrize(
    ("topic_arn", "host"),
    [
        ("arn:aws:sns:eu-west-1:123456789012:t", "sns.eu-west-1.amazonaws.com"),
        ("arn:aws-cn:sns:cn-north-1:123456789012:t", "sns.cn-north-1.amazonaws.com.cn"),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t", "sns.us-gov-west-1.amazonaws.com"),
    ],
)
def test_signing_host_is_the_topic_regions_sns_host(topic_arn: str, host: str) -> None:
    assert signing_host(topic_arn) == host


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-1.amazonaws.com.attacker.example/SimpleNotificationService-a.pem",
        "https://attacker.example/SimpleNotificationService-abc.pem",
        "https://user@sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/SimpleNotificationService-abc.pem",
        "https://SNS.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        "https://sns.eu-west-1.amazonaws.com/other.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
        "https://sns.eu-west-1.amazonaws.com/a/../SimpleNotificationService-abc.pem",
    ],
)
def test_certificate_urls_off_the_regions_sns_host_are_refused(url: str) -> None:
    with pytest.raises(UnverifiedMessageError, match="SigningCertURL: must be https://sns"):
        check_signing_cert_url(url, TOPIC_ARN)


def test_the_regions_sns_certificate_url_is_accepted() -> None:
    check_signing_cert_url(
        f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
        TOPIC_ARN,
    )


# --- The whole check -----------------------------------------------------------------------


def _verify(body: str) -> None:
    verify_notification(body, topic_arn=TOPIC_ARN, timeout_seconds=5)


def test_a_notification_signed_by_the_tests_sns_verifies() -> None:
    _verify(sns_notification(account_deleted().to_json()))


def test_a_notification_with_a_subject_verifies() -> None:
    signer = sns_test_signer()
    envelope = signer.sign(
        {
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": TOPIC_ARN,
            "Subject": "a subject",
            "Message": "{}",
            "Timestamp": "2025-03-14T09:26:53.589Z",
        }
    )
    _verify(json.dumps(envelope))
    with pytest.raises(UnverifiedMessageError, match="Signature: does not match"):
        _verify(json.dumps({**envelope, "Subject": "another subject"}))


@pytest.mark.parametrize(
    "field", ["Message", "MessageId", "Timestamp", "TopicArn", "Type", "Subject"]
)
def test_any_changed_signed_field_fails(field: str) -> None:
    changed = {"TopicArn": "arn:aws:sns:eu-west-1:123456789012:other"}
    body = sns_notification(
        account_deleted().to_json(), changes={field: changed.get(field, "changed")}
    )
    with pytest.raises(UnverifiedMessageError):
        _verify(body)


def test_a_signature_checked_against_another_trusted_certificate_fails() -> None:
    body = sns_notification(
        account_deleted().to_json(), changes={"SigningCertURL": other_signer().cert_url}
    )
    with pytest.raises(UnverifiedMessageError, match="Signature: does not match"):
        _verify(body)


def test_a_notification_of_another_topic_is_refused_even_when_genuinely_signed() -> None:
    other_topic = f"arn:aws:sns:{REGION}:123456789012:someone-elses-topic"
    body = sns_notification(account_deleted().to_json(), topic_arn=other_topic)
    verify_notification(body, topic_arn=other_topic, timeout_seconds=5)
    with pytest.raises(UnverifiedMessageError, match="TopicArn: must be the recorder's own topic"):
        _verify(body)


@pytest.mark.parametrize("version", ["1", None, 2, ""])
def test_signature_version_other_than_2_is_refused(version: object) -> None:
    body = sns_notification(account_deleted().to_json(), changes={"SignatureVersion": version})
    with pytest.raises(UnverifiedMessageError, match='SignatureVersion: must be "2"'):
        _verify(body)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"Signature": None}, "Signature: must be a non-empty string"),
        ({"Signature": "not base64!"}, "Signature: must be base64"),
        ({"SigningCertURL": None}, "SigningCertURL: must be a non-empty string"),
        ({"Type": "SubscriptionConfirmation"}, 'Type: must be "Notification"'),
        ({"MessageId": None}, "MessageId: must be a non-empty string"),
    ],
)
def test_incomplete_notifications_are_refused_with_the_field_and_the_rule(
    changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(UnverifiedMessageError, match=reason):
        _verify(sns_notification(account_deleted().to_json(), changes=changes))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body: must be valid JSON"),
        ("[]", "body: must be a JSON object"),
        (json.dumps(account_deleted().to_json()), "body: must be a JSON object"),
        (account_deleted().to_json(), 'Type: must be "Notification"'),
    ],
)
def test_bodies_that_are_no_notification_are_refused(body: str, reason: str) -> None:
    with pytest.raises(UnverifiedMessageError, match=reason):
        _verify(body)


def test_a_certificate_url_on_a_foreign_host_is_refused_without_any_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connections: list[Any] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: connections.append(address))
    body = sns_notification(
        account_deleted().to_json(),
        changes={"SigningCertURL": "https://attacker.example/SimpleNotificationService-1.pem"},
    )
    with pytest.raises(UnverifiedMessageError, match="SigningCertURL"):
        _verify(body)
    assert connections == []


class _Response:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, limit: int) -> bytes:
        return self._data[:limit]

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_certificate_on_the_sns_host_is_fetched_once_then_cached(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = sns_test_signer()
    url = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-fetched.pem"
    fetched: list[tuple[str, float]] = []

    def open_url(requested: str, timeout: float) -> _Response:
        fetched.append((requested, timeout))
        return _Response(signer.certificate_pem)

    monkeypatch.setattr(sns_signature._opener, "open", open_url)
    body = sns_notification(account_deleted().to_json(), changes={"SigningCertURL": url})

    verify_notification(body, topic_arn=TOPIC_ARN, timeout_seconds=2.5)
    verify_notification(body, topic_arn=TOPIC_ARN, timeout_seconds=2.5)

    assert fetched == [(url, 2.5)]


def test_the_fetch_never_follows_a_redirect_off_the_sns_host() -> None:
    request = urllib.request.Request(
        f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-moved.pem"
    )
    target = "https://attacker.example/SimpleNotificationService-1.pem"
    headers = http.client.HTTPMessage()
    handler = next(
        h
        for h in getattr(sns_signature._opener, "handlers", [])
        if isinstance(h, urllib.request.HTTPRedirectHandler)
    )
    default = urllib.request.HTTPRedirectHandler()
    body = io.BytesIO()
    # urllib's own handler would follow it; the opener's refuses.
    assert default.redirect_request(request, body, 302, "Found", headers, target) is not None
    assert handler.redirect_request(request, body, 302, "Found", headers, target) is None


def test_a_missing_certificate_is_unverified_and_an_unreachable_one_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-missing.pem"
    body = sns_notification(account_deleted().to_json(), changes={"SigningCertURL": url})

    def not_found(requested: str, timeout: float) -> _Response:
        raise urllib.error.HTTPError(requested, 404, "Not Found", None, None)  # type: ignore[arg-type]

    def unreachable(requested: str, timeout: float) -> _Response:
        raise urllib.error.URLError("timed out")

    monkeypatch.setattr(sns_signature._opener, "open", not_found)
    with pytest.raises(UnverifiedMessageError, match=r"no certificate there \(HTTP 404\)"):
        _verify(body)
    monkeypatch.setattr(sns_signature._opener, "open", unreachable)
    with pytest.raises(CertificateUnavailableError):
        _verify(body)


def test_nothing_is_trusted_without_a_pin_or_a_fetch_once_the_pins_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = sns_notification(account_deleted().to_json())
    requested: list[str] = []

    def unreachable(url: str, timeout: float) -> _Response:
        requested.append(url)
        raise urllib.error.URLError("unreachable")

    monkeypatch.setattr(sns_signature._opener, "open", unreachable)
    _verify(body)
    sns_signature.forget_certificates()

    with pytest.raises(CertificateUnavailableError):
        _verify(body)
    assert requested == [sns_test_signer().cert_url]


def test_the_module_reads_no_environment_or_file_to_decide_what_it_trusts() -> None:
    source = Path(sns_signature.__file__).read_text(encoding="utf-8")
    assert "os.environ" not in source and "getenv" not in source and "import os" not in source


# --- The recorder ----------------------------------------------------------------------------


def _scan(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return items


def test_forged_direct_invoke_is_poison_counted_and_records_nothing(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forged = json.dumps(
        {
            "Type": "Notification",
            "MessageId": "forged",
            "TopicArn": TOPIC_ARN,
            "Message": account_deleted().to_json(),
            "Timestamp": "2020-01-01T00:00:00.000Z",
            "SignatureVersion": "2",
            "Signature": base64.b64encode(b"x" * 256).decode(),
            "SigningCertURL": "https://attacker.example/SimpleNotificationService-1.pem",
        }
    )
    record = sqs_record(forged)
    capsys.readouterr()

    response = recorder.handler(sqs_event(record), lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert _scan(audit_table) == []
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["UnverifiedMessages"] == 1
    assert metrics["PoisonMessages"] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"TopicArn": f"arn:aws:sns:{REGION}:123456789012:another-topic"},
        {"Message": account_deleted("someone.else@mail.com").to_json()},
        {"SignatureVersion": "1"},
        {"SigningCertURL": "https://attacker.example/SimpleNotificationService-1.pem"},
    ],
    ids=["other topic", "tampered message", "signature version 1", "foreign cert host"],
)
def test_recorder_refuses_what_sns_did_not_sign_for_its_topic(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, str],
) -> None:
    genuine = record_for(account_deleted())
    refused = sqs_record(sns_notification(account_deleted().to_json(), changes=changes))
    capsys.readouterr()

    response = recorder.handler(sqs_event(genuine, refused), lambda_context)

    assert response == {"batchItemFailures": [{"itemIdentifier": refused["messageId"]}]}
    (item,) = _scan(audit_table)
    assert item["topic_arn"] == {"S": TOPIC_ARN}
    assert emitted_metrics(capsys.readouterr().out)["UnverifiedMessages"] == 1


def test_a_genuine_version_1_notification_signed_with_sha1_is_refused() -> None:
    envelope = sns_test_signer().sign(
        {
            "Type": "Notification",
            "MessageId": "m",
            "TopicArn": TOPIC_ARN,
            "Message": account_deleted().to_json(),
            "Timestamp": "2025-03-14T09:26:53.589Z",
        },
        version="1",
    )

    assert envelope["SignatureVersion"] == "1"
    with pytest.raises(UnverifiedMessageError, match='SignatureVersion: must be "2"'):
        _verify(json.dumps(envelope))


def test_recorder_hands_a_message_back_for_a_retry_when_the_certificate_cannot_be_fetched(
    audit_table: str,
    recorder: ModuleType,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreachable(url: str, timeout: float) -> _Response:
        raise urllib.error.URLError("SNS did not answer")

    monkeypatch.setattr(sns_signature._opener, "open", unreachable)
    url = f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-unreachable.pem"
    record = sqs_record(
        sns_notification(account_deleted().to_json(), changes={"SigningCertURL": url})
    )
    capsys.readouterr()

    response = recorder.handler(sqs_event(record), lambda_context)

    # A batch item failure (SQS redelivers), but neither poison nor unverified.
    assert response == {"batchItemFailures": [{"itemIdentifier": record["messageId"]}]}
    assert _scan(audit_table) == []
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics["PoisonMessages"] == metrics["UnverifiedMessages"] == 0
