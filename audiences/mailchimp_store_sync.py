"""The store marts -> a Mailchimp e-commerce store: products (with variants), customers, orders.

Rules (docs/ecommerce.md):
- one store per Stripe account, created when missing, tied to the audience; a store tied to another audience
  stops the run (Mailchimp cannot move a store to another audience);
- during the first backfill (nothing pushed to the store yet, or a backfill that did not finish) the store is
  ``is_syncing``, so its automations do not fire for history; the flag is cleared when the backfill succeeds;
- products first (order lines point at them), then customers (``opt_in_status`` from consent; Mailchimp never
  changes an existing member's status with it), then orders (refunds change their status and total);
- each entity goes through the same change detection as the audience: only what changed since the store last
  accepted it is sent, refusals are kept in ``sync.rejections`` with their reason, nothing is deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import duckdb

from audiences.mailchimp_client import MailchimpError, worker_pool
from audiences.mailchimp_store_client import MailchimpStoreClient
from audiences.store_payloads import (
    VARIANTS,
    customers_sql,
    orders_sql,
    orders_without_store_customer_sql,
    products_sql,
)
from audiences.sync_result import SyncResult
from audiences.sync_state import Plan, Rejection, ensure_schema, payload_hash, plan_changes, record_outcome

log = logging.getLogger(__name__)

PRODUCTS = "mailchimp_store_products"
CUSTOMERS = "mailchimp_store_customers"
ORDERS = "mailchimp_store_orders"
DESTINATION = "mailchimp_store"


class StoreError(RuntimeError):
    """The store cannot be synced as configured (tied to another audience, marts in another currency)."""


@dataclass(frozen=True)
class StoreSettings:
    store_id: str
    list_id: str
    currency_code: str  # upper case ISO 4217
    name: str = "Stripe"


@dataclass
class StoreSyncResult:
    """The outcome of one store push: per entity, and together (what the asset reports)."""

    total: SyncResult
    parts: dict[str, SyncResult] = field(default_factory=dict)  # destination -> its result
    store_created: bool = False
    backfill: bool = False


def _check_marts_currency(con: duckdb.DuckDBPyConnection, currency_code: str) -> None:
    built = {row[0] for row in con.execute(f"select distinct store_currency from {VARIANTS}").fetchall()}
    if built and built != {currency_code.lower()}:
        raise StoreError(
            f"the store marts were built for {', '.join(sorted(c.upper() for c in built))} but the store is in "
            f"{currency_code}: set MAILCHIMP_STORE_CURRENCY for both the push and dbt (or the dbt var store_currency)"
        )


def ensure_store(store: MailchimpStoreClient, settings: StoreSettings, *, create: bool) -> tuple[dict | None, bool]:
    """The store, created when missing and given the configured currency (unless ``create`` is false, as in a
    dry run, which writes nothing); (store, created now)."""
    found = store.get_store()
    if found is None:
        if not create:
            return None, False
        body = {"list_id": settings.list_id, "name": settings.name, "currency_code": settings.currency_code}
        log.info("creating Mailchimp store %s on audience %s", settings.store_id, settings.list_id)
        # created syncing: what follows is the backfill, whose history must not start automations
        return store.create_store({**body, "platform": "Stripe", "is_syncing": True}), True
    if found.get("list_id") != settings.list_id:
        raise StoreError(
            f"Mailchimp store {settings.store_id} is tied to audience {found.get('list_id')}, not "
            f"{settings.list_id}; a store's audience cannot change: set MAILCHIMP_STORE_ID to a new store id"
        )
    if create and found.get("currency_code") != settings.currency_code:
        found = store.update_store({"currency_code": settings.currency_code})
    return found, False


def _failure(key: str, error: Exception, digest: str) -> Rejection:
    if isinstance(error, MailchimpError):
        if error.status in (401, 403):
            raise error  # a bad key stops the run: nothing half-sent
        return Rejection(key, error.reason, error.permanent, digest)
    return Rejection(key, f"transient: {type(error).__name__}: {error}"[:500], False, digest)


def _send(
    plan: Plan, write: Callable[[str, dict[str, Any]], Any], max_connections: int
) -> tuple[list[str], list[Rejection]]:
    """Write every record of ``plan`` (``PUT``s, side by side); (accepted keys, refusals)."""

    def work(key: str) -> tuple[str, Exception | None]:
        try:
            write(key, plan.to_send[key])
            return key, None
        except Exception as exc:  # MailchimpError, or time-outs and resets that outlived the retries
            return key, exc

    refused: dict[str, Rejection] = {}
    with worker_pool(max_connections) as pool:
        for key, error in pool.map(work, sorted(plan.to_send)):
            if error is not None:
                refused[key] = _failure(key, error, plan.hashes[key])
    accepted = [key for key in sorted(plan.to_send) if key not in refused]
    return accepted, [refused[k] for k in sorted(refused)]


def _order_rejections(con: duckdb.DuckDBPyConnection, limit: int | None) -> list[Rejection]:
    return [
        Rejection(order_id, f"customer {customer_id} has no valid email: not a store customer", True, payload_hash({}))
        for order_id, customer_id in con.execute(orders_without_store_customer_sql(limit)).fetchall()
    ]


def _sync_part(
    con: duckdb.DuckDBPyConnection,
    destination: str,
    query: str,
    write: Callable[[str, dict[str, Any]], Any],
    *,
    run_id: str | None,
    dry_run: bool,
    full_resync: bool,
    max_connections: int,
    refused_before: list[Rejection] | None = None,
) -> SyncResult:
    started = time.monotonic()
    result = SyncResult(destination, dry_run=dry_run)
    plan = plan_changes(con, destination, query, full_resync=full_resync)
    before = [r for r in refused_before or [] if plan.is_new_rejection(r)]
    result.considered = plan.unchanged + plan.still_rejected + len(plan.to_send) + len(refused_before or [])
    result.unchanged = plan.unchanged
    result.still_rejected = plan.still_rejected + len(refused_before or []) - len(before)
    new = [k for k in plan.to_send if k not in plan.previous]
    result.planned = {f"{destination.removeprefix('mailchimp_store_')}_creates": len(new)}
    result.planned[f"{destination.removeprefix('mailchimp_store_')}_updates"] = len(plan.to_send) - len(new)
    if dry_run:
        result.planned_sample = [plan.to_send[k] for k in sorted(plan.to_send)[:10]]
        result.sent = 0
        result.rejections = before
        result.seconds = time.monotonic() - started
        return result
    sending = time.monotonic()
    accepted, refused = _send(plan, write, max_connections)
    result.send_seconds = time.monotonic() - sending
    result.created = len([k for k in accepted if k not in plan.previous])
    result.updated = len(accepted) - result.created
    result.sent = len(accepted)
    result.rejections = before + refused
    record_outcome(con, destination, plan, accepted, result.rejections, run_id)
    result.seconds = time.monotonic() - started
    return result


def _backfilling(con: duckdb.DuckDBPyConnection, found: dict[str, Any] | None, created: bool) -> bool:
    """A first push (a store created now, or no push of its orders has finished yet) or one that did not finish
    (the store is still ``is_syncing``)."""
    ensure_schema(con)
    finished = con.execute("select count(*) from sync.runs where destination = ? and not dry_run", [ORDERS]).fetchone()
    return created or found is None or bool(found.get("is_syncing")) or not (finished and finished[0])


def sync_store(
    con: duckdb.DuckDBPyConnection,
    store: MailchimpStoreClient,
    settings: StoreSettings,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    full_resync: bool = False,
    limit: int | None = None,
    max_connections: int = 10,
) -> StoreSyncResult:
    """Create the store if needed, then push products, customers and orders that changed."""
    started = time.monotonic()
    _check_marts_currency(con, settings.currency_code)
    found, created = ensure_store(store, settings, create=not dry_run)
    backfill = _backfilling(con, found, created)
    if backfill and not dry_run and not (found or {}).get("is_syncing"):
        store.update_store({"is_syncing": True})  # no store automation fires for history
    common: dict[str, Any] = {
        "run_id": run_id,
        "dry_run": dry_run,
        # a store created now (a first run, or one removed in Mailchimp) holds nothing we pushed before
        "full_resync": full_resync or created,
        "max_connections": max_connections,
    }
    parts = {
        PRODUCTS: _sync_part(con, PRODUCTS, products_sql(), store.put_product, **common),
        CUSTOMERS: _sync_part(con, CUSTOMERS, customers_sql(limit), store.put_customer, **common),
    }
    parts[ORDERS] = _sync_part(
        con, ORDERS, orders_sql(limit), store.put_order, refused_before=_order_rejections(con, limit), **common
    )
    if backfill and not dry_run:
        store.update_store({"is_syncing": False})  # the history is in: automations from now on
    total = SyncResult(DESTINATION, dry_run=dry_run)
    for part in parts.values():
        for name in ("considered", "unchanged", "still_rejected", "created", "updated", "sent", "send_seconds"):
            setattr(total, name, getattr(total, name) + getattr(part, name))
        total.rejections += part.rejections
        total.planned.update(part.planned)
        total.planned_sample += part.planned_sample[: 10 - len(total.planned_sample)]
    if found is None and dry_run:
        total.planned["store_creates"] = 1
    total.api_calls = store.api_calls
    total.retried = store.retried
    total.seconds = time.monotonic() - started
    return StoreSyncResult(total, parts, store_created=created, backfill=backfill)
