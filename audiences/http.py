"""HTTP sessions for the destination clients: retries with backoff and jitter, TLS always verified."""

from __future__ import annotations

import ipaddress
import json
import threading
from typing import Any, Self
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class InsecureBaseUrlError(ValueError):
    """A plain-http base URL that does not point at this machine."""


def check_base_url(url: str) -> str:
    """Allow ``https://`` anywhere and ``http://`` only for loopback (the local stand-ins)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return url.rstrip("/")
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return url.rstrip("/")
    raise InsecureBaseUrlError(
        f"refusing base URL {parts.scheme}://{parts.hostname}: use https (plain http only for loopback)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class RetryCounter:
    """How many requests a session repeated (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def add(self) -> None:
        with self._lock:
            self.count += 1


class CountingRetry(Retry):
    """urllib3's ``Retry``, counting each repeat into a :class:`RetryCounter` shared by its copies."""

    counter: RetryCounter

    def new(self, **kw: Any) -> Self:
        retry = super().new(**kw)
        retry.counter = self.counter
        return retry

    def increment(self, *args: Any, **kwargs: Any) -> Self:
        retry = super().increment(*args, **kwargs)  # raises when the retries are used up
        self.counter.add()
        return retry


def build_session(
    *,
    pool_size: int = 10,
    retries: int = 5,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    user_agent: str = "stripe-audiences/0.1",
) -> requests.Session:
    """A session whose adapter retries 429, 5xx, connection resets and read time-outs.

    ``Retry-After`` is honoured; otherwise the wait grows exponentially with jitter. Every method is retried:
    the operations we send are idempotent (upserts by key, tag states, events with a dedupe id).
    """
    retry = CountingRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=retries,
        allowed_methods=None,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        backoff_jitter=backoff_factor,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.counter = RetryCounter()
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=pool_size, pool_block=True)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = user_agent
    # Certificates are always verified: requests' environment (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE) may name another
    # CA bundle, never turn verification off. No redirect is followed: the APIs do not redirect, and following one
    # could send a request (its body, to an http:// address) somewhere check_base_url would have refused.
    session.verify = True
    session.max_redirects = 0
    session.retry_counter = retry.counter  # type: ignore[attr-defined]
    return session


def json_bytes(value: Any) -> bytes:
    """A request body as compact JSON (orjson: a 500-member batch in a fraction of the stdlib's time). Values
    orjson refuses (integers past 64 bits) take the standard library's way; NaN and infinities, which are not
    JSON, become null."""
    try:
        return orjson.dumps(value, default=str)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")


def retried(session: requests.Session) -> int:
    """Requests ``session`` repeated so far."""
    counter = getattr(session, "retry_counter", None)
    return counter.count if counter is not None else 0
