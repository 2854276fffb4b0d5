"""The one place that decides which AWS service and operation a request is (``sqs:SendMessage``),
and in which wire protocol it came, so that every answer can be written in that protocol."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qs, unquote

Environ = dict[str, Any]
Protocol = Literal["json", "query", "rest"]

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations/?$")
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/[^/]+/(?P<region>[^/]+)/(?P<service>[^/]+)/")
# Lambda's REST API: the operation is in the method and the path (the SDK's request URIs).
_LAMBDA_ROUTES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    ("POST", INVOKE_PATH, "Invoke"),
    ("GET", re.compile(r"^/2015-03-31/functions/[^/]+/?$"), "GetFunction"),
    (
        "GET",
        re.compile(r"^/2015-03-31/functions/[^/]+/configuration/?$"),
        "GetFunctionConfiguration",
    ),
    ("GET", re.compile(r"^/2015-03-31/functions/?$"), "ListFunctions"),
    ("GET", re.compile(r"^/2015-03-31/event-source-mappings/?$"), "ListEventSourceMappings"),
)
SNS_CERTIFICATE_PATH = re.compile(r"^/_emulator/sns/SimpleNotificationService-[0-9a-f]{32}\.pem$")
"""Where the emulator serves its SNS signing certificate (an unsigned GET, as SNS serves its)."""
SNS_SIGN_PATH = "/_emulator/sns/sign"
"""Where the emulator signs a notification as its SNS would deliver it (README's DLQ drill)."""
UNSIGNED = "emulator:unsigned"
"""What the emulator's own unsigned requests (moto's reset endpoint) count as: never AWS calls."""


@dataclass(frozen=True)
class Operation:
    """A request's ``service:Name`` in the IAM action style, and its wire protocol."""

    service: str
    name: str
    protocol: Protocol
    region: str | None = None
    function_name: str | None = None
    """lambda:Invoke only: the FunctionName of the path"""

    @property
    def action(self) -> str:
        return f"{self.service}:{self.name}"


def identify(environ: Environ, body: bytes) -> Operation:
    """The operation of a request, from its signature scope, target header, query Action or path."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "")
    invoke = INVOKE_PATH.match(path)
    if method == "POST" and invoke is not None:
        region = scope.group("region") if scope else None
        return Operation("lambda", "Invoke", "rest", region, unquote(invoke.group("name")))
    if method == "GET" and SNS_CERTIFICATE_PATH.match(path):
        return Operation("sns", "GetSigningCertificate", "rest")
    if method == "POST" and path == SNS_SIGN_PATH:
        return Operation("sns", "SignNotification", "rest")
    if scope is None:
        return Operation("emulator", "unsigned", "rest")
    service, region = scope.group("service"), scope.group("region")
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return Operation(service, target.rsplit(".", 1)[-1], "json", region)
    if "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        action = parse_qs(body.decode("utf-8", errors="replace")).get("Action")
        if action:
            return Operation(service, action[0], "query", region)
    if service == "lambda":
        for route_method, pattern, name in _LAMBDA_ROUTES:
            if method == route_method and pattern.match(path):
                return Operation(service, name, "rest", region)
    if service == "s3":
        return Operation(
            service, s3_operation(method, path, environ.get("QUERY_STRING", "")), "rest", region
        )
    return Operation(service, "*", "rest", region)


# S3's REST API (path style, as the SDKs address a loopback endpoint): the sub-resource in the
# query names the operation; without one, the method and whether a key is given do.
_S3_SUBRESOURCES: tuple[tuple[str, str, str], ...] = (
    ("retention", "GET", "GetObjectRetention"),
    ("retention", "PUT", "PutObjectRetention"),
    ("legal-hold", "GET", "GetObjectLegalHold"),
    ("legal-hold", "PUT", "PutObjectLegalHold"),
    ("object-lock", "GET", "GetObjectLockConfiguration"),
    ("object-lock", "PUT", "PutObjectLockConfiguration"),
    ("versioning", "GET", "GetBucketVersioning"),
    ("versioning", "PUT", "PutBucketVersioning"),
    ("versions", "GET", "ListObjectVersions"),
    ("policy", "GET", "GetBucketPolicy"),
    ("policy", "PUT", "PutBucketPolicy"),
    ("policy", "DELETE", "DeleteBucketPolicy"),
    ("tagging", "GET", "GetObjectTagging"),
    ("tagging", "PUT", "PutObjectTagging"),
    ("uploads", "POST", "CreateMultipartUpload"),
    ("uploadId", "PUT", "UploadPart"),
    ("uploadId", "POST", "CompleteMultipartUpload"),
    ("uploadId", "DELETE", "AbortMultipartUpload"),
    ("delete", "POST", "DeleteObjects"),
)
_S3_PLAIN: dict[tuple[str, bool], str] = {
    ("GET", True): "GetObject",
    ("HEAD", True): "HeadObject",
    ("PUT", True): "PutObject",
    ("DELETE", True): "DeleteObject",
    ("GET", False): "ListObjects",
    ("HEAD", False): "HeadBucket",
    ("PUT", False): "CreateBucket",
    ("DELETE", False): "DeleteBucket",
}


def s3_operation(method: str, path: str, query: str) -> str:
    """The S3 operation of a path-style request (``*`` when it is none of the above)."""
    bucket, _, key = path.lstrip("/").partition("/")
    if not bucket:
        return "ListBuckets" if method == "GET" else "*"
    present = set(parse_qs(query, keep_blank_values=True))
    for subresource, subresource_method, name in _S3_SUBRESOURCES:
        if subresource in present and method == subresource_method:
            return name
    return _S3_PLAIN.get((method, bool(key)), "*")


def normalise(operation: str) -> str:
    """``Service:Name`` as callers may spell it -> ``service:Name``; rejects other shapes."""
    service, _, name = operation.partition(":")
    if not service or not name:
        raise ValueError(
            f"operation {operation!r}: expected service:Operation, e.g. dynamodb:PutItem"
        )
    return f"{service.lower()}:{name}"


def read_body(environ: Environ) -> bytes:
    """The request body, buffered so that moto can read it again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
