"""The Lambda runtime of one local execution environment: runs as a script in its own process.

It imports the function's handler once (the init phase) and then runs one invocation per request
line on stdin, answering on the file descriptor given as its first argument. It imports nothing
from the emulator: its sys.path is the asset folder plus the site-packages the emulator passes.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TextIO

# Ends a request's log output on stdout and stderr, so the emulator knows it has read all of it.
LOG_END = "\x1e"
# A command-line argument ``--bootstrap=MODULE:FUNCTION:URL:PEM_HEX``: before the handler is
# imported, ``MODULE.FUNCTION(URL, PEM)`` runs (the emulator pins its SNS signing certificate in
# the recorder's certificate cache this way). It is the emulator's bootstrap, like AWS's own
# runtime: nothing in a function's configuration (environment, handler) can add one.
BOOTSTRAP_OPTION = "--bootstrap="


class CognitoIdentity:
    """context.identity: only set for calls from the AWS Mobile SDK, never locally."""

    cognito_identity_id: str | None = None
    cognito_identity_pool_id: str | None = None


class LambdaContext:
    """The context object of the AWS Lambda Python runtime (awslambdaric's LambdaContext)."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        # A string, as in the real runtime.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = invoked_function_arn
        self.client_context: Any = None
        self.identity = CognitoIdentity()
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        sys.stdout.write(message)
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext([aws_request_id={self.aws_request_id},"
            f"function_name={self.function_name},"
            f"invoked_function_arn={self.invoked_function_arn}])"
        )


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


class _JsonFormatter(logging.Formatter):
    """Lambda's JSON application log format (LoggingConfig.LogFormat JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "timestamp": _iso_now(record.created),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "requestId": getattr(record, "aws_request_id", ""),
        }
        if record.exc_info and record.exc_info[1] is not None:
            document.update(_error_document(record.exc_info[1]))
        return json.dumps(document, default=str)


def _iso_now(seconds: float | None = None) -> str:
    moment = datetime.fromtimestamp(seconds if seconds is not None else time.time(), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _configure_logging(request_filter: _RequestIdFilter) -> None:
    """The root logger as the managed runtime sets it up."""
    json_format = os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper() == "JSON"
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(request_filter)
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
                "%Y-%m-%dT%H:%M:%S",
            )
        )
    root = logging.getLogger()
    root.handlers = [handler]
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL")
    root.setLevel(level.upper() if json_format and level else logging.WARNING)


def _error_document(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(error),
        "errorType": error_type or type(error).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
    }


class _FaultError(Exception):
    """A failure of the runtime itself (bad handler, import error), typed like Lambda's."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _load_handler(handler: str) -> Callable[[Any, LambdaContext], Any]:
    try:
        module_name, function_name = handler.rsplit(".", 1)
    except ValueError as error:
        raise _FaultError(
            "Runtime.MalformedHandlerName", f"Bad handler '{handler}': {error}"
        ) from None
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise _FaultError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"
        ) from None
    except SyntaxError as error:
        raise _FaultError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}"
        ) from None
    function = getattr(module, function_name, None)
    if function is None:
        raise _FaultError(
            "Runtime.HandlerNotFound",
            f"Handler '{function_name}' missing on module '{module_name}'",
        )
    return function  # type: ignore[no-any-return]


def _to_json(value: Any) -> str:
    def default(item: Any) -> Any:
        # The managed runtime serialises Decimal (as boto3's DynamoDB resources return) as numbers.
        if isinstance(item, decimal.Decimal):
            return int(item) if item == item.to_integral_value() else float(item)
        raise TypeError(f"Object of type {type(item).__name__} is not JSON serializable")

    return json.dumps(value, default=default)


def _end_logs(request_id: str) -> None:
    for stream in (sys.stdout, sys.stderr):
        stream.write(f"{LOG_END}{request_id}{LOG_END}\n")
        stream.flush()


def _log_error(document: dict[str, Any], request_id: str) -> None:
    if os.environ.get("AWS_LAMBDA_LOG_FORMAT", "Text").upper() == "JSON":
        line = {"timestamp": _iso_now(), "level": "ERROR", "requestId": request_id, **document}
        sys.stdout.write(json.dumps(line) + "\n")
    else:
        trace = "".join(document.get("stackTrace", []))
        sys.stdout.write(
            f"[ERROR] {document['errorType']}: {document['errorMessage']}\nTraceback:\n{trace}\n"
        )


def _run_bootstrap(instructions: list[str]) -> None:
    """Call each ``MODULE:FUNCTION:URL:PEM_HEX`` of the emulator; a function whose code lacks
    MODULE (another stack's function) is left alone."""
    for instruction in instructions:
        module_name, function_name, rest = instruction.split(":", 2)
        url, pem_hex = rest.rsplit(":", 1)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name == module_name or module_name.startswith(f"{missing.name}."):
                continue
            raise
        getattr(module, function_name)(url, bytes.fromhex(pem_hex))


def main(argv: list[str], results: TextIO) -> None:
    bootstrap = [
        arg.removeprefix(BOOTSTRAP_OPTION) for arg in argv[1:] if arg.startswith(BOOTSTRAP_OPTION)
    ]
    site_dirs = [arg for arg in argv[1:] if not arg.startswith(BOOTSTRAP_OPTION)]
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # As on Lambda: the function's code first, then the layer (the site-packages standing in for
    # the Powertools layer and the runtime's boto3), then the standard library.
    stdlib = [path for path in sys.path if path and path != task_root]
    sys.path[:] = [task_root, *site_dirs, *stdlib]
    sys.argv = [argv[0]]

    def answer(document: dict[str, Any]) -> None:
        results.write(json.dumps(document) + "\n")
        results.flush()

    request_filter = _RequestIdFilter()
    _configure_logging(request_filter)
    try:
        _run_bootstrap(bootstrap)
        handler = _load_handler(os.environ["_HANDLER"])
    except _FaultError as fault:
        error = {"errorMessage": str(fault), "errorType": fault.error_type, "stackTrace": []}
        _log_error(error, "")
        _end_logs("init")
        answer({"kind": "init_error", "error": error})
        return
    except Exception as failure:
        error = _error_document(failure)
        _log_error(error, "")
        _end_logs("init")
        answer({"kind": "init_error", "error": error})
        return
    _end_logs("init")
    answer({"kind": "ready"})

    for line in sys.stdin:
        request = json.loads(line)
        request_id = request["request_id"]
        request_filter.request_id = request_id
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
        context = LambdaContext(request_id, request["deadline_ms"], request["invoked_function_arn"])
        # The handler's own CPU time, all its threads: what a cost model can bill, free of the
        # emulator's hand-off and of other processes sharing this machine's cores.
        cpu_started = time.process_time()
        try:
            result = handler(json.loads(request["payload"]), context)
            try:
                document: dict[str, Any] = {"kind": "result", "payload": _to_json(result)}
            except (TypeError, ValueError) as marshal_error:
                unmarshalable = {
                    "errorMessage": f"Unable to marshal response: {marshal_error}",
                    "errorType": "Runtime.MarshalError",
                    "stackTrace": [],
                }
                _log_error(unmarshalable, request_id)
                document = {"kind": "error", "error": unmarshalable}
        except Exception as handler_error:
            raised = _error_document(handler_error)
            _log_error(raised, request_id)
            document = {"kind": "error", "error": raised}
        document["request_id"] = request_id
        document["cpu_seconds"] = time.process_time() - cpu_started
        _end_logs(request_id)
        answer(document)


if __name__ == "__main__":
    result_fd = int(sys.argv[1])
    with os.fdopen(result_fd, "w", encoding="utf-8") as result_stream:
        main([sys.argv[0], *sys.argv[2:]], result_stream)
