"""The e-commerce endpoints of the Mailchimp Marketing API (stores, products, customers, orders) over a
:class:`~audiences.mailchimp_client.MailchimpClient`: HTTP and the API, no business rules."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from audiences.mailchimp_client import MailchimpClient, MailchimpError


def _segment(value: str) -> str:
    return quote(value, safe="")


class MailchimpStoreClient:
    """``/ecommerce/stores/{store_id}/...`` through ``client`` (its session, retries, call counts)."""

    def __init__(self, client: MailchimpClient, store_id: str) -> None:
        self.client = client
        self.store_id = store_id
        self.path = f"/ecommerce/stores/{_segment(store_id)}"

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    @property
    def retried(self) -> int:
        return self.client.retried

    def get_store(self) -> dict[str, Any] | None:
        """The store, or None when there is no store of this id."""
        try:
            return self.client.request("GET", self.path)
        except MailchimpError as error:
            if error.status == 404:
                return None
            raise

    def create_store(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("POST", "/ecommerce/stores", json={**body, "id": self.store_id})

    def update_store(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("PATCH", self.path, json=body)

    def put_product(self, product_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add or update a product and the variants it lists."""
        return self.client.request("PUT", f"{self.path}/products/{_segment(product_id)}", json=body)

    def put_customer(self, customer_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.client.request("PUT", f"{self.path}/customers/{_segment(customer_id)}", json=body)

    def put_order(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add or update an order (and its lines, by id)."""
        return self.client.request(
            "PUT", f"{self.path}/orders/{_segment(order_id)}", json=body, params={"fields": "id,financial_status"}
        )
