"""A Customer.io Track API client: HTTP, auth, batch packing and per-op errors. No business rules here."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import requests

from audiences.http import build_session, check_base_url, json_bytes, retried
from audiences.rate_limit import RateLimiter
from audiences.redact import basic_credentials, redact_secrets

TRACK_HOSTS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
MAX_REQUEST_BYTES = 500_000  # the documents say 500 KB and 32 KB: read them as decimal, the strict way
MAX_OP_BYTES = 32_000
_ENVELOPE_BYTES = len(b'{"batch":[]}')
DEFAULT_TRACK_REQUESTS_PER_SECOND = 100.0  # NOTES: plan for 100 requests/s (sources disagree), expect 429
# Batch requests in flight at once: enough for the paced rate at up to 300 ms a request (100/s x 0.3 s); the
# rate limiter, not this, keeps the client under Customer.io's limit.
DEFAULT_CONCURRENCY = 32
T = TypeVar("T")


def track_base_url(region: str = "us", override: str | None = None) -> str:
    if override:
        return check_base_url(override)
    try:
        return TRACK_HOSTS[region.lower()]
    except KeyError:
        raise ValueError(f"CUSTOMERIO_REGION must be one of {sorted(TRACK_HOSTS)}, not {region!r}") from None


class CustomerIOError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Customer.io {status}: {detail}")
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class OpError:
    index: int  # position in the list of ops given to send_batch
    reason: str


def encode_op(op: dict[str, Any]) -> bytes:
    return json_bytes(op)


class OpPacker(Generic[T]):
    """Packs ops, one at a time, into batches whose request body stays under ``max_request_bytes``."""

    def __init__(self, max_request_bytes: int = MAX_REQUEST_BYTES) -> None:
        self.max_request_bytes = max_request_bytes
        self.batch: list[T] = []
        self.size = _ENVELOPE_BYTES

    def add(self, item: T, op_bytes: int) -> list[T] | None:
        """Add the op ``item`` of ``op_bytes``; returns the batch it closed, when it did not fit in it."""
        closed = None
        extra = op_bytes + (1 if self.batch else 0)
        if self.batch and self.size + extra >= self.max_request_bytes:
            closed, self.batch, self.size, extra = self.batch, [], _ENVELOPE_BYTES, op_bytes
        self.batch.append(item)
        self.size += extra
        return closed

    def rest(self) -> list[T]:
        """The batch being filled (empty when there is none), which the packer starts again after."""
        rest, self.batch, self.size = self.batch, [], _ENVELOPE_BYTES
        return rest


def pack_ops(encoded: Sequence[bytes], max_request_bytes: int = MAX_REQUEST_BYTES) -> Iterator[list[int]]:
    """Group op indexes into batches whose request body stays under ``max_request_bytes``."""
    packer: OpPacker[int] = OpPacker(max_request_bytes)
    for index, op in enumerate(encoded):
        closed = packer.add(index, len(op))
        if closed:
            yield closed
    rest = packer.rest()
    if rest:
        yield rest


class CustomerIOClient:
    def __init__(
        self,
        site_id: str,
        api_key: str,
        *,
        base_url: str,
        timeout: float = 60.0,
        retries: int = 5,
        pool_size: int = DEFAULT_CONCURRENCY,
        requests_per_second: float | None = DEFAULT_TRACK_REQUESTS_PER_SECOND,
    ) -> None:
        self.base_url = check_base_url(base_url)
        # Paced under the rate, so 429s stay rare (those that come are retried).
        self._limiter = RateLimiter(requests_per_second, requests_per_second) if requests_per_second else None
        self.timeout = timeout
        self.session = build_session(pool_size=pool_size, retries=retries)
        self.session.auth = (site_id, api_key)
        self._secrets = [site_id, *basic_credentials(site_id, api_key)]  # kept out of every error
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    @property
    def retried(self) -> int:
        """Calls repeated after a 429, a 5xx, a time-out or a reset (not counted in ``api_calls``)."""
        return retried(self.session)

    def _post(self, path: str, body: bytes) -> requests.Response:
        if self._limiter is not None:
            self._limiter.acquire(path)
        with self._lock:
            self._calls += 1
        return self.session.post(
            self.base_url + path,
            data=body,
            headers={"Content-Type": "application/json"},
            timeout=self.timeout,
        )

    def send_batch(self, encoded_ops: Sequence[bytes]) -> list[OpError]:
        """POST ``/api/v2/batch`` with already encoded ops (one request); returns the per-op errors.

        200 and 207 bodies are both read for ``errors``. A non-2xx answer raises :class:`CustomerIOError`.
        """
        body = b'{"batch":[' + b",".join(encoded_ops) + b"]}"
        response = self._post("/api/v2/batch", body)
        if response.status_code not in (200, 207):
            raise CustomerIOError(response.status_code, redact_secrets(_detail(response), self._secrets))
        try:
            payload = response.json() if response.content else {}
        except ValueError:
            payload = {}
        errors = payload.get("errors") if isinstance(payload, dict) else None
        out: list[OpError] = []
        for err in errors or []:
            index = err.get("batch_index")
            if isinstance(index, int) and 0 <= index < len(encoded_ops):
                reason = ": ".join(str(err.get(k)) for k in ("reason", "field", "message") if err.get(k))
                reason = redact_secrets(reason, self._secrets)
                out.append(OpError(index, reason or "rejected"))
        if response.status_code == 207 and not out:
            out = [OpError(i, "207 without per-op detail") for i in range(len(encoded_ops))]
        return out

    def close(self) -> None:
        self.session.close()


def _detail(response: requests.Response) -> str:
    text = response.text[:500] if response.content else ""
    return text or response.reason or "no body"
