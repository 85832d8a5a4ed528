"""Outcomes handed in by many threads, handled in as few calls as they allow (flat combining).

Sending threads hand in what each answer says (``put``); whichever of them finds nobody handling handles every
outcome waiting, in one call, and the others go back to sending at once. Recording one batch's answer in the
warehouse costs about as much as recording ten (an insert has a fixed cost of milliseconds), so answers that come
in together are recorded together, as soon as the recorder is free, and no sender waits for the warehouse.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

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
