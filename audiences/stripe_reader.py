"""Reads Stripe list pages through the official SDK, within the rate limits, retrying what can succeed."""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe

from audiences.http import check_base_url
from audiences.rate_limit import RateLimiter

log = logging.getLogger(__name__)
PAGE_SIZE = 100  # Stripe's maximum
T = TypeVar("T")


def make_client(api_key: str, api_base: str, max_network_retries: int = 3) -> stripe.StripeClient:
    """A ``StripeClient`` bound to ``api_base`` with explicit network retries (it retries none by default).

    ``api_base`` is https, or plain http on loopback only (the stand-in); certificates are always verified, against
    the CA bundle the SDK ships (a path, which requests' ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` do not override).
    """
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": check_base_url(api_base)},
        max_network_retries=max_network_retries,
        verify_ssl_certs=True,
    )


class MalformedResponse(stripe.APIError):
    """A 2xx answer that is not the JSON list we asked for (truncated body, proxy page...)."""


@dataclass
class Retry:
    """Retries what the SDK does not: a plain 429, malformed bodies, and errors it gave up on."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 20.0
    retried: int = 0

    def call(self, fn: Callable[[], T]) -> T:
        for attempt in range(self.attempts):
            try:
                return fn()
            except stripe.StripeError as exc:
                if not _retryable(exc) or attempt == self.attempts - 1:
                    raise
                name = type(exc).__name__
            self.retried += 1
            delay = min(self.max_delay, self.base_delay * 2**attempt) * (0.5 + random.random() / 2)
            log.warning("Stripe %s (attempt %d), retrying in %.1fs", name, attempt + 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")


def _retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.RateLimitError | stripe.APIConnectionError | MalformedResponse):
        return True
    if isinstance(exc, stripe.APIError):  # 5xx the SDK already retried, or a (2xx) body it could not parse
        return exc.http_status is None or exc.http_status == 429 or not 400 <= exc.http_status < 500
    return False


class StripeReader:
    """List pages as plain dicts, exactly as Stripe sent them, counting requests."""

    def __init__(self, client: stripe.StripeClient, limiter: RateLimiter, retry: Retry | None = None) -> None:
        self.client = client
        self.limiter = limiter
        self.retry = retry or Retry()
        self._lock = threading.Lock()
        self.requests = 0

    def list(self, path: str, params: dict[str, Any]) -> tuple[dict[str, Any], float | None]:
        """One page of a list endpoint, and Stripe's clock (the ``Date`` header) when it answered."""

        def attempt() -> tuple[dict[str, Any], float | None]:
            self.limiter.acquire(path)
            with self._lock:
                self.requests += 1
            # raw_request: the SDK's auth, retries and typed errors; building StripeObjects would cost ~6x the
            # time and we store the JSON anyway.
            response = self.client.raw_request("get", path, **params)
            page = response.data  # the SDK has parsed the body already (and raises APIError when it cannot)
            if not isinstance(page, dict) or page.get("object") != "list" or not isinstance(page.get("data"), list):
                raise MalformedResponse(f"GET {path}: the answer is not a list object")
            return page, _server_time(response.headers)

        return self.retry.call(attempt)


def _server_time(headers: Any) -> float | None:
    value = headers.get("Date") if headers is not None else None
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
