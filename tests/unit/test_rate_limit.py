"""The client-side limiter never sends more than the limit in any sliding second, per endpoint and overall."""

from __future__ import annotations

import threading
import time

import pytest

from audiences.rate_limit import RateLimiter, stripe_limits


def _max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_threads_stay_within_both_limits_in_every_sliding_second() -> None:
    limiter = RateLimiter(global_per_second=30, per_endpoint_per_second=20)
    sent: dict[str, list[float]] = {"/v1/charges": [], "/v1/customers": []}
    lock = threading.Lock()

    def worker(endpoint: str) -> None:
        for _ in range(10):
            limiter.acquire(endpoint)
            with lock:
                sent[endpoint].append(time.monotonic())

    threads = [threading.Thread(target=worker, args=(ep,)) for ep in sent for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert limiter.requests == 80
    assert _max_in_any_second(sent["/v1/charges"] + sent["/v1/customers"]) <= 30
    assert _max_in_any_second(sent["/v1/charges"]) <= 20
    assert _max_in_any_second(sent["/v1/customers"]) <= 20
    # 80 requests at 30/s overall: the last ones had to wait well over a second.
    assert max(sent["/v1/charges"] + sent["/v1/customers"]) - min(sent["/v1/charges"] + sent["/v1/customers"]) > 2.0


def test_a_late_waker_does_not_bunch_with_the_next_request() -> None:
    limiter = RateLimiter(global_per_second=5, per_endpoint_per_second=5)
    sends = []
    for _ in range(5):
        limiter.acquire("/v1/events")
        sends.append(time.monotonic())
    time.sleep(0.3)  # as if this thread had been held up: the window still counts the first five sends
    limiter.acquire("/v1/events")
    sends.append(time.monotonic())
    assert sends[-1] - sends[0] >= 1.0


def test_stripe_limits_follow_the_key_mode_unless_overridden() -> None:
    assert stripe_limits("sk_live_x").global_per_second == 100
    assert stripe_limits("rk_live_x").global_per_second == 100
    assert stripe_limits("sk_test_x").global_per_second == 25
    assert stripe_limits("sk_test_x").per_endpoint_per_second == 25
    assert stripe_limits("sk_live_x", 50, 10).global_per_second == 50
    assert stripe_limits("sk_live_x", 50, 10).per_endpoint_per_second == 10
    with pytest.raises(ValueError):
        RateLimiter(0, 25)
