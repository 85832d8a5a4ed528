"""Backfill: list every object of some streams, in parallel `created` windows, resumable.

Workers fetch windows concurrently (within the rate limits); a window whose first page says it is still dense
is split in two and both halves go back to the queue. Pages flow through a bounded queue to the single DuckDB
writer (the calling thread), which lands them in bulk and records each finished window in the same
transaction, so an interrupted backfill resumes from the windows it finished.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from audiences import stripe_state
from audiences.stripe_reader import PAGE_SIZE, StripeReader
from audiences.stripe_streams import Stream

log = logging.getLogger(__name__)
CHUNK_ROWS = 5_000  # objects per bulk insert: memory stays flat however large the account is
SPLIT_MIN_PAGES = 10  # split the rest of a window when it likely holds more than this many pages


@dataclass(frozen=True)
class Window:
    stream: Stream
    backfill_cursor: int
    gte: int
    lt: int


@dataclass
class _Page:
    window: Window
    objects: list[dict[str, Any]]


@dataclass
class _Done:
    window: Window
    gte: int  # the part of the window now complete
    lt: int


@dataclass
class _Failed:
    error: BaseException


@dataclass
class BackfillStats:
    objects: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    windows: int = 0
    splits: int = 0


class Backfill:
    def __init__(self, reader: StripeReader, con: duckdb.DuckDBPyConnection, workers: int = 8) -> None:
        self.reader = reader
        self.con = con
        self.workers = workers
        self.stats = BackfillStats()
        self._work: queue.Queue[Window | None] = queue.Queue()
        self._out: queue.Queue[_Page | _Done | _Failed] = queue.Queue(maxsize=4 * workers)
        self._pending = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- workers -------------------------------------------------------------------------------------
    def _add(self, window: Window) -> None:
        with self._lock:
            self._pending += 1
        self._work.put(window)

    def _finish_one(self) -> None:
        with self._lock:
            self._pending -= 1
            if self._pending == 0:
                for _ in range(self.workers):
                    self._work.put(None)

    def _worker(self) -> None:
        while not self._stop.is_set():
            window = self._work.get()
            if window is None:
                return
            try:
                self._fetch(window)
            except BaseException as exc:  # handed to the writer, which stops the backfill
                self._stop.set()
                self._out.put(_Failed(exc))
                return
            finally:
                self._finish_one()

    def _fetch(self, window: Window) -> None:
        stream = window.stream
        params: dict[str, Any] = {
            "limit": PAGE_SIZE,
            "created": {"gte": window.gte, "lt": window.lt},
            **stream.list_params,
        }
        page, _ = self.reader.list(stream.path, params)
        objects = page["data"]
        self._out.put(_Page(window, objects))
        if not page.get("has_more") or not objects:
            self._out.put(_Done(window, window.gte, window.lt))
            return
        oldest = int(objects[-1]["created"])
        # Everything created after `oldest` inside the window has been listed (newest first).
        self._out.put(_Done(window, oldest + 1, window.lt))
        rest_lt = oldest + 1
        newest = int(objects[0]["created"])
        # The page's density (objects per second of `created`) estimates how many pages the rest holds.
        estimated_pages = (rest_lt - window.gte) / max(1, newest - oldest + 1)
        if rest_lt - window.gte > 1 and estimated_pages > SPLIT_MIN_PAGES:
            middle = (window.gte + rest_lt) // 2
            self.stats.splits += 1
            self._add(Window(stream, window.backfill_cursor, window.gte, middle))
            self._add(Window(stream, window.backfill_cursor, middle, rest_lt))
            return
        # Not worth splitting (or one dense second): page on within the rest of the window.
        rest = Window(stream, window.backfill_cursor, window.gte, rest_lt)
        params = {**params, "created": {"gte": rest.gte, "lt": rest.lt}, "starting_after": objects[-1]["id"]}
        while True:
            if self._stop.is_set():
                return  # another worker failed: this window is not complete, so it is not marked done
            page, _ = self.reader.list(stream.path, params)
            objects = page["data"]
            self._out.put(_Page(rest, objects))
            if not page.get("has_more") or not objects:
                break
            params = {**params, "starting_after": objects[-1]["id"]}
        self._out.put(_Done(rest, rest.gte, rest.lt))

    # -- the writer ----------------------------------------------------------------------------------
    def run(self, windows: list[Window], on_progress: Callable[[str, int], None] | None = None) -> BackfillStats:
        if not windows:
            return self.stats
        for window in windows:
            self._add(window)
        threads = [
            threading.Thread(target=self._worker, name=f"stripe-backfill-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        buffers: dict[str, list[dict[str, Any]]] = {}
        buffered = 0
        finished: list[_Done] = []  # windows whose rows are all buffered, to record with the next flush
        streams: dict[str, Stream] = {w.stream.name: w.stream for w in windows}
        counts: dict[tuple[str, int, int], int] = {}
        extracted_at = time.time()
        try:
            while True:
                if all(not t.is_alive() for t in threads) and self._out.empty():
                    break
                try:
                    item = self._out.get(timeout=0.2)
                except queue.Empty:
                    continue
                if isinstance(item, _Failed):
                    raise item.error
                name = item.window.stream.name
                if isinstance(item, _Page):
                    buffers.setdefault(name, []).extend(item.objects)
                    buffered += len(item.objects)
                    key = (name, item.window.gte, item.window.lt)
                    counts[key] = counts.get(key, 0) + len(item.objects)
                    self.stats.objects[name] = self.stats.objects.get(name, 0) + len(item.objects)
                else:
                    finished.append(item)
                # Few large inserts: DuckDB's cost per statement dwarfs its cost per row.
                if buffered >= CHUNK_ROWS:
                    self._commit(streams, buffers, finished, counts, extracted_at, on_progress)
                    buffered = 0
            self._commit(streams, buffers, finished, counts, extracted_at, on_progress)
        finally:
            self._stop.set()
            for _ in threads:
                self._work.put(None)
            # Unblock workers waiting on a full queue, then let them end.
            while any(t.is_alive() for t in threads):
                try:
                    self._out.get_nowait()
                except queue.Empty:
                    time.sleep(0.01)
        return self.stats

    def _commit(
        self,
        streams: dict[str, Stream],
        buffers: dict[str, list[dict[str, Any]]],
        finished: list[_Done],
        counts: dict[tuple[str, int, int], int],
        extracted_at: float,
        on_progress: Callable[[str, int], None] | None,
    ) -> None:
        """Land every buffered row and record the windows they complete, in one transaction."""
        self.con.execute("begin transaction")
        try:
            for stream in streams.values():
                self._flush(stream, buffers, extracted_at)
            for done in finished:
                name = done.window.stream.name
                stripe_state.record_window(
                    self.con,
                    name,
                    done.window.backfill_cursor,
                    done.gte,
                    done.lt,
                    counts.pop((name, done.window.gte, done.window.lt), 0),
                )
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        self.stats.windows += len(finished)
        finished.clear()
        if on_progress:
            for name in streams:
                on_progress(name, self.stats.objects.get(name, 0))

    def _flush(self, stream: Stream, buffers: dict[str, list[dict[str, Any]]], extracted_at: float) -> None:
        rows = buffers.pop(stream.name, [])
        if rows:
            changed = stream.upsert(self.con, stream.to_arrow(rows, extracted_at))
            self.stats.changed[stream.name] = self.stats.changed.get(stream.name, 0) + changed
