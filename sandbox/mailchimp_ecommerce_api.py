"""The e-commerce endpoints of the Mailchimp stand-in: stores, products and variants, customers, orders.

Mounted on a :class:`~sandbox.mailchimp_api.MailchimpStandIn` by :func:`install` (its one hook), so the same
auth, connection cap and OpenAPI request validation apply; on top of the document:

* a store is tied to an existing audience (``list_id``) when it is created, and that tie cannot change: a
  ``PATCH`` with another ``list_id`` is a 400; ``currency_code`` is a three-letter ISO 4217 code (upper case);
  a second store with the same id is a 400;
* ``is_syncing`` pauses store automations: an order created while it is true fires none (the stand-in records
  the automations a new order would start in :attr:`EcommerceStore.automations`);
* a product is created with ``title`` and at least one variant (each ``id`` and ``title``); a ``PUT`` adds or
  updates the variants it lists and leaves the others; a variant ``price`` is a number, never negative;
* a customer is created with ``email_address`` (a real-looking address, as for members) and ``opt_in_status``;
  a new customer whose email is not a member of the audience adds one, ``subscribed`` when ``opt_in_status``
  is true and ``transactional`` otherwise; an existing member's status is never changed (the document's own
  words for ``opt_in_status``);
* an order is created with ``customer``, ``currency_code``, ``order_total`` and at least one line; every line
  names a product and a variant the store has (else 400), a positive ``quantity`` and a ``price``; an unknown
  order customer is created from the embedded one (which then needs ``email_address`` and ``opt_in_status``);
  ``PUT`` of an existing order replaces the fields it gives and adds or updates lines by id;
  ``financial_status`` is free text (``paid``, ``refunded``, ``partially_refunded``, ...);
* ids in paths and bodies must agree (a 400 otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sandbox.http_server import Request, Response
from sandbox.mailchimp_api import _invalid, _not_found, _now, subscriber_hash

if TYPE_CHECKING:
    from sandbox.mailchimp_api import MailchimpStandIn

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


@dataclass
class EcommerceStore:
    id: str
    list_id: str
    name: str
    currency_code: str
    created_at: str
    updated_at: str
    fields: dict[str, Any] = field(default_factory=dict)  # the optional fields given (platform, domain, ...)
    is_syncing: bool = False
    products: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> product, variants by id
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> order, lines by id
    automations: list[tuple[str, str]] = field(default_factory=list)  # (automation, order id) that fired
    syncing_history: list[bool] = field(default_factory=list)  # every is_syncing value written, in order


def install(api: MailchimpStandIn) -> EcommerceApi:
    """Serve the e-commerce endpoints on ``api``; returns their state (``api.ecommerce``)."""
    return EcommerceApi(api)


class EcommerceApi:
    def __init__(self, api: MailchimpStandIn) -> None:
        self.api = api
        self.stores: dict[str, EcommerceStore] = {}
        base = f"{api.prefix}/ecommerce/stores"
        routes = (
            ("GET", "", self._list_stores),
            ("POST", "", self._create_store),
            ("GET", "/{store_id}", self._get_store),
            ("PATCH", "/{store_id}", self._patch_store),
            ("GET", "/{store_id}/products", self._list_products),
            ("GET", "/{store_id}/products/{product_id}", self._get_product),
            ("PUT", "/{store_id}/products/{product_id}", self._put_product),
            ("PUT", "/{store_id}/products/{product_id}/variants/{variant_id}", self._put_variant),
            ("GET", "/{store_id}/customers/{customer_id}", self._get_customer),
            ("PUT", "/{store_id}/customers/{customer_id}", self._put_customer),
            ("GET", "/{store_id}/orders", self._list_orders),
            ("POST", "/{store_id}/orders", self._create_order),
            ("GET", "/{store_id}/orders/{order_id}", self._get_order),
            ("PUT", "/{store_id}/orders/{order_id}", self._put_order),
            ("PATCH", "/{store_id}/orders/{order_id}", self._patch_order),
        )
        for method, path, handler in routes:
            api._api(method, base + path, handler)

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _bad(field_name: str, message: str) -> Exception:
        return _invalid(
            "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
            [{"field": field_name, "message": message}],
        )

    def _store(self, request: Request) -> EcommerceStore:
        store = self.stores.get(request.params["store_id"])
        if store is None:
            raise _not_found()
        return store

    def _same_id(self, body: dict[str, Any], path_id: str) -> None:
        if "id" in body and body["id"] != path_id:
            raise self._bad("id", f"id {body['id']!r} does not match the id in the path ({path_id!r})")

    def _check_currency(self, value: Any, field_name: str = "currency_code") -> None:
        if not isinstance(value, str) or not _CURRENCY_RE.match(value):
            raise self._bad(field_name, f"{value!r} is not a three-letter ISO 4217 currency code (e.g. USD)")

    def _store_json(self, store: EcommerceStore) -> dict[str, Any]:
        return {
            "id": store.id,
            "list_id": store.list_id,
            "name": store.name,
            "currency_code": store.currency_code,
            "is_syncing": store.is_syncing,
            **store.fields,
            "created_at": store.created_at,
            "updated_at": store.updated_at,
            "_links": [],
        }

    @staticmethod
    def _product_json(product: dict[str, Any]) -> dict[str, Any]:
        return {**product, "variants": list(product["variants"].values()), "_links": []}

    @staticmethod
    def _order_json(order: dict[str, Any]) -> dict[str, Any]:
        return {**order, "lines": list(order["lines"].values()), "_links": []}

    # -- stores --------------------------------------------------------------------------------------
    def _list_stores(self, request: Request, body: Any) -> Response:
        count, offset = self.api._paging(request)
        stores = list(self.stores.values())
        page = [self._store_json(s) for s in stores[offset : offset + count]]
        return Response(200, {"stores": page, "total_items": len(stores), "_links": []})

    def _create_store(self, request: Request, body: Any) -> Response:
        if body["id"] in self.stores:
            raise self._bad("id", "A store with the provided ID already exists.")
        if body["list_id"] not in self.api._audiences:
            raise self._bad("list_id", f"The list {body['list_id']!r} could not be found.")
        self._check_currency(body["currency_code"])
        now = _now()
        optional = {k: v for k, v in body.items() if k not in ("id", "list_id", "name", "currency_code", "is_syncing")}
        store = EcommerceStore(
            id=body["id"],
            list_id=body["list_id"],
            name=body["name"],
            currency_code=body["currency_code"],
            created_at=now,
            updated_at=now,
            fields=optional,
            is_syncing=bool(body.get("is_syncing", False)),
        )
        if "is_syncing" in body:
            store.syncing_history.append(store.is_syncing)
        self.stores[store.id] = store
        return Response(200, self._store_json(store))

    def _get_store(self, request: Request, body: Any) -> Response:
        return Response(200, self._store_json(self._store(request)))

    def _patch_store(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        if "list_id" in body and body["list_id"] != store.list_id:
            raise self._bad("list_id", "The list_id of a store cannot change.")
        self._same_id(body, store.id)
        if "currency_code" in body:
            self._check_currency(body["currency_code"])
            store.currency_code = body["currency_code"]
        if "name" in body:
            store.name = body["name"]
        if "is_syncing" in body:
            store.is_syncing = bool(body["is_syncing"])
            store.syncing_history.append(store.is_syncing)
        store.fields.update({k: v for k, v in body.items() if k not in ("id", "list_id", "name", "currency_code")})
        store.fields.pop("is_syncing", None)
        store.updated_at = _now()
        return Response(200, self._store_json(store))

    # -- products ------------------------------------------------------------------------------------
    def _check_variant(self, variant: dict[str, Any], where: str) -> None:
        price = variant.get("price")
        if price is not None and price < 0:
            raise self._bad(f"{where}.price", "A variant price cannot be negative.")

    def _list_products(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        count, offset = self.api._paging(request)
        products = list(store.products.values())
        page = [self._product_json(p) for p in products[offset : offset + count]]
        return Response(200, {"store_id": store.id, "products": page, "total_items": len(products), "_links": []})

    def _get_product(self, request: Request, body: Any) -> Response:
        product = self._store(request).products.get(request.params["product_id"])
        if product is None:
            raise _not_found()
        return Response(200, self._product_json(product))

    def _put_product(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        product_id = request.params["product_id"]
        self._same_id(body, product_id)
        existing = store.products.get(product_id)
        variants = body.get("variants", [])
        if existing is None:
            if not body.get("title"):
                raise self._bad("title", "A new product needs a title.")
            if not variants:
                raise self._bad("variants", "A new product needs at least one variant.")
        for i, variant in enumerate(variants):
            self._check_variant(variant, f"variants[{i}]")
        product = existing or {"id": product_id, "variants": {}, "published_at_foreign": ""}
        product.update({k: v for k, v in body.items() if k != "variants"})
        for variant in variants:
            product["variants"][variant["id"]] = {**product["variants"].get(variant["id"], {}), **variant}
        product["updated_at"] = _now()
        store.products[product_id] = product
        return Response(200, self._product_json(product))

    def _put_variant(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        product = store.products.get(request.params["product_id"])
        if product is None:
            raise _not_found()
        variant_id = request.params["variant_id"]
        self._same_id(body, variant_id)
        self._check_variant(body, "price")
        product["variants"][variant_id] = {**product["variants"].get(variant_id, {}), **body}
        return Response(200, product["variants"][variant_id])

    # -- customers -----------------------------------------------------------------------------------
    def _upsert_customer(self, store: EcommerceStore, customer_id: str, body: dict[str, Any], where: str) -> None:
        existing = store.customers.get(customer_id)
        if existing is None:
            if "email_address" not in body:
                raise self._bad(f"{where}email_address", "A new customer needs an email_address.")
            if "opt_in_status" not in body:
                raise self._bad(f"{where}opt_in_status", "A new customer needs an opt_in_status.")
        if "email_address" in body:
            self.api._check_new_email(body["email_address"])
        customer = existing or {"id": customer_id, "orders_count": 0, "total_spent": 0, "created_at": _now()}
        customer.update({k: v for k, v in body.items() if k != "id"})
        customer["updated_at"] = _now()
        store.customers[customer_id] = customer
        audience = self.api._audiences[store.list_id]
        email = customer["email_address"]
        if subscriber_hash(email) not in audience.members:  # an existing member keeps its status
            status = "subscribed" if customer.get("opt_in_status") else "transactional"
            member = self.api._new_member(email, status, {})
            member.source = "E-commerce"
            audience.members[subscriber_hash(email)] = member

    def _get_customer(self, request: Request, body: Any) -> Response:
        customer = self._store(request).customers.get(request.params["customer_id"])
        if customer is None:
            raise _not_found()
        return Response(200, {**customer, "_links": []})

    def _put_customer(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        customer_id = request.params["customer_id"]
        self._same_id(body, customer_id)
        self._upsert_customer(store, customer_id, body, "")
        return Response(200, {**store.customers[customer_id], "_links": []})

    # -- orders --------------------------------------------------------------------------------------
    def _check_lines(self, store: EcommerceStore, lines: list[dict[str, Any]]) -> None:
        for i, line in enumerate(lines):
            where = f"lines[{i}]"
            product = store.products.get(line.get("product_id", ""))
            if product is None:
                raise self._bad(f"{where}.product_id", f"Product {line.get('product_id')!r} is not in the store.")
            if line.get("product_variant_id") not in product["variants"]:
                raise self._bad(
                    f"{where}.product_variant_id",
                    f"Variant {line.get('product_variant_id')!r} is not a variant of product {product['id']!r}.",
                )
            if line.get("quantity", 1) < 1:
                raise self._bad(f"{where}.quantity", "quantity must be at least 1.")

    def _write_order(self, store: EcommerceStore, order_id: str, body: dict[str, Any], *, create: bool) -> Response:
        existing = store.orders.get(order_id)
        if create:
            for name in ("customer", "currency_code", "order_total", "lines"):
                if name not in body:
                    raise self._bad(name, f"A new order needs {name}.")
            if not body["lines"]:
                raise self._bad("lines", "A new order needs at least one line.")
            for i, line in enumerate(body["lines"]):
                for name in ("id", "product_id", "product_variant_id", "quantity", "price"):
                    if name not in line:
                        raise self._bad(f"lines[{i}].{name}", f"An order line needs {name}.")
        if "currency_code" in body:
            self._check_currency(body["currency_code"])
        self._check_lines(store, body.get("lines", []))
        customer = body.get("customer")
        if customer is not None:
            if existing is not None and "id" in customer and customer["id"] != existing["customer"]["id"]:
                raise self._bad("customer.id", "The customer of an order cannot change.")
            if existing is None or "id" in customer:
                customer_id = customer["id"]
                if customer_id not in store.customers or len(customer) > 1:
                    self._upsert_customer(store, customer_id, customer, "customer.")
        order = existing or {"id": order_id, "lines": {}, "store_id": store.id}
        order.update({k: v for k, v in body.items() if k not in ("lines", "customer", "id")})
        if existing is None:
            order["customer"] = {"id": body["customer"]["id"]}
        for line in body.get("lines", []):
            order["lines"][line["id"]] = {**order["lines"].get(line["id"], {}), **line}
        order["updated_at"] = _now()
        store.orders[order_id] = order
        if existing is None and not store.is_syncing:
            store.automations.append(("order_notification", order_id))
        return Response(200, self._order_json(order))

    def _list_orders(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        count, offset = self.api._paging(request)
        orders = list(store.orders.values())
        page = [self._order_json(o) for o in orders[offset : offset + count]]
        return Response(200, {"store_id": store.id, "orders": page, "total_items": len(orders), "_links": []})

    def _get_order(self, request: Request, body: Any) -> Response:
        order = self._store(request).orders.get(request.params["order_id"])
        if order is None:
            raise _not_found()
        return Response(200, self._order_json(order))

    def _create_order(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        if body["id"] in store.orders:
            raise self._bad("id", "An order with the provided ID already exists.")
        return self._write_order(store, body["id"], body, create=True)

    def _put_order(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        order_id = request.params["order_id"]
        self._same_id(body, order_id)
        return self._write_order(store, order_id, body, create=order_id not in store.orders)

    def _patch_order(self, request: Request, body: Any) -> Response:
        store = self._store(request)
        order_id = request.params["order_id"]
        if order_id not in store.orders:
            raise _not_found()
        return self._write_order(store, order_id, body, create=False)

    # -- test helpers --------------------------------------------------------------------------------
    def store(self, store_id: str) -> EcommerceStore | None:
        with self.api._state:
            return self.stores.get(store_id)
