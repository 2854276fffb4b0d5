"""SNS notification signatures in the emulator: SNS's envelope, signed as SNS signs it (version 2,
RSA SHA-256), with a certificate generated for one emulator run and served on its loopback port.

moto builds the SNS -> SQS envelope in ``moto.sns.models.Subscription.get_post_data``; it signs
with a new certificate per message whose URL claims to be on ``sns.<region>.amazonaws.com``,
where nobody could fetch it. The hook replaces that method while the emulator runs, so every
delivery carries the emulator's ``SigningCertURL`` and a signature the recorder checks.

Trust: the recorder (``audit_events.sns_signature``) fetches certificates only from the topic's
region's SNS host over TLS. The emulator's certificate is trusted only because the emulator's own
Lambda worker bootstrap (``runtime/_lambda_runtime.py``) pins it in the recorder module's
certificate cache before the handler runs; the worker learns it from its command line, not from
the function's configuration. On AWS, the runtime is AWS's: no environment variable, layer-free
configuration change or event can pin a certificate, so a deployed function never trusts this one.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import moto.sns.models
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from audit_stack.local.http.errors import ApiError, Response
from audit_stack.local.http.operations import Environ, Operation

__all__ = [
    "TRUST_BOOTSTRAP",
    "NotificationSigner",
    "SigningCertificateApi",
    "SnsSigningHook",
    "notification",
    "sqs_body",
    "topic_exists",
]

TRUST_BOOTSTRAP: Final = ("audit_events.sns_signature", "trust_certificate")
"""The Lambda module and function the worker bootstrap calls with (URL, PEM) before the handler."""
_SNS_MODELS: Any = moto.sns.models
# The string SNS signs for a Notification: these fields in this order, Subject only if present.
# Written here rather than imported from the recorder: the emulator plays SNS, an independent
# signer, so a mistake in either side's reading of AWS's documentation shows as a failed check.
_SIGNED_FIELDS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")


@dataclass(frozen=True)
class NotificationSigner:
    """A private key and its self-signed certificate, published at ``cert_url``."""

    private_key: rsa.RSAPrivateKey
    certificate_pem: bytes
    cert_url: str

    @classmethod
    def generate(cls, base_url: str, *, folder: str = "/_emulator/sns") -> NotificationSigner:
        """A new 2048-bit key and certificate, served at ``base_url`` + ``folder`` (the
        emulator's) + ``/SimpleNotificationService-<id>.pem``."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.emulator.invalid")])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=7))
            .sign(key, hashes.SHA256())
        )
        pem = certificate.public_bytes(serialization.Encoding.PEM)
        fingerprint = hashlib.sha256(pem).hexdigest()[:32]
        file_name = f"SimpleNotificationService-{fingerprint}.pem"
        return cls(key, pem, f"{base_url}{folder}/{file_name}")

    def sign(self, envelope: dict[str, Any], *, version: str = "2") -> dict[str, Any]:
        """``envelope`` (a Notification) with its SignatureVersion, Signature and this cert:
        version 2 is RSA SHA-256, version 1 (a topic's default on AWS) RSA SHA-1."""
        text = "".join(f"{name}\n{envelope[name]}\n" for name in _SIGNED_FIELDS if name in envelope)
        digest = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.private_key.sign(text.encode("utf-8"), padding.PKCS1v15(), digest)
        # In SNS's order: the signature fields come between Timestamp and UnsubscribeURL.
        tail = ("UnsubscribeURL", "MessageAttributes")
        return {
            **{name: value for name, value in envelope.items() if name not in tail},
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode("ascii"),
            "SigningCertURL": self.cert_url,
            **{name: envelope[name] for name in tail if name in envelope},
        }

    def bootstrap_argument(self) -> str:
        """What the worker's command line carries to pin this certificate (see the runtime)."""
        module, function = TRUST_BOOTSTRAP
        return f"{module}:{function}:{self.cert_url}:{self.certificate_pem.hex()}"


def notification(
    signer: NotificationSigner,
    *,
    topic_arn: str,
    message: str,
    message_id: str | None = None,
    subject: str | None = None,
    timestamp: str | None = None,
    message_attributes: dict[str, Any] | None = None,
    subscription_arn: str | None = None,
    signature_version: str = "2",
) -> dict[str, Any]:
    """A signed SNS Notification envelope, as SNS delivers it to an SQS subscription."""
    if timestamp is None:
        now = datetime.datetime.now(datetime.UTC)
        timestamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    region = topic_arn.split(":")[3]
    envelope: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id or str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": message,
        "Timestamp": timestamp,
        "UnsubscribeURL": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe"
        f"&SubscriptionArn={subscription_arn or topic_arn}",
    }
    if subject:
        envelope["Subject"] = subject
    if message_attributes:
        envelope["MessageAttributes"] = message_attributes
    return signer.sign(envelope, version=signature_version)


def _signature_version(topic: Any) -> str:
    """The topic's SignatureVersion, as on AWS, where a topic without one signs version 1.

    moto keeps CreateTopic's attributes in snake case and SetTopicAttributes' as named."""
    version = getattr(topic, "SignatureVersion", None) or getattr(topic, "signature_version", None)
    return str(version or "1")


class SnsSigningHook:
    """Makes moto's SNS -> SQS envelopes signed by ``signer`` while installed."""

    def __init__(self) -> None:
        self._original: Callable[..., Any] | None = None

    def install(self, signer: NotificationSigner) -> None:
        if self._original is not None:
            return
        self._original = _SNS_MODELS.Subscription.get_post_data

        def get_post_data(
            subscription: Any,
            message: str,
            message_id: str,
            subject: str | None,
            message_attributes: dict[str, Any] | None = None,
        ) -> dict[str, Any]:
            return notification(
                signer,
                topic_arn=subscription.topic.arn,
                message=message,
                message_id=message_id,
                subject=subject,
                message_attributes=message_attributes,
                subscription_arn=subscription.arn,
                signature_version=_signature_version(subscription.topic),
            )

        _SNS_MODELS.Subscription.get_post_data = get_post_data

    def uninstall(self) -> None:
        if self._original is None:
            return
        _SNS_MODELS.Subscription.get_post_data = self._original
        self._original = None


class SigningCertificateApi:
    """The emulator's SNS signing endpoints (unsigned HTTP, loopback only).

    ``GET`` the certificate's URL: the certificate, as SNS serves its own. ``POST
    /_emulator/sns/sign`` with ``{"TopicArn": ..., "Message": ...}``: the SQS body SNS would
    deliver for that message, signed; for rehearsals that put a genuine-looking delivery straight
    into a queue (the README's DLQ drill). It grants nothing new: the emulator enforces no IAM,
    so anyone on loopback may already publish to the topic and get the same signature.
    """

    OPERATIONS = frozenset({"GetSigningCertificate", "SignNotification"})
    EXCLUSIVE = False

    def __init__(self, signer: NotificationSigner, topic_exists: Callable[[str], bool]) -> None:
        self._signer = signer
        self._topic_exists = topic_exists

    def handle(self, operation: Operation, environ: Environ, body: bytes) -> Response:
        if operation.name == "SignNotification":
            return self._sign(body)
        if environ.get("PATH_INFO") != urllib.parse.urlsplit(self._signer.cert_url).path:
            raise ApiError("NotFound", "no such certificate", "404 Not Found")
        return Response(
            "200 OK", [("Content-Type", "application/x-pem-file")], self._signer.certificate_pem
        )

    def _sign(self, body: bytes) -> Response:
        try:
            request = json.loads(body)
        except ValueError:
            raise ApiError("InvalidParameter", "the request must be JSON") from None
        topic_arn = request.get("TopicArn") if isinstance(request, dict) else None
        message = request.get("Message") if isinstance(request, dict) else None
        if not isinstance(topic_arn, str) or not self._topic_exists(topic_arn):
            raise ApiError("NotFound", "TopicArn: no such topic in this emulator", "404 Not Found")
        if not isinstance(message, str) or not message:
            raise ApiError("InvalidParameter", "Message: must be a non-empty string")
        envelope = notification(self._signer, topic_arn=topic_arn, message=message)
        return Response(
            "200 OK", [("Content-Type", "application/json")], sqs_body(envelope).encode()
        )


def sqs_body(envelope: dict[str, Any]) -> str:
    """An envelope as SNS writes it into an SQS message body (moto's layout)."""
    return json.dumps(envelope, sort_keys=True, indent=2, separators=(",", ": "))


def topic_exists(topic_arn: str) -> bool:
    """Whether moto's SNS has this topic (in any account and region)."""
    return any(
        topic_arn in backend.topics
        for account in list(_SNS_MODELS.sns_backends.values())
        for backend in list(account.values())
    )
