"""The Mailchimp stand-in's e-commerce endpoints over real HTTP: stores, products, customers, orders."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.mailchimp_api import MailchimpStandIn
from tests.sandbox.test_mailchimp_standin import LIST, Api, assert_doc_shaped, assert_problem

STORE = "stripe-store"
STORES = f"/ecommerce/stores/{STORE}"


@pytest.fixture
def server() -> Iterator[MailchimpStandIn]:
    stand_in = MailchimpStandIn()
    stand_in.start()
    stand_in.create_audience(list_id=LIST, name="Customers")
    stand_in.create_audience(list_id="other", name="Another audience")
    yield stand_in
    stand_in.stop()


@pytest.fixture
def api(server: MailchimpStandIn) -> Api:
    return Api(server.url + "/3.0")


def store_body(**extra: Any) -> dict[str, Any]:
    return {"id": STORE, "list_id": LIST, "name": "Stripe", "currency_code": "USD", **extra}


def product_body(price: float = 19.0) -> dict[str, Any]:
    return {
        "id": "prod_1",
        "title": "Handbook",
        "variants": [{"id": "price_1", "title": "Handbook USD", "price": price}],
    }


def order_body(**extra: Any) -> dict[str, Any]:
    return {
        "id": "ch_1",
        "customer": {"id": "cus_1", "email_address": "ann.lee@gmail.com", "opt_in_status": False},
        "currency_code": "USD",
        "order_total": 19.0,
        "financial_status": "paid",
        "lines": [{"id": "li_1", "product_id": "prod_1", "product_variant_id": "price_1", "quantity": 1, "price": 19}],
        **extra,
    }


@pytest.fixture
def store(api: Api) -> dict[str, Any]:
    response = api("POST", "/ecommerce/stores", json=store_body())
    assert response.status_code == 200, response.text
    return response.json()


def errors_of(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors", [])}


# -- stores ----------------------------------------------------------------------------------------------
def test_store_is_created_tied_to_an_audience_and_shaped_as_the_document_says(api: Api, store: dict) -> None:
    assert store["list_id"] == LIST and store["currency_code"] == "USD" and store["is_syncing"] is False
    got = api("GET", STORES)
    assert got.status_code == 200
    assert_doc_shaped("GET", "/ecommerce/stores/{store_id}", 200, got.json())
    listed = api("GET", "/ecommerce/stores").json()
    assert [s["id"] for s in listed["stores"]] == [STORE] and listed["total_items"] == 1


@pytest.mark.parametrize("missing", ["id", "list_id", "name", "currency_code"])
def test_store_needs_its_required_fields(api: Api, missing: str) -> None:
    body = store_body()
    del body[missing]
    problem = assert_problem(api("POST", "/ecommerce/stores", json=body), 400, "Invalid Resource")
    assert problem["errors"]


def test_store_refuses_an_unknown_audience_a_bad_currency_and_a_second_store_of_the_same_id(
    api: Api, store: dict
) -> None:
    unknown = api("POST", "/ecommerce/stores", json=store_body(id="s2", list_id="nope"))
    assert errors_of(assert_problem(unknown, 400, "Invalid Resource")) == {"list_id"}
    currency = api("POST", "/ecommerce/stores", json=store_body(id="s3", currency_code="usd"))
    assert errors_of(assert_problem(currency, 400, "Invalid Resource")) == {"currency_code"}
    again = api("POST", "/ecommerce/stores", json=store_body())
    assert errors_of(assert_problem(again, 400, "Invalid Resource")) == {"id"}
    assert_problem(api("GET", "/ecommerce/stores/missing"), 404, "Resource Not Found")


def test_the_store_audience_tie_cannot_change_but_is_syncing_can(
    api: Api, server: MailchimpStandIn, store: dict
) -> None:
    moved = api("PATCH", STORES, json={"list_id": "other"})
    assert errors_of(assert_problem(moved, 400, "Invalid Resource")) == {"list_id"}
    assert api("GET", STORES).json()["list_id"] == LIST
    assert api("PATCH", STORES, json={"is_syncing": True}).json()["is_syncing"] is True
    assert api("PATCH", STORES, json={"is_syncing": False, "list_id": LIST}).json()["is_syncing"] is False
    assert server.ecommerce.stores[STORE].syncing_history == [True, False]


# -- products --------------------------------------------------------------------------------------------
def test_a_new_product_needs_a_title_and_a_variant(api: Api, store: dict) -> None:
    no_variants = api("PUT", f"{STORES}/products/prod_1", json={"id": "prod_1", "title": "Handbook"})
    assert errors_of(assert_problem(no_variants, 400, "Invalid Resource")) == {"variants"}
    no_title = api("PUT", f"{STORES}/products/prod_1", json={"id": "prod_1", "variants": [{"id": "v", "title": "v"}]})
    assert errors_of(assert_problem(no_title, 400, "Invalid Resource")) == {"title"}
    variant_without_title = {"id": "prod_1", "title": "Handbook", "variants": [{"id": "v"}]}
    assert_problem(api("PUT", f"{STORES}/products/prod_1", json=variant_without_title), 400, "Invalid Resource")
    other_id = api("PUT", f"{STORES}/products/prod_2", json=product_body())
    assert errors_of(assert_problem(other_id, 400, "Invalid Resource")) == {"id"}


def test_a_product_put_updates_the_variants_it_lists_and_keeps_the_others(api: Api, store: dict) -> None:
    assert api("PUT", f"{STORES}/products/prod_1", json=product_body()).status_code == 200
    second = {"id": "prod_1", "variants": [{"id": "price_2", "title": "Handbook EUR", "price": 17.5}]}
    assert api("PUT", f"{STORES}/products/prod_1", json=second).status_code == 200
    changed = {"id": "prod_1", "variants": [{"id": "price_1", "title": "Handbook USD", "price": 21.0}]}
    product = api("PUT", f"{STORES}/products/prod_1", json=changed).json()
    assert {v["id"]: v["price"] for v in product["variants"]} == {"price_1": 21.0, "price_2": 17.5}
    assert product["title"] == "Handbook"
    text_price = {"id": "prod_1", "variants": [{"id": "price_1", "title": "x", "price": "21.00"}]}
    assert_problem(api("PUT", f"{STORES}/products/prod_1", json=text_price), 400, "Invalid Resource")
    negative = {"id": "prod_1", "variants": [{"id": "price_1", "title": "x", "price": -1}]}
    assert_problem(api("PUT", f"{STORES}/products/prod_1", json=negative), 400, "Invalid Resource")
    variant = api("PUT", f"{STORES}/products/prod_1/variants/price_3", json={"id": "price_3", "title": "JPY"})
    assert variant.status_code == 200
    assert len(api("GET", f"{STORES}/products/prod_1").json()["variants"]) == 3


# -- customers -------------------------------------------------------------------------------------------
def test_a_new_customer_needs_email_and_opt_in_status_and_becomes_a_member(
    api: Api, server: MailchimpStandIn, store: dict
) -> None:
    no_opt_in = api("PUT", f"{STORES}/customers/cus_1", json={"id": "cus_1", "email_address": "ann.lee@gmail.com"})
    assert_problem(no_opt_in, 400, "Invalid Resource")
    no_email = api("PUT", f"{STORES}/customers/cus_1", json={"id": "cus_1", "opt_in_status": True})
    assert errors_of(assert_problem(no_email, 400, "Invalid Resource")) == {"email_address"}
    fake = api(
        "PUT",
        f"{STORES}/customers/cus_1",
        json={"id": "cus_1", "email_address": "test@example.com", "opt_in_status": True},
    )
    assert errors_of(assert_problem(fake, 400, "Invalid Resource")) == {"email_address"}
    body = {"id": "cus_1", "email_address": "ann.lee@gmail.com", "opt_in_status": True}
    assert api("PUT", f"{STORES}/customers/cus_1", json=body).status_code == 200
    other = {"id": "cus_2", "email_address": "bo.ng@gmail.com", "opt_in_status": False}
    assert api("PUT", f"{STORES}/customers/cus_2", json=other).status_code == 200
    assert server.member(LIST, "ann.lee@gmail.com")["status"] == "subscribed"
    assert server.member(LIST, "bo.ng@gmail.com")["status"] == "transactional"


def test_a_customer_never_changes_an_existing_members_status(api: Api, server: MailchimpStandIn, store: dict) -> None:
    server.add_member(LIST, "cy.ray@gmail.com", status="unsubscribed")
    body = {"id": "cus_3", "email_address": "cy.ray@gmail.com", "opt_in_status": True}
    assert api("PUT", f"{STORES}/customers/cus_3", json=body).status_code == 200
    assert server.member(LIST, "cy.ray@gmail.com")["status"] == "unsubscribed"
    assert api("GET", f"{STORES}/customers/cus_3").json()["opt_in_status"] is True


# -- orders ----------------------------------------------------------------------------------------------
def test_an_order_needs_its_fields_and_lines_of_products_the_store_has(api: Api, store: dict) -> None:
    for missing in ("customer", "currency_code", "order_total", "lines"):
        body = order_body()
        del body[missing]
        assert_problem(api("POST", f"{STORES}/orders", json=body), 400, "Invalid Resource")
    unknown_product = api("POST", f"{STORES}/orders", json=order_body())
    assert errors_of(assert_problem(unknown_product, 400, "Invalid Resource")) == {"lines[0].product_id"}
    api("PUT", f"{STORES}/products/prod_1", json=product_body())
    bad_variant = order_body(
        lines=[{"id": "l", "product_id": "prod_1", "product_variant_id": "x", "quantity": 1, "price": 1}]
    )
    problem = assert_problem(api("POST", f"{STORES}/orders", json=bad_variant), 400, "Invalid Resource")
    assert errors_of(problem) == {"lines[0].product_variant_id"}
    no_lines = api("POST", f"{STORES}/orders", json=order_body(lines=[]))
    assert errors_of(assert_problem(no_lines, 400, "Invalid Resource")) == {"lines"}
    assert api("POST", f"{STORES}/orders", json=order_body()).status_code == 200
    again = api("POST", f"{STORES}/orders", json=order_body())
    assert errors_of(assert_problem(again, 400, "Invalid Resource")) == {"id"}
    assert_problem(api("PATCH", f"{STORES}/orders/ch_missing", json={"order_total": 1}), 404, "Resource Not Found")


def test_a_refund_updates_the_order_and_automations_wait_while_syncing(
    api: Api, server: MailchimpStandIn, store: dict
) -> None:
    api("PUT", f"{STORES}/products/prod_1", json=product_body())
    api("PATCH", STORES, json={"is_syncing": True})
    assert api("PUT", f"{STORES}/orders/ch_1", json=order_body()).status_code == 200  # PUT creates it
    api("PATCH", STORES, json={"is_syncing": False})
    assert api("PUT", f"{STORES}/orders/ch_2", json=order_body(id="ch_2")).status_code == 200
    assert server.ecommerce.stores[STORE].automations == [("order_notification", "ch_2")]
    assert server.member(LIST, "ann.lee@gmail.com")["status"] == "transactional"  # the order's customer

    refund = {"id": "ch_1", "financial_status": "refunded", "order_total": 0}
    updated = api("PUT", f"{STORES}/orders/ch_1", json=refund).json()
    assert updated["financial_status"] == "refunded" and updated["order_total"] == 0
    assert len(updated["lines"]) == 1
    assert server.ecommerce.stores[STORE].automations == [("order_notification", "ch_2")]  # an update fires none
    moved = api("PUT", f"{STORES}/orders/ch_1", json={"id": "ch_1", "customer": {"id": "cus_9"}})
    assert errors_of(assert_problem(moved, 400, "Invalid Resource")) == {"customer.id"}
    order = api("GET", f"{STORES}/orders/ch_1").json()
    assert order["customer"] == {"id": "cus_1"}
    assert [o["id"] for o in api("GET", f"{STORES}/orders").json()["orders"]] == ["ch_1", "ch_2"]


def test_endpoints_of_an_unknown_store_are_not_found(api: Api) -> None:
    assert_problem(api("PUT", "/ecommerce/stores/nope/products/p", json=product_body()), 404, "Resource Not Found")
    assert_problem(api("POST", "/ecommerce/stores/nope/orders", json=order_body()), 404, "Resource Not Found")
