"""Verifying that an SQS body is a notification SNS signed for the recorder's own topic (stdlib).

AWS documents the check ("Verifying the signatures of Amazon SNS messages"): rebuild the
notification's string to sign, fetch the certificate at ``SigningCertURL`` (only from the
topic's region's SNS host, over verified TLS), and check ``Signature`` with its RSA public key:
RSA PKCS#1 v1.5 over SHA-256 for ``SignatureVersion`` 2. Version 1 (SHA-1) is refused. The Lambda
runtime has no ``cryptography``, so the two small pieces it would provide live here as pure
functions: the public key of an X.509 certificate (a minimal DER reader) and PKCS#1 v1.5
verification (RFC 8017 8.2.2, by comparing encodings, never by parsing the decrypted block).

Certificates are cached per URL in the warm execution environment (``_fetched``). The only other
way a certificate is trusted is :func:`trust_certificate`, which pins one URL to one certificate.
Nothing in a deployed function calls it: no environment variable, file or event can make this
module trust a certificate, so an attacker who may change the function's configuration (but not
its code) cannot add one. The local emulator's Lambda worker calls it in its bootstrap, before
the handler module is imported, for the certificate the emulator generated for its run; that
bootstrap is the emulator's own runtime, which AWS replaces with its own on a deployed function.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Final

from .event import PoisonMessageError

__all__ = [
    "CertificateUnavailableError",
    "InvalidCertificateError",
    "RsaPublicKey",
    "UnverifiedMessageError",
    "forget_certificates",
    "pem_certificate_der",
    "rsa_public_key_from_certificate",
    "signing_host",
    "string_to_sign",
    "trust_certificate",
    "verify_notification",
    "verify_pkcs1v15_sha256",
]

SIGNATURE_VERSION: Final = "2"
"""RSA with SHA-256: the only version accepted."""
# The string to sign of a Notification: these fields, in this order, each as "Name\nValue\n";
# Subject only when the notification has one.
_SIGNED_FIELDS: Final = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
_REQUIRED_FIELDS: Final = ("Message", "MessageId", "Timestamp", "TopicArn", "Type")
# The SNS host of each partition this pipeline deploys to.
_PARTITION_DOMAINS: Final = {
    "aws": "amazonaws.com",
    "aws-us-gov": "amazonaws.com",
    "aws-cn": "amazonaws.com.cn",
}
_REGION: Final = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
_CERTIFICATE_PATH: Final = re.compile(r"/SimpleNotificationService-[A-Za-z0-9-]{1,128}\.pem")
# A certificate is about 1.7 KB of PEM; anything much larger is not one.
_MAX_CERTIFICATE_BYTES: Final = 16 * 1024
_MIN_MODULUS_BITS: Final = 2048
_MAX_FETCH_SECONDS: Final = 5.0
# DER of the DigestInfo AlgorithmIdentifier for SHA-256 (RFC 8017 9.2, note 1), then the hash.
_SHA256_DIGEST_INFO_PREFIX: Final = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_ENCRYPTION_OID: Final = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
_PEM: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----"
)


class UnverifiedMessageError(PoisonMessageError):
    """The body is not a notification that SNS signed for the recorder's topic: poison, alarmed."""


class CertificateUnavailableError(RuntimeError):
    """The signing certificate could not be fetched just now (network, SNS): worth a retry."""


class InvalidCertificateError(ValueError):
    """Bytes that are not an X.509 certificate with an RSA public key this module accepts."""


@dataclass(frozen=True)
class RsaPublicKey:
    """An RSA public key: modulus and public exponent."""

    modulus: int
    exponent: int

    @property
    def size_bytes(self) -> int:
        return (self.modulus.bit_length() + 7) // 8


# --- Pure functions ----------------------------------------------------------------------------


def string_to_sign(envelope: dict[str, Any]) -> bytes:
    """The bytes SNS signs for a Notification (AWS's documented field order)."""
    lines = []
    for name in _SIGNED_FIELDS:
        if name == "Subject" and name not in envelope:
            continue
        lines.append(f"{name}\n{envelope[name]}\n")
    return "".join(lines).encode("utf-8")


def signing_host(topic_arn: str) -> str:
    """The only host a certificate for ``topic_arn``'s notifications may come from."""
    parts = topic_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns":
        raise ValueError(f"topic ARN: not an SNS topic ARN: {topic_arn!r}")
    partition, region = parts[1], parts[3]
    domain = _PARTITION_DOMAINS.get(partition)
    if domain is None or not _REGION.fullmatch(region):
        raise ValueError(f"topic ARN: no known SNS host for partition {partition!r}, {region!r}")
    return f"sns.{region}.{domain}"


def check_signing_cert_url(url: str, topic_arn: str) -> None:
    """Refuse (UnverifiedMessageError) any certificate URL but https on the topic's SNS host."""
    parts = urllib.parse.urlsplit(url)
    expected = signing_host(topic_arn)
    if (
        parts.scheme != "https"
        # netloc, not hostname: no user, no port, no case games.
        or parts.netloc != expected
        or not _CERTIFICATE_PATH.fullmatch(parts.path)
        or parts.query
        or parts.fragment
    ):
        raise UnverifiedMessageError(
            f"SigningCertURL: must be https://{expected}/SimpleNotificationService-<id>.pem"
        )


def pem_certificate_der(pem: bytes) -> bytes:
    """The DER bytes of the first certificate in PEM text."""
    match = _PEM.search(pem)
    if match is None:
        raise InvalidCertificateError("no PEM certificate")
    try:
        return base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except binascii.Error:
        raise InvalidCertificateError("the PEM certificate is not base64") from None


def rsa_public_key_from_certificate(der: bytes) -> RsaPublicKey:
    """The RSA public key of an X.509 certificate (DER); InvalidCertificateError otherwise.

    Certificate = SEQUENCE { tbsCertificate, signatureAlgorithm, signature }; tbsCertificate =
    SEQUENCE { [0] version OPTIONAL, serial, signature, issuer, validity, subject,
    subjectPublicKeyInfo, ... } (RFC 5280 4.1); the key is RFC 8017's RSAPublicKey.
    """
    certificate = _Der(der).read(0x30, whole=True)
    tbs = _Der(certificate).read(0x30)
    fields = _Der(tbs)
    if fields.peek_tag() == 0xA0:  # [0] EXPLICIT version
        fields.read(0xA0)
    fields.read(0x02)  # serialNumber
    for _ in ("signature", "issuer", "validity", "subject"):
        fields.read(0x30)
    spki = _Der(fields.read(0x30))
    algorithm = _Der(spki.read(0x30))
    if algorithm.read(0x06) != _RSA_ENCRYPTION_OID:
        raise InvalidCertificateError("the certificate's key is not an RSA key")
    bits = spki.read(0x03)
    spki.end()
    if not bits or bits[0] != 0:
        raise InvalidCertificateError("the certificate's key is not a whole number of bytes")
    key = _Der(_Der(bits[1:]).read(0x30, whole=True))
    modulus = _positive_integer(key.read(0x02))
    exponent = _positive_integer(key.read(0x02))
    key.end()
    if modulus.bit_length() < _MIN_MODULUS_BITS:
        raise InvalidCertificateError(f"the RSA key is shorter than {_MIN_MODULUS_BITS} bits")
    if exponent < 3 or exponent % 2 == 0 or exponent >= modulus:
        raise InvalidCertificateError("the RSA public exponent is not valid")
    return RsaPublicKey(modulus, exponent)


def verify_pkcs1v15_sha256(key: RsaPublicKey, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 8.2.2): True only for a match."""
    k = key.size_bytes
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= key.modulus:
        return False
    encoded = pow(s, key.exponent, key.modulus).to_bytes(k, "big")
    digest_info = _SHA256_DIGEST_INFO_PREFIX + hashlib.sha256(message).digest()
    padding_length = k - len(digest_info) - 3
    if padding_length < 8:
        return False
    expected = b"\x00\x01" + b"\xff" * padding_length + b"\x00" + digest_info
    return hmac.compare_digest(encoded, expected)


def parse_certificate(pem: bytes) -> RsaPublicKey:
    """The RSA public key of a PEM certificate."""
    return rsa_public_key_from_certificate(pem_certificate_der(pem))


# --- The check the recorder makes --------------------------------------------------------------

_lock = threading.Lock()
_pinned: dict[str, RsaPublicKey] = {}
"""Certificates trusted by URL without fetching: only :func:`trust_certificate` adds any."""
_fetched: dict[str, RsaPublicKey] = {}
"""Certificates fetched from the SNS host in this execution environment, by URL."""


def trust_certificate(url: str, pem: bytes) -> None:
    """Trust the certificate ``pem`` for ``url``, whatever its host, without fetching.

    For the local emulator's worker bootstrap and the tests only; see the module docstring.
    """
    key = parse_certificate(pem)
    with _lock:
        _pinned[url] = key


def forget_certificates() -> None:
    """Drop every trusted and fetched certificate (a new execution environment has none)."""
    with _lock:
        _pinned.clear()
        _fetched.clear()


def verify_notification(body: str, *, topic_arn: str, timeout_seconds: float) -> None:
    """Raise UnverifiedMessageError unless ``body`` is a Notification that SNS signed (version 2)
    for ``topic_arn``; CertificateUnavailableError when its certificate cannot be fetched now.

    ``timeout_seconds``: the most a certificate fetch may take (from the invocation's time).
    """
    envelope = _envelope(body)
    if envelope.get("Type") != "Notification":
        raise UnverifiedMessageError('Type: must be "Notification"')
    for name in _REQUIRED_FIELDS:
        value = envelope.get(name)
        if not isinstance(value, str) or not value:
            raise UnverifiedMessageError(f"{name}: must be a non-empty string")
    if "Subject" in envelope and not isinstance(envelope["Subject"], str):
        raise UnverifiedMessageError("Subject: must be a string")
    if envelope["TopicArn"] != topic_arn:
        raise UnverifiedMessageError("TopicArn: must be the recorder's own topic")
    version = envelope.get("SignatureVersion")
    if version != SIGNATURE_VERSION:
        raise UnverifiedMessageError(
            f'SignatureVersion: must be "{SIGNATURE_VERSION}" (SHA256withRSA); '
            "version 1 (SHA1) and unsigned messages are refused"
        )
    signature_text, url = envelope.get("Signature"), envelope.get("SigningCertURL")
    if not isinstance(signature_text, str) or not signature_text:
        raise UnverifiedMessageError("Signature: must be a non-empty string")
    if not isinstance(url, str) or not url:
        raise UnverifiedMessageError("SigningCertURL: must be a non-empty string")
    try:
        signature = base64.b64decode(signature_text, validate=True)
    except binascii.Error:
        raise UnverifiedMessageError("Signature: must be base64") from None
    key = _certificate_key(url, topic_arn, timeout_seconds)
    if not verify_pkcs1v15_sha256(key, string_to_sign(envelope), signature):
        raise UnverifiedMessageError(
            "Signature: does not match the notification with the certificate at SigningCertURL"
        )


def _envelope(body: str) -> dict[str, Any]:
    try:
        envelope = json.loads(body)
    except (TypeError, ValueError, RecursionError):
        raise UnverifiedMessageError("body: must be valid JSON") from None
    if not isinstance(envelope, dict):
        raise UnverifiedMessageError("body: must be a JSON object")
    return envelope


def _certificate_key(url: str, topic_arn: str, timeout_seconds: float) -> RsaPublicKey:
    with _lock:
        key = _pinned.get(url) or _fetched.get(url)
    if key is not None:
        return key
    # Checked before any connection: a URL anywhere else is never fetched.
    check_signing_cert_url(url, topic_arn)
    pem = _fetch(url, min(timeout_seconds, _MAX_FETCH_SECONDS))
    try:
        key = parse_certificate(pem)
    except InvalidCertificateError as error:
        raise UnverifiedMessageError(f"SigningCertURL: {error}") from None
    with _lock:
        _fetched[url] = key
    return key


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead off the SNS host after the URL was checked: refused."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


# The default HTTPS handler verifies the server's certificate and host name.
_opener = urllib.request.build_opener(_NoRedirects)


def _fetch(url: str, timeout_seconds: float) -> bytes:
    if timeout_seconds <= 0:
        raise CertificateUnavailableError("no time left to fetch the signing certificate")
    try:
        with _opener.open(url, timeout=timeout_seconds) as response:
            pem: bytes = response.read(_MAX_CERTIFICATE_BYTES + 1)
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500 and error.code != 429:
            raise UnverifiedMessageError(
                f"SigningCertURL: no certificate there (HTTP {error.code})"
            ) from None
        raise CertificateUnavailableError(f"HTTP {error.code} fetching the certificate") from None
    except (urllib.error.URLError, OSError) as error:
        raise CertificateUnavailableError(f"fetching the certificate: {error}") from None
    if len(pem) > _MAX_CERTIFICATE_BYTES:
        raise UnverifiedMessageError("SigningCertURL: not a certificate (too large)")
    return pem


# --- A strict DER reader: definite lengths, minimal long form, nothing left over ---------------


class _Der:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def peek_tag(self) -> int | None:
        return self._data[self._at] if self._at < len(self._data) else None

    def read(self, tag: int, *, whole: bool = False) -> bytes:
        """The content of the next element, which must have ``tag``; ``whole``: and be the last."""
        data, at = self._data, self._at
        if at + 2 > len(data) or data[at] != tag:
            raise InvalidCertificateError(f"expected DER tag 0x{tag:02x}")
        length, at = data[at + 1], at + 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4 or at + count > len(data):
                raise InvalidCertificateError("DER length is not definite or too long")
            length = int.from_bytes(data[at : at + count], "big")
            if length < 0x80 or data[at] == 0:
                raise InvalidCertificateError("DER length is not in its shortest form")
            at += count
        if at + length > len(data):
            raise InvalidCertificateError("DER element runs past its container")
        self._at = at + length
        if whole:
            self.end()
        return data[at : at + length]

    def end(self) -> None:
        if self._at != len(self._data):
            raise InvalidCertificateError("unexpected bytes after a DER element")


def _positive_integer(content: bytes) -> int:
    if not content or content[0] & 0x80:
        raise InvalidCertificateError("an RSA key number is not a positive INTEGER")
    if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
        raise InvalidCertificateError("an RSA key number is not in its shortest form")
    return int.from_bytes(content, "big")
