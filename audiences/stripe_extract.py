"""Pull Stripe list endpoints page by page with the official SDK and land them in DuckDB in bulk."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import duckdb
import stripe

from audiences.stripe_streams import Stream
from audiences.warehouse import upsert_arrow

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # Stripe's maximum
CHUNK_ROWS = 5_000  # objects per bulk insert: memory stays flat however large the account is


def make_client(api_key: str, api_base: str, max_network_retries: int = 3) -> stripe.StripeClient:
    """A ``StripeClient`` bound to ``api_base`` with explicit network retries (it retries none by default)."""
    return stripe.StripeClient(
        api_key,
        base_addresses={"api": api_base.rstrip("/")},
        max_network_retries=max_network_retries,
    )


@dataclass
class RateLimitRetry:
    """Retries what the SDK does not: a plain 429 (and errors Stripe marks as retryable)."""

    attempts: int = 8
    base_delay: float = 0.5
    max_delay: float = 20.0
    retried: int = 0

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(self.attempts):
            try:
                return fn(*args, **kwargs)
            except (stripe.RateLimitError, stripe.APIConnectionError) as exc:
                if attempt == self.attempts - 1:
                    raise
                self.retried += 1
                delay = min(self.max_delay, self.base_delay * 2**attempt) * (0.5 + random.random() / 2)
                log.warning("Stripe %s, retrying in %.1fs", type(exc).__name__, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


@dataclass
class StreamResult:
    stream: str
    fetched: int  # objects read from Stripe
    changed: int  # rows inserted or replaced (new or different from the stored object)
    pages: int
    seconds: float


def list_page(client: stripe.StripeClient, path: str, params: dict[str, Any], retry: RateLimitRetry) -> dict[str, Any]:
    """One list page through the SDK's ``raw_request``: the SDK's auth, retries and typed errors, and the JSON
    exactly as Stripe sent it (building ``StripeObject``s costs ~6x the time, and we store the JSON anyway)."""
    response = retry.call(client.raw_request, "get", path, **params)
    page = json.loads(response.body)
    if not isinstance(page, dict) or page.get("object") != "list" or not isinstance(page.get("data"), list):
        raise stripe.APIError(f"unexpected answer to GET {path}: not a list object")
    return page


def iter_pages(client: stripe.StripeClient, stream: Stream, retry: RateLimitRetry) -> Iterator[list[dict[str, Any]]]:
    """Every page of ``stream``'s list endpoint, newest first, as plain dicts."""
    params: dict[str, Any] = {"limit": PAGE_SIZE, **stream.list_params}
    while True:
        page = list_page(client, stream.path, params, retry)
        objects: list[dict[str, Any]] = page["data"]
        if objects:
            yield objects
        if not page.get("has_more") or not objects:
            return
        params = {**params, "starting_after": objects[-1]["id"]}


def ensure_table(con: duckdb.DuckDBPyConnection, stream: Stream) -> None:
    con.execute("create schema if not exists stripe")
    con.execute(stream.ddl())


def extract_stream(
    con: duckdb.DuckDBPyConnection,
    client: stripe.StripeClient,
    stream: Stream,
    retry: RateLimitRetry | None = None,
) -> StreamResult:
    """List every object of ``stream`` and upsert it by id, in chunks, in one transaction.

    A run that dies halfway leaves the table as it was (the transaction rolls back); running twice gives the
    same table, one row per id.
    """
    retry = retry or RateLimitRetry()
    started = time.monotonic()
    extracted_at = time.time()
    ensure_table(con, stream)
    fetched = changed = pages = 0
    buffer: list[dict[str, Any]] = []
    con.execute("begin transaction")
    try:
        for page in iter_pages(client, stream, retry):
            pages += 1
            fetched += len(page)
            buffer.extend(page)
            if len(buffer) >= CHUNK_ROWS:
                changed += upsert_arrow(
                    con, stream.table, stream.to_arrow(buffer, extracted_at), select_sql=stream.select_sql()
                )
                buffer = []
        changed += upsert_arrow(
            con, stream.table, stream.to_arrow(buffer, extracted_at), select_sql=stream.select_sql()
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return StreamResult(stream.name, fetched, changed, pages, time.monotonic() - started)
