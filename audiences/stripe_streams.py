"""What we pull from Stripe: one :class:`Stream` per warehouse table, with its typed columns.

Each column knows how to read itself from a Stripe object (a plain dict). The whole object is kept too
(``raw``), so a field a model needs later is already in the warehouse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

Getter = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    arrow_type: pa.DataType
    get: Getter

    @property
    def select_expr(self) -> str:
        if self.sql_type == "JSON":
            return f"{self.name}::JSON as {self.name}"
        if self.sql_type == "TIMESTAMPTZ":
            return f"to_timestamp({self.name}) as {self.name}"
        return self.name


@dataclass(frozen=True)
class Stream:
    """A Stripe list endpoint landing in ``stripe.<name>``."""

    name: str
    path: str  # the list endpoint, e.g. ``/v1/customers``
    description: str
    columns: tuple[Column, ...]
    list_params: dict[str, Any] = field(default_factory=dict)

    @property
    def table(self) -> str:
        return f"stripe.{self.name}"

    @property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(c.name, c.arrow_type) for c in self.all_columns])

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return (*self.columns, RAW, EXTRACTED_AT)

    def ddl(self) -> str:
        cols = ",\n  ".join(
            f"{c.name} {c.sql_type}{' primary key' if c.name == 'id' else ''}" for c in self.all_columns
        )
        return f"create table if not exists {self.table} (\n  {cols}\n)"

    def select_sql(self) -> str:
        return ", ".join(c.select_expr for c in self.all_columns)

    def to_arrow(self, objects: list[dict[str, Any]], extracted_at: float) -> pa.Table:
        data: dict[str, list[Any]] = {c.name: [c.get(o) for o in objects] for c in self.columns}
        data["raw"] = [json.dumps(o, separators=(",", ":"), sort_keys=True) for o in objects]
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
EXTRACTED_AT = col("_extracted_at", "TIMESTAMPTZ")

CUSTOMERS = Stream(
    name="customers",
    path="/v1/customers",
    description="Stripe customers: one row per customer id, latest state.",
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
    description="Stripe products, active and archived.",
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

STREAMS: tuple[Stream, ...] = (CUSTOMERS, CHARGES, SUBSCRIPTIONS, PRODUCTS, PRICES)
STREAMS_BY_NAME = {s.name: s for s in STREAMS}
