"""boto3 clients bound to the emulator: no proxies, loopback only; the access key id says who
calls (the emulator itself, an event source mapping's role, the outside principal), one cached
client per service and caller."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from audit_stack.local.access.identities import INTERNAL_ACCESS_KEY_ID, SECRET_ACCESS_KEY


class EmulatorClients:
    """Makes clients for an endpoint known once the server listens."""

    def __init__(self, *, region: str, endpoint_url: Callable[[], str]) -> None:
        self._region = region
        self._endpoint_url = endpoint_url
        self._lock = threading.RLock()
        self._sessions: dict[str, boto3.session.Session] = {}
        self._cached: dict[tuple[str, str], Any] = {}

    def new(
        self, service: str, *, access_key_id: str = INTERNAL_ACCESS_KEY_ID, **kwargs: Any
    ) -> Any:
        """A new client calling as ``access_key_id`` (``config`` is merged over the emulator's)."""
        config = Config(proxies={}, retries={"mode": "standard"})
        if "config" in kwargs:
            config = config.merge(kwargs.pop("config"))
        with self._lock:
            session = self._sessions.get(access_key_id)
            if session is None:
                session = boto3.session.Session(
                    aws_access_key_id=access_key_id,
                    aws_secret_access_key=SECRET_ACCESS_KEY,
                    region_name=self._region,
                )
                self._sessions[access_key_id] = session
            return session.client(
                service,
                endpoint_url=self._endpoint_url(),
                region_name=self._region,
                config=config,
                **kwargs,
            )

    def cached(self, service: str, access_key_id: str = INTERNAL_ACCESS_KEY_ID) -> Any:
        """One kept client of a service per caller (by default the emulator itself)."""
        with self._lock:
            if (service, access_key_id) not in self._cached:
                if service == "lambda":
                    # An invocation is never retried by the client (it would run twice), and it
                    # may take as long as Lambda's longest timeout.
                    config = Config(read_timeout=960, retries={"total_max_attempts": 1})
                    client = self.new(service, access_key_id=access_key_id, config=config)
                else:
                    client = self.new(service, access_key_id=access_key_id)
                self._cached[(service, access_key_id)] = client
            return self._cached[(service, access_key_id)]

    def close(self) -> None:
        with self._lock:
            clients, self._cached = list(self._cached.values()), {}
            self._sessions = {}
        for client in clients:
            client.close()
