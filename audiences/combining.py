"""Answers of requests sent from many threads: handled in as few calls as they allow (flat combining), and
the requests in flight (``InFlight``).

Sending threads hand in what each answer says (``put``); whichever of them finds nobody handling handles every
outcome waiting, in one call, and the others go back to sending at once. Recording one batch's answer in the
warehouse costs about as much as recording ten (an insert has a fixed cost of milliseconds), so answers that come
in together are recorded together, as soon as the recorder is free, and no sender waits for the warehouse.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Combining(Generic[T]):
    def __init__(self, handle: Callable[[list[T]], None]) -> None:
        self._handle = handle
        self._lock = threading.Lock()  # guards ``_waiting``
        self._handling = threading.Lock()  # held by the thread handling outcomes
        self._waiting: list[T] = []

    def put(self, outcome: T) -> None:
        """Hand in ``outcome``; it is handled before this returns, or by the thread handling outcomes now, which
        looks for more before it stops. An error of ``handle`` is raised in the thread that called it."""
        with self._lock:
            self._waiting.append(outcome)
        self.drain()

    def drain(self) -> None:
        while self._handling.acquire(blocking=False):
            try:
                with self._lock:
                    outcomes, self._waiting = self._waiting, []
                if outcomes:
                    self._handle(outcomes)
            finally:
                self._handling.release()
            with self._lock:  # one handed in after we took the list, while we still held ``_handling``
                if not self._waiting:
                    return


class InFlight:
    """Requests sent on a pool and not yet handled: when the first left, and each one's error raised, as soon as
    it is done (``check``) or once all are (``check(block=True)``)."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.futures: set[Future[None]] = set()
        self.first_sent: float | None = None

    def submit(self, send: Callable[..., None], *args: Any) -> None:
        if self.first_sent is None:
            self.first_sent = time.monotonic()
        self.futures.add(self.pool.submit(send, *args))

    def check(self, *, block: bool = False) -> None:
        done, self.futures = wait(self.futures, timeout=None if block else 0)
        for future in done:
            future.result()  # a refused key, or a failure to record
