"""Client-side rate limiting: paced send slots per endpoint and for the whole account.

Stripe allows 100 requests/s in live mode and 25/s in test mode, and by default 25/s per endpoint; it asks
clients to pace requests and back off exponentially. Staying under the limits makes 429s rare.
"""

from __future__ import annotations

import threading
import time
from collections import deque

# Send slightly under the limit: requests sent 1/rate apart reach the server with some jitter, and a server
# counting a sliding second would refuse the one that arrives early.
HEADROOM = 0.02
WINDOW_SECONDS = 1.0 / (1 - HEADROOM)  # a sliding "second", with the same headroom


class _Sent:
    """Send times of the last sliding window, for one limit."""

    def __init__(self, per_second: float) -> None:
        self.limit = max(1, int(per_second))
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - WINDOW_SECONDS:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + WINDOW_SECONDS - now


class RateLimiter:
    """Blocks until a request to ``endpoint`` fits both its endpoint's rate and the global rate.

    Each request is given the next free send slot (a virtual schedule, GCRA): slots are spaced ``1/rate``
    apart, so a thread that wakes a little late does not lose its slot (a token bucket of one token would drop
    the time it overslept). A thread that wakes very late (the GIL held by another) could then send right
    beside the next one, so the actual send times are also checked against a sliding window: never more
    than ``rate`` sends in any second, which is how a strict server counts.
    """

    def __init__(self, global_per_second: float, per_endpoint_per_second: float, headroom: float = HEADROOM) -> None:
        if global_per_second <= 0 or per_endpoint_per_second <= 0:
            raise ValueError("rate limits must be positive")
        if not 0 <= headroom < 1:
            raise ValueError("headroom is a fraction of the rate, in [0, 1)")
        self.global_per_second = global_per_second
        self.per_endpoint_per_second = per_endpoint_per_second
        self._global_spacing = 1.0 / (global_per_second * (1 - headroom))
        self._endpoint_spacing = 1.0 / (per_endpoint_per_second * (1 - headroom))
        self._global_next = 0.0
        self._endpoint_next: dict[str, float] = {}
        self._global_sent = _Sent(global_per_second)
        self._endpoint_sent: dict[str, _Sent] = {}
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        self.requests = 0

    def acquire(self, endpoint: str) -> None:
        with self._lock:
            asked = time.monotonic()
            slot = max(asked, self._global_next, self._endpoint_next.get(endpoint, 0.0))
            self._global_next = slot + self._global_spacing
            self._endpoint_next[endpoint] = slot + self._endpoint_spacing
            sent = self._endpoint_sent.setdefault(endpoint, _Sent(self.per_endpoint_per_second))
        while (delay := slot - time.monotonic()) > 0:
            time.sleep(delay)
        while True:
            with self._lock:
                now = time.monotonic()
                delay = max(self._global_sent.wait(now), sent.wait(now))
                if delay <= 0:
                    self._global_sent.times.append(now)
                    sent.times.append(now)
                    self.requests += 1
                    self.waited_seconds += now - asked
                    return
            time.sleep(delay)


def stripe_limits(
    api_key: str, global_override: float | None = None, endpoint_override: float | None = None
) -> RateLimiter:
    """Stripe's documented limits for this key's mode, unless overridden."""
    live = api_key.startswith(("sk_live_", "rk_live_"))
    default_global = 100.0 if live else 25.0
    return RateLimiter(global_override or default_global, endpoint_override or 25.0)
