"""The SQL that turns the store marts into Mailchimp e-commerce payloads, inside the warehouse.

One query per entity gives ``record_key`` and ``payload`` (the canonical JSON text: sorted keys, no spaces),
for ``sync_state.plan_changes``; the marts decide every value (dbt), this only writes them as the API wants:
amounts as JSON numbers, times as ISO 8601 UTC, a NULL optional field left out (the API refuses ``null``).
"""

from __future__ import annotations

from audiences.payload_sql import json_object

PRODUCTS = "marts.store_products"
VARIANTS = "marts.store_product_variants"
CUSTOMERS = "marts.store_customers"
ORDERS = "marts.store_orders"
ORDER_LINES = "marts.store_order_lines"
PROFILES = "marts.customer_profiles"


def _text(expr: str) -> str:
    return f"to_json({expr})::varchar"


def _number(expr: str) -> str:
    return f"to_json(({expr})::double)::varchar"


def _iso(expr: str) -> str:
    return _text(f"strftime(timezone('UTC', {expr}), '%Y-%m-%dT%H:%M:%SZ')")


def _array(item: str, order_by: str) -> str:
    """The JSON array text of ``item`` (a JSON-text expression) over a group's rows."""
    return f"concat('[', string_agg({item}, ',' order by {order_by}), ']')"


def customers_in_scope(limit: int | None) -> str:
    """A condition on ``customer_id``: all customers, or the first ``limit`` profiles by id (run config)."""
    if limit is None:
        return "true"
    return f"customer_id in (select customer_id from {PROFILES} order by customer_id limit {int(limit)})"


def products_sql() -> str:
    variant = json_object(
        {
            "id": _text("v.variant_id"),
            "title": _text("v.variant_title"),
            "price": _number("v.store_price"),
            "visibility": _text("case when v.is_visible then 'visible' else 'hidden' end"),
        },
        {"price": "v.store_price is not null"},
    )
    product = json_object(
        {
            "id": _text("p.product_id"),
            "title": _text("p.product_title"),
            "published_at_foreign": _iso("p.published_at"),
            "variants": "v.variants",
        },
        {"published_at_foreign": "p.published_at is not null"},
    )
    return f"""
        select p.product_id as record_key, {product} as payload
        from {PRODUCTS} p
        join (
            select v.product_id, {_array(variant, "v.variant_id")} as variants from {VARIANTS} v group by v.product_id
        ) v using (product_id)
    """


def _customer(alias: str) -> dict[str, str]:
    return {
        "id": _text(f"{alias}.customer_id"),
        "email_address": _text(f"{alias}.email"),
        "opt_in_status": _text(f"{alias}.opt_in_status"),
    }


def customers_sql(limit: int | None) -> str:
    names = {"first_name": _text("c.first_name"), "last_name": _text("c.last_name")}
    payload = json_object(
        {**_customer("c"), **names},
        {"first_name": "c.first_name is not null", "last_name": "c.last_name is not null"},
    )
    return (
        f"select c.customer_id as record_key, {payload} as payload from {CUSTOMERS} c where {customers_in_scope(limit)}"
    )


def orders_sql(limit: int | None) -> str:
    """Orders of store customers (with their lines); the others are rejections (``orders_without_...``)."""
    line = json_object(
        {
            "id": _text("l.order_line_id"),
            "product_id": _text("l.product_id"),
            "product_variant_id": _text("l.product_variant_id"),
            "quantity": _text("l.quantity"),
            "price": _number("l.unit_price"),
        }
    )
    order = json_object(
        {
            "id": _text("o.order_id"),
            # the customer as the store has it: an order whose customer was refused heals when the customer does
            "customer": json_object(_customer("c")),
            "currency_code": _text("o.currency_code"),
            "order_total": _number("o.order_total"),
            "financial_status": _text("o.financial_status"),
            "processed_at_foreign": _iso("o.processed_at"),
            "updated_at_foreign": _iso("o.updated_at"),
            "lines": "l.lines",
        }
    )
    return f"""
        select o.order_id as record_key, {order} as payload
        from (select * from {ORDERS} where {customers_in_scope(limit)}) o
        join {CUSTOMERS} c using (customer_id)
        join (
            select l.order_id, {_array(line, "l.order_line_id")} as lines from {ORDER_LINES} l group by l.order_id
        ) l using (order_id)
    """


def orders_without_store_customer_sql(limit: int | None) -> str:
    """``(order_id, customer_id)`` of the orders whose customer is not a store customer (no valid email)."""
    return f"""
        select o.order_id, o.customer_id from {ORDERS} o
        where {customers_in_scope(limit)} and o.customer_id not in (select customer_id from {CUSTOMERS})
        order by o.order_id
    """
