"""The store push against the Mailchimp stand-in over HTTP, on hand-made marts (no dbt, no Dagster): the
audience tie, refusals recorded once, retried 5xx, dry runs, and marts built for another currency."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pytest

from audiences.mailchimp_client import MailchimpClient
from audiences.mailchimp_store_client import MailchimpStoreClient
from audiences.mailchimp_store_sync import ORDERS, StoreError, StoreSettings, sync_store
from sandbox.http_server import Fault
from sandbox.mailchimp_api import DEFAULT_API_KEY, MailchimpStandIn

LIST = "aud1"
SETTINGS = StoreSettings(store_id="st1", list_id=LIST, currency_code="USD")

MARTS = """
create schema marts;
create table marts.customer_profiles as select * from (values ('cus_a'), ('cus_b'), ('cus_c')) t(customer_id);
create table marts.store_products as select * from (values
    ('prod_1', 'Handbook', timestamptz '2024-01-01 00:00:00+00'),
    ('stripe_payment', 'Stripe payment', null)) t(product_id, product_title, published_at);
create table marts.store_product_variants as select * from (values
    ('price_1', 'prod_1', 'Handbook (USD)', 19.0, true, 'usd'),
    ('stripe_payment', 'stripe_payment', 'Stripe payment', null, false, 'usd'))
    t(variant_id, product_id, variant_title, store_price, is_visible, store_currency);
create table marts.store_customers as select * from (values
    ('cus_a', 'ann.lee@gmail.com', 'Ann', 'Lee', true),
    ('cus_b', 'test@example.com', 'Fake', null, false)) t(customer_id, email, first_name, last_name, opt_in_status);
create table marts.store_orders as select * from (values
    ('ch_1', 'cus_a', 'USD', 38.0, 'paid', timestamptz '2024-02-01 00:00:00+00', timestamptz '2024-02-01 00:00:00+00'),
    ('ch_2', 'cus_b', 'USD', 5.0, 'paid', timestamptz '2024-02-02 00:00:00+00', timestamptz '2024-02-02 00:00:00+00'),
    ('ch_3', 'cus_c', 'EUR', 7.0, 'paid', timestamptz '2024-02-03 00:00:00+00', timestamptz '2024-02-03 00:00:00+00'))
    t(order_id, customer_id, currency_code, order_total, financial_status, processed_at, updated_at);
create table marts.store_order_lines as select * from (values
    ('li_1', 'ch_1', 'prod_1', 'price_1', 2, 19.0),
    ('ch_2', 'ch_2', 'stripe_payment', 'stripe_payment', 1, 5.0),
    ('ch_3', 'ch_3', 'stripe_payment', 'stripe_payment', 1, 7.0))
    t(order_line_id, order_id, product_id, product_variant_id, quantity, unit_price);
"""


@pytest.fixture
def mailchimp() -> Iterator[MailchimpStandIn]:
    stand_in = MailchimpStandIn()
    stand_in.start()
    stand_in.create_audience(list_id=LIST)
    stand_in.create_audience(list_id="aud2")
    yield stand_in
    stand_in.stop()


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute(MARTS)
    yield connection
    connection.close()


def store_client(mailchimp: MailchimpStandIn) -> MailchimpStoreClient:
    client = MailchimpClient(DEFAULT_API_KEY, api_base=mailchimp.url + "/3.0", retries=3)
    return MailchimpStoreClient(client, SETTINGS.store_id)


def writes(mailchimp: MailchimpStandIn) -> list[str]:
    return [f"{r.method} {r.path}" for r in mailchimp.requests if r.method != "GET"]


def test_a_store_tied_to_another_audience_stops_the_run_before_any_write(
    mailchimp: MailchimpStandIn, con: duckdb.DuckDBPyConnection
) -> None:
    store = store_client(mailchimp)
    store.create_store({"list_id": "aud2", "name": "Elsewhere", "currency_code": "USD"})
    mailchimp.clear_requests()
    with pytest.raises(StoreError, match=r"tied to audience aud2.*MAILCHIMP_STORE_ID"):
        sync_store(con, store, SETTINGS)
    assert writes(mailchimp) == []


def test_marts_built_for_another_currency_stop_the_run(
    mailchimp: MailchimpStandIn, con: duckdb.DuckDBPyConnection
) -> None:
    with pytest.raises(StoreError, match="built for USD but the store is in EUR"):
        sync_store(con, store_client(mailchimp), StoreSettings("st1", LIST, "EUR"))
    assert mailchimp.requests == []


def test_refusals_are_recorded_once_and_5xx_are_retried(
    mailchimp: MailchimpStandIn, con: duckdb.DuckDBPyConnection
) -> None:
    mailchimp.inject(Fault(r"/products/prod_1$", status=503, times=2, method="PUT"))
    store = store_client(mailchimp)
    result = sync_store(con, store, SETTINGS, run_id="r1")

    shop = mailchimp.ecommerce.stores["st1"]
    assert set(shop.products) == {"prod_1", "stripe_payment"} and result.total.retried >= 2
    assert set(shop.customers) == {"cus_a"} and set(shop.orders) == {"ch_1"}
    assert shop.orders["ch_1"]["lines"]["li_1"]["quantity"] == 2
    refused = {r.record_key: (r.reason, r.permanent) for r in result.total.rejections}
    assert set(refused) == {"cus_b", "ch_2", "ch_3"}
    assert "looks fake or invalid" in refused["cus_b"][0] and refused["cus_b"][1] is True
    assert "looks fake or invalid" in refused["ch_2"][0]  # its embedded customer is refused too
    assert refused["ch_3"] == ("customer cus_c has no valid email: not a store customer", True)
    assert result.backfill and shop.syncing_history == [True, False]
    con.execute(
        "insert into sync.runs (run_id, destination, started_at, finished_at, dry_run) "
        "values ('r1', ?, now(), now(), false)",
        [ORDERS],
    )  # fmt: skip  (what the asset records)

    mailchimp.clear_requests()
    again = sync_store(con, store, SETTINGS, run_id="r2")
    assert writes(mailchimp) == []  # nothing changed, refusals not retried, no second backfill
    assert again.total.rejections == [] and again.total.still_rejected == 3 and not again.backfill

    con.execute("update marts.store_customers set email = 'fay.ng@gmail.com' where customer_id = 'cus_b'")
    fixed = sync_store(con, store, SETTINGS, run_id="r3")
    assert sorted(writes(mailchimp)) == [
        "PUT /3.0/ecommerce/stores/st1/customers/cus_b",
        "PUT /3.0/ecommerce/stores/st1/orders/ch_2",
    ]
    assert fixed.total.created == 2 and set(shop.orders) == {"ch_1", "ch_2"}


def test_a_dry_run_plans_without_creating_the_store(
    mailchimp: MailchimpStandIn, con: duckdb.DuckDBPyConnection
) -> None:
    result = sync_store(con, store_client(mailchimp), SETTINGS, dry_run=True)
    assert writes(mailchimp) == [] and mailchimp.ecommerce.stores == {}
    assert result.total.planned == {
        "store_creates": 1,
        "products_creates": 2,
        "products_updates": 0,
        "customers_creates": 2,
        "customers_updates": 0,
        "orders_creates": 2,
        "orders_updates": 0,
    }
    assert result.total.sent == 0 and result.total.planned_sample[0]["id"] == "prod_1"
    limited = sync_store(con, store_client(mailchimp), SETTINGS, dry_run=True, limit=1)
    assert limited.total.planned["orders_creates"] == 1 and limited.total.planned["customers_creates"] == 1
