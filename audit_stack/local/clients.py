"""boto3 clients bound to the emulator: dummy credentials, no proxies, loopback only; one cached
client per service for the emulator's own calls (deployment, event sources, move tasks)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from audit_stack.local.runtime.functions import DUMMY_CREDENTIALS


class EmulatorClients:
    """Makes clients for an endpoint known once the server listens."""

    def __init__(self, *, region: str, endpoint_url: Callable[[], str]) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._lock = threading.RLock()
        self._session: boto3.session.Session | None = None
        self._cached: dict[str, Any] = {}

    def new(self, service: str, **kwargs: Any) -> Any:
        """A new client (``config`` is merged over the emulator's)."""
        config = Config(proxies={}, retries={"mode": "standard"})
        if "config" in kwargs:
            config = config.merge(kwargs.pop("config"))
        with self._lock:
            if self._session is None:
                self._session = boto3.session.Session(
                    aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                    aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                    aws_session_token=DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
                    region_name=self._region,
                )
            return self._session.client(
                service,
                endpoint_url=self._endpoint_url(),
                region_name=self._region,
                config=config,
                **kwargs,
            )

    def cached(self, service: str) -> Any:
        """The emulator's own client of a service."""
        with self._lock:
            if service not in self._cached:
                if service == "lambda":
                    # An invocation is never retried by the client (it would run twice), and it
                    # may take as long as Lambda's longest timeout.
                    config = Config(read_timeout=960, retries={"total_max_attempts": 1})
                    self._cached[service] = self.new(service, config=config)
                else:
                    self._cached[service] = self.new(service)
            return self._cached[service]

    def close(self) -> None:
        with self._lock:
            clients, self._cached = list(self._cached.values()), {}
            self._session = None
        for client in clients:
            client.close()
