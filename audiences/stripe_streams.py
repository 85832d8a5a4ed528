"""What we pull from Stripe: one :class:`Stream` per warehouse table, with its typed columns.

Each column knows how to read itself from a Stripe object (a plain dict). The whole object is kept too
(``raw``), so a field a model needs later is already in the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pandas  # noqa: F401  (see below)
import pyarrow as pa

# pyarrow imports pandas the first time it builds an array from Python objects, which takes about a second
# and holds the import lock: import it with this module rather than inside the backfill's first pages.

Getter = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    arrow_type: pa.DataType
    get: Getter
    computed_sql: str | None = None  # computed in SQL from the other columns, not sent from Python

    @property
    def select_expr(self) -> str:
        if self.computed_sql:
            return f"{self.computed_sql} as {self.name}"
        if self.sql_type == "JSON":
            return f"{self.name}::JSON as {self.name}"
        if self.sql_type == "TIMESTAMPTZ":
            return f"to_timestamp({self.name}) as {self.name}"
        return self.name


@dataclass(frozen=True)
class Stream:
    """A Stripe list endpoint landing in ``stripe.<name>``, and the events that update it.

    ``object_type`` is the ``object`` field of the objects (and of ``data.object`` in their events);
    ``event_types`` are the event type filters (``type`` accepts one ``*`` wildcard) that carry their changes;
    ``tombstones`` says whether a ``<object>.deleted`` event removes the object in Stripe (customers,
    products): the row is then kept, flagged ``is_deleted`` with ``deleted_at``. (A subscription's
    ``customer.subscription.deleted`` is a cancellation: the object stays, with status ``canceled``.)
    """

    name: str
    path: str  # the list endpoint, e.g. ``/v1/customers``
    description: str
    columns: tuple[Column, ...]
    object_type: str = ""
    event_types: tuple[str, ...] = ()
    tombstones: bool = False
    list_params: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"stripe.{self.name}"

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.all_columns if not c.computed_sql])

    @property
    def all_columns(self) -> tuple[Column, ...]:
        if not self.object_type:  # the events table has no tombstones
            return (*self.columns, RAW, RAW_HASH, EXTRACTED_AT)
        return (*self.columns, IS_DELETED, DELETED_AT, RAW, RAW_HASH, EXTRACTED_AT)

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f"{c.name} {c.sql_type}{' primary key' if c.name == 'id' else ''}" for c in self.all_columns
        )
        return f"create table if not exists {self.table} (\n  {cols}\n)"

    def select_sql(self) -> str:
        return ", ".join(c.select_expr for c in self.all_columns)

    def same_sql(self) -> str:
        """When a stored row ``t`` already holds batch row ``b``: same JSON, and same deletion state."""
        # Comparing a 64-bit hash reads 8 bytes per stored row instead of the whole JSON.
        if not self.object_type:
            return "t._raw_hash = hash(b.raw)"
        return "t._raw_hash = hash(b.raw) and t.is_deleted is not distinct from b.is_deleted"

    def upsert(self, con: Any, batch: pa.Table) -> int:
        from audiences.warehouse import upsert_arrow

        return upsert_arrow(
            con,
            self.table,
            batch,
            select_sql=self.select_sql(),
            same_sql=self.same_sql(),
            columns=[c.name for c in self.all_columns],
        )

    def to_arrow(
        self, objects: list[dict[str, Any]], extracted_at: float, deleted_at: list[float | None] | None = None
    ) -> pa.Table:
        """Rows for ``objects``; ``deleted_at[i]`` set marks object i as a tombstone deleted at that time."""
        data: dict[str, list[Any]] = {c.name: [c.get(o) for o in objects] for c in self.columns}
        if self.object_type:
            deleted = deleted_at if deleted_at is not None else [None] * len(objects)
            data["is_deleted"] = [d is not None for d in deleted]
            data["deleted_at"] = deleted
        data["raw"] = [orjson.dumps(o, option=orjson.OPT_SORT_KEYS).decode() for o in objects]
        data["_extracted_at"] = [extracted_at] * len(objects)
        return pa.table(data, schema=self.arrow_schema)


# -- getters -----------------------------------------------------------------------------------------
def key(name: str) -> Getter:
    return lambda o: o.get(name)


def ref_id(name: str) -> Getter:
    """An id field that may come expanded (the object) or not (the id string)."""

    def get(o: dict[str, Any]) -> Any:
        value = o.get(name)
        return value.get("id") if isinstance(value, dict) else value

    return get


def as_json(name: str) -> Getter:
    return lambda o: None if o.get(name) is None else json.dumps(o.get(name), sort_keys=True)


def expanded(name: str, sub: str) -> Getter:
    def get(o: dict[str, Any]) -> Any:
        value = o.get(name)
        return value.get(sub) if isinstance(value, dict) else None

    return get


def _items(o: dict[str, Any]) -> Any:
    items = o.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    return None if data is None else json.dumps(data, sort_keys=True)


def _recurring(sub: str) -> Getter:
    def get(o: dict[str, Any]) -> Any:
        recurring = o.get("recurring")
        return recurring.get(sub) if isinstance(recurring, dict) else None

    return get


def col(name: str, sql_type: str, get: Getter | None = None) -> Column:
    arrow = {
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "INTEGER": pa.int32(),
        "BOOLEAN": pa.bool_(),
        "DOUBLE": pa.float64(),
        "JSON": pa.string(),
        "TIMESTAMPTZ": pa.float64(),  # unix seconds; cast with to_timestamp() on insert
    }[sql_type]
    return Column(name, sql_type, arrow, get or key(name))


RAW = Column("raw", "JSON", pa.string(), lambda o: None)
RAW_HASH = Column("_raw_hash", "UBIGINT", pa.uint64(), lambda o: None, computed_sql="hash(raw)")
EXTRACTED_AT = col("_extracted_at", "TIMESTAMPTZ")
IS_DELETED = col("is_deleted", "BOOLEAN")
DELETED_AT = col("deleted_at", "TIMESTAMPTZ")

CUSTOMERS = Stream(
    name="customers",
    path="/v1/customers",
    description="Stripe customers: one row per customer id, latest state; deleted ones kept as tombstones.",
    object_type="customer",
    event_types=("customer.created", "customer.updated", "customer.deleted"),
    tombstones=True,
    columns=(
        col("id", "VARCHAR"),
        col("email", "VARCHAR"),
        col("name", "VARCHAR"),
        col("currency", "VARCHAR"),
        col("delinquent", "BOOLEAN"),
        col("metadata", "JSON", as_json("metadata")),
        col("created", "TIMESTAMPTZ"),
    ),
)

CHARGES = Stream(
    name="charges",
    path="/v1/charges",
    description="Stripe charges with their balance transaction (settlement amount and exchange rate).",
    list_params={"expand": ["data.balance_transaction"]},
    object_type="charge",
    event_types=("charge.*",),
    columns=(
        col("id", "VARCHAR"),
        col("customer_id", "VARCHAR", ref_id("customer")),
        col("amount", "BIGINT"),
        col("amount_captured", "BIGINT"),
        col("amount_refunded", "BIGINT"),
        col("currency", "VARCHAR"),
        col("status", "VARCHAR"),
        col("paid", "BOOLEAN"),
        col("captured", "BOOLEAN"),
        col("refunded", "BOOLEAN"),
        col("disputed", "BOOLEAN"),
        col("failure_code", "VARCHAR"),
        col("invoice_id", "VARCHAR", ref_id("invoice")),
        col("payment_intent_id", "VARCHAR", ref_id("payment_intent")),
        col("balance_transaction_id", "VARCHAR", ref_id("balance_transaction")),
        col("bt_amount", "BIGINT", expanded("balance_transaction", "amount")),
        col("bt_currency", "VARCHAR", expanded("balance_transaction", "currency")),
        col("bt_exchange_rate", "DOUBLE", expanded("balance_transaction", "exchange_rate")),
        col("created", "TIMESTAMPTZ"),
    ),
)

SUBSCRIPTIONS = Stream(
    name="subscriptions",
    path="/v1/subscriptions",
    description="Stripe subscriptions in every status (status=all), with their items.",
    list_params={"status": "all"},
    object_type="subscription",
    event_types=("customer.subscription.*",),
    columns=(
        col("id", "VARCHAR"),
        col("customer_id", "VARCHAR", ref_id("customer")),
        col("status", "VARCHAR"),
        col("currency", "VARCHAR"),
        col("cancel_at_period_end", "BOOLEAN"),
        col("start_date", "TIMESTAMPTZ"),
        col("canceled_at", "TIMESTAMPTZ"),
        col("ended_at", "TIMESTAMPTZ"),
        col("trial_end", "TIMESTAMPTZ"),
        col("items", "JSON", _items),
        col("created", "TIMESTAMPTZ"),
    ),
)

PRODUCTS = Stream(
    name="products",
    path="/v1/products",
    description="Stripe products, active and archived; deleted ones kept as tombstones.",
    object_type="product",
    event_types=("product.*",),
    tombstones=True,
    columns=(
        col("id", "VARCHAR"),
        col("name", "VARCHAR"),
        col("active", "BOOLEAN"),
        col("created", "TIMESTAMPTZ"),
        col("updated", "TIMESTAMPTZ"),
    ),
)

PRICES = Stream(
    name="prices",
    path="/v1/prices",
    description="Stripe prices, one-off and recurring, active and archived.",
    object_type="price",
    event_types=("price.*",),
    tombstones=True,
    columns=(
        col("id", "VARCHAR"),
        col("product_id", "VARCHAR", ref_id("product")),
        col("active", "BOOLEAN"),
        col("currency", "VARCHAR"),
        col("unit_amount", "BIGINT"),
        col("type", "VARCHAR"),
        col("recurring_interval", "VARCHAR", _recurring("interval")),
        col("recurring_interval_count", "INTEGER", _recurring("interval_count")),
        col("created", "TIMESTAMPTZ"),
    ),
)

REFUNDS = Stream(
    name="refunds",
    path="/v1/refunds",
    description="Stripe refunds (partial and full), with the date each was made.",
    object_type="refund",
    event_types=("refund.*", "charge.refund.updated"),
    columns=(
        col("id", "VARCHAR"),
        col("charge_id", "VARCHAR", ref_id("charge")),
        col("payment_intent_id", "VARCHAR", ref_id("payment_intent")),
        col("amount", "BIGINT"),
        col("currency", "VARCHAR"),
        col("status", "VARCHAR"),
        col("reason", "VARCHAR"),
        col("created", "TIMESTAMPTZ"),
    ),
)

DISPUTES = Stream(
    name="disputes",
    path="/v1/disputes",
    description="Stripe disputes (chargebacks) and their outcome.",
    object_type="dispute",
    event_types=("charge.dispute.*",),
    columns=(
        col("id", "VARCHAR"),
        col("charge_id", "VARCHAR", ref_id("charge")),
        col("amount", "BIGINT"),
        col("currency", "VARCHAR"),
        col("status", "VARCHAR"),
        col("reason", "VARCHAR"),
        col("created", "TIMESTAMPTZ"),
    ),
)


def _path(*keys: str) -> Getter:
    """A nested field, e.g. ``consent.promotions``; None when a level is missing."""

    def get(o: dict[str, Any]) -> Any:
        value: Any = o
        for name in keys:
            value = value.get(name) if isinstance(value, dict) else None
        return value

    return get


def _line_items(o: dict[str, Any]) -> Any:
    """The expanded ``line_items.data`` (each with its price); None when the object came without them (events
    never carry them: ``stripe_checkout.fill_line_items`` gives them back)."""
    items = o.get("line_items")
    data = items.get("data") if isinstance(items, dict) else None
    return None if data is None else json.dumps(data, sort_keys=True)


CHECKOUT_SESSIONS = Stream(
    name="checkout_sessions",
    path="/v1/checkout/sessions",
    description="Stripe Checkout Sessions with their line items (what was bought) and the promotions consent asked.",
    list_params={"expand": ["data.line_items"]},
    object_type="checkout.session",
    event_types=(
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ),
    columns=(
        col("id", "VARCHAR"),
        col("customer_id", "VARCHAR", ref_id("customer")),
        col("payment_intent_id", "VARCHAR", ref_id("payment_intent")),
        col("invoice_id", "VARCHAR", ref_id("invoice")),
        col("mode", "VARCHAR"),
        col("status", "VARCHAR"),
        col("payment_status", "VARCHAR"),
        col("currency", "VARCHAR"),
        col("amount_total", "BIGINT"),
        col("customer_email", "VARCHAR", _path("customer_details", "email")),
        col("consent_promotions", "VARCHAR", _path("consent", "promotions")),
        col("line_items", "JSON", _line_items),
        col("created", "TIMESTAMPTZ"),
    ),
)


def _lines(o: dict[str, Any]) -> Any:
    """An invoice's ``lines.data`` (its first lines: Stripe includes up to 10, ``lines.has_more`` says whether
    there are more); None when the object came without them."""
    lines = o.get("lines")
    data = lines.get("data") if isinstance(lines, dict) else None
    return None if data is None else json.dumps(data, sort_keys=True)


def _ref_path(*keys: str) -> Getter:
    """A nested id field that may come expanded (the object) or not (the id string)."""
    inner = _path(*keys)

    def get(o: dict[str, Any]) -> Any:
        value = inner(o)
        return value.get("id") if isinstance(value, dict) else value

    return get


INVOICE_EVENT_TYPES = (
    "invoice.created",
    "invoice.deleted",  # a draft deleted: the row becomes a tombstone
    "invoice.finalized",
    "invoice.finalization_failed",
    "invoice.marked_uncollectible",
    "invoice.overpaid",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.updated",
    "invoice.voided",
)

INVOICES = Stream(
    name="invoices",
    path="/v1/invoices",
    description="Stripe invoices in every status, with their lines (price, product and quantity of each).",
    object_type="invoice",
    # Exact types, not ``invoice.*``: that would bring ``invoice.upcoming`` (a preview without an id), and the
    # exact types share the one ``types[]`` query of the others.
    event_types=INVOICE_EVENT_TYPES,
    tombstones=True,
    columns=(
        col("id", "VARCHAR"),
        col("customer_id", "VARCHAR", ref_id("customer")),
        col("subscription_id", "VARCHAR", _ref_path("parent", "subscription_details", "subscription")),
        col("status", "VARCHAR"),
        col("billing_reason", "VARCHAR"),
        col("collection_method", "VARCHAR"),
        col("currency", "VARCHAR"),
        col("amount_due", "BIGINT"),
        col("amount_paid", "BIGINT"),
        col("amount_remaining", "BIGINT"),
        col("total", "BIGINT"),
        col("number", "VARCHAR"),
        col("lines", "JSON", _lines),
        col("lines_has_more", "BOOLEAN", _path("lines", "has_more")),
        col("paid_at", "TIMESTAMPTZ", _path("status_transitions", "paid_at")),
        col("created", "TIMESTAMPTZ"),
    ),
)

INVOICE_PAYMENTS = Stream(
    name="invoice_payments",
    path="/v1/invoice_payments",
    description="Stripe invoice payments: which payment (payment intent, or charge) paid which invoice, and how much.",
    object_type="invoice_payment",
    # Stripe emits only ``invoice_payment.paid``: an invoice payment that is canceled, or stays open, changes
    # in the list alone (a full refresh reads it). The orders need the paid ones.
    event_types=("invoice_payment.paid",),
    columns=(
        col("id", "VARCHAR"),
        col("invoice_id", "VARCHAR", ref_id("invoice")),
        col("payment_type", "VARCHAR", _path("payment", "type")),
        col("payment_intent_id", "VARCHAR", _ref_path("payment", "payment_intent")),
        col("charge_id", "VARCHAR", _ref_path("payment", "charge")),
        col("status", "VARCHAR"),
        col("is_default", "BOOLEAN"),
        col("currency", "VARCHAR"),
        col("amount_paid", "BIGINT"),
        col("amount_requested", "BIGINT"),
        col("paid_at", "TIMESTAMPTZ", _path("status_transitions", "paid_at")),
        col("created", "TIMESTAMPTZ"),
    ),
)


def _data_object(sub: str) -> Getter:
    def get(o: dict[str, Any]) -> Any:
        data = o.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        return obj.get(sub) if isinstance(obj, dict) else None

    return get


def _previous_attributes(o: dict[str, Any]) -> Any:
    data = o.get("data")
    prev = data.get("previous_attributes") if isinstance(data, dict) else None
    return None if prev is None else json.dumps(prev, sort_keys=True)


EVENTS = Stream(
    name="events",
    path="/v1/events",
    description="Stripe events of the types we use (30 days are listed by Stripe; we keep them all).",
    columns=(
        col("id", "VARCHAR"),
        col("type", "VARCHAR"),
        col("object_type", "VARCHAR", _data_object("object")),
        col("object_id", "VARCHAR", _data_object("id")),
        col("api_version", "VARCHAR"),
        col("livemode", "BOOLEAN"),
        col("previous_attributes", "JSON", _previous_attributes),
        col("created", "TIMESTAMPTZ"),
    ),
)

OBJECT_STREAMS: tuple[Stream, ...] = (
    CUSTOMERS,
    CHARGES,
    SUBSCRIPTIONS,
    PRODUCTS,
    PRICES,
    REFUNDS,
    DISPUTES,
    CHECKOUT_SESSIONS,
    INVOICES,
    INVOICE_PAYMENTS,
)
STREAMS: tuple[Stream, ...] = (*OBJECT_STREAMS, EVENTS)
STREAMS_BY_NAME = {s.name: s for s in STREAMS}

# Events the reverse ETL forwards (marketing triggers) beside those that update the tables.
MARKETING_EVENT_TYPES = ("invoice.payment_failed", "checkout.session.completed")


def _covered(event_type: str, wildcards: list[str]) -> bool:
    return any(w != event_type and event_type.startswith(w[:-1]) for w in wildcards)


def event_queries() -> list[dict[str, Any]]:
    """The fewest ``/v1/events`` filters that cover every type we use.

    One ``type`` query per wildcard not already covered by another, and the remaining exact types together
    through ``types[]`` (at most 20 per query, as Stripe allows).
    """
    wanted = [t for s in OBJECT_STREAMS for t in s.event_types] + list(MARKETING_EVENT_TYPES)
    wanted = list(dict.fromkeys(wanted))
    wildcards = [t for t in wanted if t.endswith("*")]
    wildcards = [w for w in wildcards if not _covered(w, wildcards)]
    exact = [t for t in wanted if not t.endswith("*") and not _covered(t + "*", wildcards)]
    queries: list[dict[str, Any]] = [{"type": w} for w in wildcards]
    queries += [{"types": exact[i : i + 20]} for i in range(0, len(exact), 20)]
    return queries
