"""Backfill: list every object of some streams, in parallel `created` windows, resumable.

Each stream starts as one window over all of time. Workers page through windows (newest first); whenever a
worker is idle and a window still holds several pages, the window's older half is split off for it. Windows
are therefore few and long (fuller pages, fewer requests) while every worker has something to fetch.

Workers turn each page into an Arrow batch and hand it to the single DuckDB writer (the calling thread) through
a bounded queue. The writer lands batches in bulk and records, in the same transaction, the part of each window
that its pages completed, so an interrupted backfill resumes where it stopped. For streams whose objects can be
deleted in Stripe (customers, products, prices), the writer also keeps the ids it listed: when the backfill
completes, rows it did not list are objects deleted while no run was reading events, and become tombstones.
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
import pyarrow as pa

from audiences import stripe_state
from audiences.stripe_reader import PAGE_SIZE, StripeReader
from audiences.stripe_streams import Stream

log = logging.getLogger(__name__)
CHUNK_ROWS = 5_000  # objects per bulk insert: memory stays flat however large the account is
SPLIT_MIN_PAGES = 4  # split off the older half of a window only when it likely holds more pages than this
# Pages in flight to the writer (about 15 s of fetching at 25 requests/s, some 100 MB at most): a commit that
# triggers one of DuckDB's checkpoints takes seconds, and fetching must not stall behind it.
QUEUE_PAGES = 8 * CHUNK_ROWS // PAGE_SIZE


@dataclass(frozen=True)
class Window:
    stream: Stream
    backfill_cursor: int
    gte: int
    lt: int


@dataclass
class _Page:
    """A page of ``window``'s stream; ``done`` is the `created` range it completed, if any."""

    window: Window
    batch: pa.Table
    done: tuple[int, int] | None


@dataclass
class _Failed:
    error: BaseException


@dataclass
class BackfillStats:
    objects: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    windows: int = 0  # windows fetched (the initial ones plus those split off)
    splits: int = 0
    ranges: int = 0  # completed ranges recorded for resuming
    writer_seconds: float = 0.0  # the writer landing pages (in DuckDB)
    blocked_seconds: float = 0.0  # workers waiting for room in the writer's queue (summed over workers)


class Backfill:
    def __init__(
        self,
        reader: StripeReader,
        con: duckdb.DuckDBPyConnection,
        workers: int = 8,
        extracted_at: float | None = None,
    ) -> None:
        self.reader = reader
        self.con = con
        self.workers = workers
        self.extracted_at = extracted_at if extracted_at is not None else time.time()
        self.stats = BackfillStats()
        self._work: queue.Queue[Window | None] = queue.Queue()
        self._out: queue.Queue[_Page | _Failed] = queue.Queue(maxsize=max(QUEUE_PAGES, 4 * workers))
        self._pending = 0  # windows queued or being fetched
        self._idle = 0  # workers waiting for a window
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._on_fetched: Callable[[], None] | None = None

    # -- workers -------------------------------------------------------------------------------------
    def _add(self, window: Window) -> None:
        with self._lock:
            self._pending += 1
            self.stats.windows += 1
        self._work.put(window)

    def _finish_one(self) -> None:
        with self._lock:
            self._pending -= 1
            done = self._pending == 0
            if done:
                for _ in range(self.workers):
                    self._work.put(None)
        # Called by the worker that fetched the last page, not by the writer: the writer may be seconds into a
        # commit (a checkpoint), and whatever the caller starts next should not wait for it.
        if done and self._on_fetched is not None and not self._stop.is_set():
            try:
                self._on_fetched()
            except BaseException as exc:  # handed to the writer like a failed fetch
                self._stop.set()
                self._out.put(_Failed(exc))

    def _worker(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._idle += 1
            window = self._work.get()
            with self._lock:
                self._idle -= 1
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

    def _someone_idle(self) -> bool:
        with self._lock:
            return self._idle > 0 and self._work.empty()

    def _fetch(self, window: Window) -> None:
        """Page through ``window`` newest first, splitting off its older half whenever a worker is idle."""
        stream = window.stream
        gte, upper = window.gte, window.lt  # still to list: created in [gte, upper), after `after`
        after: str | None = None
        while not self._stop.is_set():
            params: dict[str, Any] = {"limit": PAGE_SIZE, "created": {"gte": gte, "lt": upper}, **stream.list_params}
            if after is not None:
                params["starting_after"] = after
            page, _ = self.reader.list(stream.path, params)
            objects = page["data"]
            if not page.get("has_more") or not objects:
                self._put(_Page(window, stream.to_arrow(objects, self.extracted_at), (gte, upper)))
                return
            oldest, newest = int(objects[-1]["created"]), int(objects[0]["created"])
            # Everything created after `oldest` inside the window has been listed (newest first).
            self._put(_Page(window, stream.to_arrow(objects, self.extracted_at), (oldest + 1, upper)))
            upper, after = oldest + 1, objects[-1]["id"]
            # The page's density (objects per second of `created`) estimates how many pages are left.
            estimated_pages = (upper - gte) / max(1, newest - oldest + 1)
            if upper - gte > 1 and estimated_pages > SPLIT_MIN_PAGES and self._someone_idle():
                middle = (gte + upper) // 2
                with self._lock:
                    self.stats.splits += 1
                self._add(Window(stream, window.backfill_cursor, gte, middle))
                gte = middle  # this worker goes on with the newer half, from where it is
        # Stopped because another worker failed: the rest of this window is not complete, nor recorded.

    def _put(self, page: _Page) -> None:
        try:
            self._out.put_nowait(page)
        except queue.Full:
            started = time.monotonic()
            self._out.put(page)
            with self._lock:
                self.stats.blocked_seconds += time.monotonic() - started

    # -- the writer ----------------------------------------------------------------------------------
    def run(
        self,
        windows: list[Window],
        on_progress: Callable[[str, int], None] | None = None,
        on_fetched: Callable[[], None] | None = None,
    ) -> BackfillStats:
        """Fetch and land ``windows``; ``on_fetched`` is called once every page is fetched, before the writer has
        landed the last ones (the caller can start using the network again)."""
        if not windows:
            return self.stats
        self._on_fetched = on_fetched
        for window in windows:
            self._add(window)
        threads = [
            threading.Thread(target=self._worker, name=f"stripe-backfill-{i}", daemon=True) for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        buffered: list[_Page] = []
        rows = 0
        streams: dict[str, Stream] = {w.stream.name: w.stream for w in windows}
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
                buffered.append(item)
                rows += item.batch.num_rows
                name = item.window.stream.name
                self.stats.objects[name] = self.stats.objects.get(name, 0) + item.batch.num_rows
                # Few large inserts: DuckDB's cost per statement dwarfs its cost per row.
                if rows >= CHUNK_ROWS:
                    self._commit(streams, buffered, on_progress)
                    buffered, rows = [], 0
            self._commit(streams, buffered, on_progress)
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
        pages: list[_Page],
        on_progress: Callable[[str, int], None] | None,
    ) -> None:
        """Land the pages' rows and record the ranges they complete, in one transaction."""
        if not pages:
            return
        started = time.monotonic()
        self.con.execute("begin transaction")
        try:
            for stream in streams.values():
                own = [p for p in pages if p.window.stream is stream]
                if not own:
                    continue
                batch = pa.concat_tables([p.batch for p in own])
                if batch.num_rows:
                    changed = stream.upsert(self.con, batch)
                    self.stats.changed[stream.name] = self.stats.changed.get(stream.name, 0) + changed
                    if stream.tombstones:
                        for cursor in {p.window.backfill_cursor for p in own}:
                            listed = [p.batch.select(["id"]) for p in own if p.window.backfill_cursor == cursor]
                            stripe_state.record_listed(self.con, stream.name, cursor, pa.concat_tables(listed))
                stripe_state.record_windows(
                    self.con,
                    [(stream.name, p.window.backfill_cursor, *p.done, p.batch.num_rows) for p in own if p.done],
                )
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise
        self.stats.writer_seconds += time.monotonic() - started
        self.stats.ranges += sum(1 for p in pages if p.done)
        if on_progress:
            for name in streams:
                on_progress(name, self.stats.objects.get(name, 0))
