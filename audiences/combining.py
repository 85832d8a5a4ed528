"""Answers of requests sent from many threads: handled in as few calls as they allow, on a thread of their own
(``Combining``), and the requests in flight (``InFlight``).

Sending threads hand in what each answer says (``put``) and go back to sending at once: a thread of the
``Combining`` handles every outcome waiting, in one call, then looks for more. Recording one batch's answer in the
warehouse costs about as much as recording ten (an insert has a fixed cost of milliseconds), so answers that come
in together are recorded together, as soon as the recorder is free; and no sender waits for the warehouse, so
each of the connections a destination allows carries requests all the time (recorded on the senders' own threads,
one connection in ten was recording at any time in a first Mailchimp push).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Combining(Generic[T]):
    """Outcomes handed in from any thread, handled in order of arrival by one thread, several per call.

    An error of ``handle`` stops the handling: the outcomes handed in since are dropped, and ``check`` and ``close``
    raise it in the thread that calls them."""

    def __init__(self, handle: Callable[[list[T]], None]) -> None:
        self._handle = handle
        self._lock = threading.Lock()  # guards ``_waiting``, ``_running`` and ``_error``
        self._waiting: list[T] = []
        self._running: Future[None] | None = None
        self._error: BaseException | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="recorder")

    def put(self, outcome: T) -> None:
        """Hand in ``outcome``; it is handled soon after, on the handling thread."""
        with self._lock:
            if self._error is not None:
                return
            self._waiting.append(outcome)
            if self._running is None:
                self._running = self._thread.submit(self._drain)

    def _drain(self) -> None:
        while True:
            with self._lock:
                outcomes, self._waiting = self._waiting, []
                if not outcomes or self._error is not None:
                    self._running = None
                    return
            try:
                self._handle(outcomes)
            except BaseException as exc:  # raised in the thread that checks (``check``, ``close``)
                with self._lock:
                    self._error, self._waiting, self._running = exc, [], None
                return

    def check(self) -> None:
        """Raise the error of ``handle``, if it failed."""
        with self._lock:
            error = self._error
        if error is not None:
            raise error

    def close(self) -> None:
        """Wait until every outcome handed in is handled; raise the error of ``handle``, if it failed."""
        self._thread.shutdown(wait=True)
        self.check()


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
            future.result()  # a refused key, or a bad key
