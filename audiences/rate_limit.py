"""Client-side rate limiting: token buckets per endpoint and for the whole account.

Stripe allows 100 requests/s in live mode and 25/s in test mode, and by default 25/s per endpoint; it asks
clients for a token bucket plus exponential backoff. Staying under the limits makes 429s rare.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    rate: float  # tokens per second
    capacity: float  # burst
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, now: float) -> float:
        self._refill(now)
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class RateLimiter:
    """Blocks until a request to ``endpoint`` fits both its endpoint bucket and the global bucket."""

    def __init__(self, global_per_second: float, per_endpoint_per_second: float, burst: float | None = None) -> None:
        if global_per_second <= 0 or per_endpoint_per_second <= 0:
            raise ValueError("rate limits must be positive")
        self.global_per_second = global_per_second
        self.per_endpoint_per_second = per_endpoint_per_second
        # A burst of one second's worth would let a fresh limiter double the rate in its first second, which the
        # server's sliding window counts: keep the bucket small.
        self._burst = burst if burst is not None else 1.0
        self._global = TokenBucket(global_per_second, self._burst)
        self._endpoints: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        self.requests = 0

    def acquire(self, endpoint: str) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                bucket = self._endpoints.get(endpoint)
                if bucket is None:
                    bucket = self._endpoints[endpoint] = TokenBucket(self.per_endpoint_per_second, self._burst)
                wait = max(self._global.wait_time(now), bucket.wait_time(now))
                if wait <= 0:
                    self._global.tokens -= 1
                    bucket.tokens -= 1
                    self.requests += 1
                    return
                self.waited_seconds += wait
            time.sleep(wait)


def stripe_limits(
    api_key: str, global_override: float | None = None, endpoint_override: float | None = None
) -> RateLimiter:
    """Stripe's documented limits for this key's mode, unless overridden."""
    live = api_key.startswith(("sk_live_", "rk_live_"))
    default_global = 100.0 if live else 25.0
    return RateLimiter(global_override or default_global, endpoint_override or 25.0)
