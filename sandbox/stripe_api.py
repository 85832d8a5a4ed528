"""A local stand-in of the Stripe API (read endpoints) over a :class:`~sandbox.stripe_account.StripeAccount`.

As strict as the real API (see ``shared/contracts/NOTES.md``): bearer-key auth, Stripe's error shape,
``Request-Id`` on every response, ``limit`` 1..100, cursors, ``created[gt|gte|lt|lte]``, strict parameter
checking (an unknown parameter is a 400 ``parameter_unknown``), ``expand[]``, events of the last 30 days with
``type`` wildcards or ``types[]``, and optional rate limits answering 429 with ``Stripe-Rate-Limited-Reason``.

Query parameters are read the way the official SDK encodes them: ``expand[0]=...`` (stripe-python 16 always
indexes arrays), ``expand[]=...`` also works, ``created[gte]=...``, booleans as ``true``/``false``.

Write endpoints are not served: tests change the account in-process (``account.add_charge(...)``), which is
safe while the server runs (the account is locked around every mutation and every page).
"""

from __future__ import annotations

import base64
import random
import re
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.http_server import Request, Response, StandInServer
from sandbox.stripe_account import API_VERSION, SECONDARY_INDEXES, StripeAccount, UnknownObject

MAX_EVENT_TYPES = 20
_KEY_PREFIXES = ("sk_test_", "sk_live_", "rk_test_", "rk_live_")
_REQUEST_ID_CHARS = string.ascii_letters + string.digits


@dataclass
class RateLimits:
    """Limits per API key: requests per sliding second overall and per endpoint, and requests in flight.

    Stripe's defaults are 25/s in test mode (100/s live) and 25/s per endpoint; ``None`` = unlimited.
    """

    global_per_second: float | None = None
    per_endpoint_per_second: float | None = None
    concurrency: int | None = None


class StripeApiError(Exception):
    """Becomes Stripe's error response: ``{"error": {"type", "code", "message", "param"}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        should_retry: bool | None = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = dict(headers or {})
        self.should_retry = should_retry

    def response(self) -> Response:
        error: dict[str, Any] = {"type": self.type, "code": self.code, "message": self.message, "param": self.param}
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        headers = dict(self.headers)
        if self.should_retry is not None:
            headers.setdefault("Stripe-Should-Retry", "true" if self.should_retry else "false")
        return Response(self.status, {"error": error}, headers)


def _unknown_parameter(name: str) -> StripeApiError:
    return StripeApiError(400, f"Received unknown parameter: {name}", code="parameter_unknown", param=name)


def _invalid(param: str, message: str, code: str = "parameter_invalid") -> StripeApiError:
    return StripeApiError(400, message, code=code, param=param)


def mask_key(key: str) -> str:
    """Mask an API key the way Stripe's error messages do: ``sk_test_********************1234``."""
    prefix = next((p for p in _KEY_PREFIXES if key.startswith(p)), "")
    middle = key[len(prefix) : -4] if len(key) > len(prefix) + 4 else ""
    tail = key[-4:] if len(key) > len(prefix) + 4 else ""
    return prefix + "*" * len(middle) + tail if middle else prefix + "*" * (len(key) - len(prefix))


# -- query parameters ----------------------------------------------------------------------------------
_PARAM = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]]*\])*)$")


def parse_params(query: list[tuple[str, str]]) -> dict[str, Any]:
    """Form-encoded params -> nested values: ``a=1`` -> str, ``a[]``/``a[0]`` -> list, ``a[b]`` -> dict."""
    out: dict[str, Any] = {}
    indexed: dict[str, list[tuple[int, int, str]]] = {}
    for position, (raw_key, value) in enumerate(query):
        match = _PARAM.match(raw_key)
        if not match:
            raise _unknown_parameter(raw_key)
        name, brackets = match.group(1), match.group(2)
        subs = re.findall(r"\[([^\[\]]*)\]", brackets)
        if not subs:
            if isinstance(out.get(name), dict | list):
                raise _invalid(name, f"Invalid {name}: cannot be both a value and a hash or array")
            out[name] = value
        elif len(subs) == 1 and (subs[0] == "" or subs[0].isdigit()):
            if name in out and not isinstance(out[name], list):
                raise _invalid(name, f"Invalid array: {name}")
            out.setdefault(name, [])
            order = int(subs[0]) if subs[0] else 1 << 30
            indexed.setdefault(name, []).append((order, position, value))
        elif len(subs) == 1:
            if name in out and not isinstance(out[name], dict):
                raise _invalid(name, f"Invalid hash: {name}")
            out.setdefault(name, {})[subs[0]] = value
        else:
            raise _unknown_parameter(raw_key)
    for name, values in indexed.items():
        out[name] = [value for _, _, value in sorted(values)]
    return out


def _integer(param: str, value: Any) -> int:
    if not isinstance(value, str) or not re.fullmatch(r"-?\d+", value.strip()):
        raise _invalid(param, f"Invalid integer: {value}", code="parameter_invalid_integer")
    return int(value)


def _boolean(param: str, value: Any) -> bool:
    if value not in ("true", "false"):
        raise _invalid(param, f"Invalid boolean: {value}")
    return value == "true"


def _string(param: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _invalid(param, f"Invalid string: {param} must be a string")
    if value == "":
        raise _invalid(
            param,
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request or "
            "supply a non-empty value.",
            code="parameter_invalid_empty",
        )
    return value


def _enum(param: str, value: Any, allowed: tuple[str, ...]) -> str:
    value = _string(param, value)
    if value not in allowed:
        raise _invalid(param, f"Invalid {param}: must be one of {', '.join(allowed)}")
    return value


def _string_list(param: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _invalid(param, f"Invalid array: {param} must be an array")
    return [_string(f"{param}[{i}]", v) for i, v in enumerate(value)]


def _created(value: Any) -> dict[str, int]:
    if isinstance(value, dict):
        out = {}
        for op, ts in value.items():
            if op not in ("gt", "gte", "lt", "lte"):
                raise _unknown_parameter(f"created[{op}]")
            out[op] = _integer(f"created[{op}]", ts)
        return out
    if isinstance(value, list):
        raise _invalid("created", "Invalid created: must be an integer or a hash of gt, gte, lt, lte")
    return {"eq": _integer("created", value)}


# -- endpoints -----------------------------------------------------------------------------------------
Where = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class ListSpec:
    """One list endpoint: its resource, filters and expandable fields."""

    resource: str
    filters: tuple[str, ...] = ()
    expandable: dict[str, str | None] = field(default_factory=dict)  # field -> resource (None: by id)


SUBSCRIPTION_FILTER_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)

LISTS: dict[str, ListSpec] = {
    "/v1/customers": ListSpec("customer", ("email",)),
    "/v1/charges": ListSpec(
        "charge",
        ("customer", "payment_intent"),
        {"balance_transaction": "balance_transaction", "customer": "customer"},
    ),
    "/v1/balance_transactions": ListSpec("balance_transaction", ("currency", "source", "type"), {"source": None}),
    "/v1/refunds": ListSpec(
        "refund",
        ("charge", "payment_intent"),
        {"charge": "charge", "balance_transaction": "balance_transaction"},
    ),
    "/v1/disputes": ListSpec("dispute", ("charge", "payment_intent"), {"charge": "charge"}),
    "/v1/subscriptions": ListSpec(
        "subscription",
        ("customer", "price", "status"),
        {"customer": "customer", "latest_invoice": "invoice"},
    ),
    "/v1/products": ListSpec("product", ("active", "ids", "shippable"), {"default_price": "price"}),
    "/v1/prices": ListSpec("price", ("active", "currency", "product", "type"), {"product": "product"}),
    "/v1/invoices": ListSpec("invoice", ("customer", "status", "subscription"), {"customer": "customer"}),
    "/v1/invoice_payments": ListSpec("invoice_payment", ("invoice", "payment", "status"), {"invoice": "invoice"}),
    "/v1/checkout/sessions": ListSpec(
        "checkout.session",
        ("customer", "payment_intent", "status"),
        {"customer": "customer", "line_items": "checkout.line_items"},  # line_items: only when expanded
    ),
    "/v1/events": ListSpec("event", ("type", "types", "delivery_success")),
}
_LIST_COMMON = ("limit", "starting_after", "ending_before", "expand", "created")


class StripeStandIn(StandInServer):
    """Stripe's read API over HTTP on 127.0.0.1. ``start()`` returns the base URL for ``base_addresses``."""

    name = "stripe"

    def __init__(
        self,
        account: StripeAccount,
        *,
        api_key: str = "sk_test_standin",
        latency: float = 0.0,
        rate_limits: RateLimits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if not api_key.startswith(_KEY_PREFIXES):
            raise ValueError("a Stripe secret key starts with sk_test_, sk_live_, rk_test_ or rk_live_")
        super().__init__(host=host, port=port, latency=latency)
        self.account = account
        self.api_key = api_key
        self.rate_limits = rate_limits
        self.rate_limited: dict[str, int] = {}  # reason -> 429s served
        self._limiter_lock = threading.Lock()
        self._global_window: dict[str, deque[float]] = {}
        self._endpoint_window: dict[tuple[str, str], deque[float]] = {}
        self._in_flight = 0
        self._local = threading.local()
        self._ids = random.Random()
        for path, spec in LISTS.items():
            self.route("GET", path, self._guard(f"GET {path}", self._list_handler(path, spec)))
            self.route("GET", path + "/{id}", self._guard(f"GET {path}/{{id}}", self._retrieve_handler(spec)))

    def clock(self) -> float:
        """The ``Date`` header follows the account's clock, as Stripe's follows its own."""
        return float(self.account.now)

    # -- counters --------------------------------------------------------------------------------
    @property
    def rate_limited_count(self) -> int:
        """How many 429s the stand-in has served."""
        with self._limiter_lock:
            return sum(self.rate_limited.values())

    def count_requests(self, path_prefix: str | None = None, method: str | None = None) -> int:
        """Requests received (all, or those whose path starts with ``path_prefix``)."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (path_prefix is None or r.path.startswith(path_prefix)) and (method is None or r.method == method)
            )

    def reset_counters(self) -> None:
        with self._limiter_lock:
            self.rate_limited.clear()
            self._global_window.clear()
            self._endpoint_window.clear()
        self.clear_requests()

    # -- plumbing --------------------------------------------------------------------------------
    def _request_id(self) -> str:
        with self._limiter_lock:
            return "req_" + "".join(self._ids.choices(_REQUEST_ID_CHARS, k=14))

    def dispatch(self, request: Request) -> Response | None:
        with self._limiter_lock:
            self._in_flight += 1
            self._local.in_flight = self._in_flight
        try:
            response = super().dispatch(request)
        finally:
            with self._limiter_lock:
                self._in_flight -= 1
        if response is not None:
            response.headers.setdefault("Request-Id", self._request_id())
            response.headers.setdefault("Stripe-Version", request.headers.get("stripe-version") or API_VERSION)
            response.headers.setdefault("Cache-Control", "no-cache, no-store")
        return response

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        try:
            self._authenticate(request)
        except StripeApiError as exc:
            return exc.response()
        message = f"Unrecognized request URL ({request.method}: {request.path})."
        if method_not_allowed:
            message += " This stand-in serves Stripe's read (GET) endpoints only."
        message += " Please see https://stripe.com/docs or we can help at https://support.stripe.com/."
        return StripeApiError(404, message).response()

    def internal_error(self, exc: Exception) -> Response:
        return StripeApiError(
            500, f"An unknown error occurred ({type(exc).__name__}: {exc})", type="api_error", should_retry=None
        ).response()

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        key = None
        if header.lower().startswith("bearer "):
            key = header[7:].strip()
        elif header.lower().startswith("basic "):
            try:
                key = base64.b64decode(header[6:].strip()).decode("utf-8").split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = None
        if not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See "
                "https://stripe.com/docs/api#authentication for details, or we can help at "
                "https://support.stripe.com/.",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )
        if key != self.api_key or not key.startswith(_KEY_PREFIXES):
            raise StripeApiError(
                401,
                f"Invalid API Key provided: {mask_key(key)}",
                headers={"WWW-Authenticate": 'Basic realm="Stripe"'},
            )

    def _rate_limit(self, endpoint: str) -> None:
        limits = self.rate_limits
        if limits is None:
            return
        reason = None
        with self._limiter_lock:
            now = time.monotonic()
            if limits.concurrency is not None and getattr(self._local, "in_flight", 0) > limits.concurrency:
                reason = "global-concurrency"
            glob = self._global_window.setdefault(self.api_key, deque())
            ep = self._endpoint_window.setdefault((self.api_key, endpoint), deque())
            for window in (glob, ep):
                while window and window[0] <= now - 1.0:
                    window.popleft()
            if reason is None and limits.global_per_second is not None and len(glob) >= limits.global_per_second:
                reason = "global-rate"
            if (
                reason is None
                and limits.per_endpoint_per_second is not None
                and len(ep) >= limits.per_endpoint_per_second
            ):
                reason = "endpoint-rate"
            if reason is None:
                glob.append(now)
                ep.append(now)
            else:
                self.rate_limited[reason] = self.rate_limited.get(reason, 0) + 1
        if reason is not None:
            raise StripeApiError(
                429,
                "Request rate limit exceeded. You can learn more about rate limits here "
                "https://stripe.com/docs/rate-limits.",
                code="rate_limit",
                headers={"Stripe-Rate-Limited-Reason": reason},
                should_retry=None,
            )

    def _guard(self, endpoint: str, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def guarded(request: Request) -> Response:
            try:
                self._authenticate(request)
                self._rate_limit(endpoint)
                return handler(request)
            except StripeApiError as exc:
                return exc.response()

        return guarded

    # -- expansion -------------------------------------------------------------------------------
    def _expansions(self, expand: Any, spec: ListSpec, *, in_list: bool) -> list[str]:
        paths = _string_list("expand", expand) if expand is not None else []
        fields = []
        for path in paths:
            name = path
            if in_list:
                if not path.startswith("data."):
                    raise _invalid("expand", f"This property cannot be expanded ({path}).")
                name = path[5:]
            if name not in spec.expandable:
                raise _invalid("expand", f"This property cannot be expanded ({name}).")
            fields.append(name)
        return fields

    def _expand(self, obj: dict[str, Any], fields: list[str], spec: ListSpec) -> dict[str, Any]:
        for name in fields:
            if spec.expandable[name] == "checkout.line_items":
                obj[name] = self.account.checkout_line_items(obj["id"])
                continue
            value = obj.get(name)
            if not isinstance(value, str):
                continue
            resource = spec.expandable[name] or self.account.resource_of(value)
            if resource is None:
                continue
            expanded = self.account.retrieve(resource, value)
            if expanded is not None:
                obj[name] = expanded
        return obj

    # -- handlers --------------------------------------------------------------------------------
    def _retrieve_handler(self, spec: ListSpec) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            params = parse_params(request.query)
            for name in params:
                if name != "expand":
                    raise _unknown_parameter(name)
            fields = self._expansions(params.get("expand"), spec, in_list=False)
            object_id = request.params["id"]
            obj = self.account.retrieve(spec.resource, object_id)
            if obj is None:
                raise StripeApiError(
                    404,
                    f"No such {spec.resource.replace('_', ' ')}: '{object_id}'",
                    code="resource_missing",
                    param="id",
                )
            if not obj.get("deleted"):
                self._expand(obj, fields, spec)
            return Response(200, obj)

        return handle

    def _list_handler(self, path: str, spec: ListSpec) -> Callable[[Request], Response]:
        def handle(request: Request) -> Response:
            params = parse_params(request.query)
            allowed = set(_LIST_COMMON) | set(spec.filters)
            for name in params:
                if name not in allowed:
                    raise _unknown_parameter(name)
            limit = _integer("limit", params["limit"]) if "limit" in params else 10
            if limit < 1:
                raise _invalid(
                    "limit", "This value must be greater than or equal to 1.", code="parameter_invalid_integer"
                )
            if limit > 100:
                raise _invalid(
                    "limit",
                    f"This value must be less than or equal to 100 (it currently is '{limit}').",
                    code="parameter_invalid_integer",
                )
            starting_after = _string("starting_after", params["starting_after"]) if "starting_after" in params else None
            ending_before = _string("ending_before", params["ending_before"]) if "ending_before" in params else None
            if starting_after is not None and ending_before is not None:
                raise StripeApiError(
                    400,
                    "You may only specify one of these parameters: ending_before, starting_after.",
                    code="parameters_exclusive",
                    param="ending_before",
                )
            created = _created(params["created"]) if "created" in params else None
            fields = self._expansions(params.get("expand"), spec, in_list=True)
            index, where = self._filters(spec, params)
            try:
                data, has_more = self.account.list_page(
                    spec.resource,
                    limit=limit,
                    starting_after=starting_after,
                    ending_before=ending_before,
                    created=created,
                    index=index,
                    where=where,
                )
            except UnknownObject as exc:
                raise StripeApiError(
                    404,
                    f"No such {spec.resource.replace('_', ' ')}: '{exc.object_id}'",
                    code="resource_missing",
                    param="starting_after" if starting_after is not None else "ending_before",
                ) from None
            if fields:
                data = [self._expand(obj, fields, spec) for obj in data]
            return Response(200, {"object": "list", "data": data, "has_more": has_more, "url": path})

        return handle

    @staticmethod
    def _payment_filter(value: Any) -> list[Where]:
        """``payment[type]`` (required), ``payment[payment_intent]``, ``payment[payment_record]`` of
        ``GET /v1/invoice_payments``: the invoice payments of one payment."""
        if not isinstance(value, dict):
            raise _invalid("payment", "Invalid object: payment must be a hash of type, payment_intent, payment_record")
        for sub in value:
            if sub not in ("type", "payment_intent", "payment_record"):
                raise _unknown_parameter(f"payment[{sub}]")
        if "type" not in value:
            raise StripeApiError(
                400, "Missing required param: payment[type].", code="parameter_missing", param="payment[type]"
            )
        kind = _enum("payment[type]", value["type"], ("payment_intent", "payment_record"))
        checks: list[Where] = []
        if kind == "payment_record":  # the stand-in's invoices are paid by payment intents only
            checks.append(lambda rec: False)
        if "payment_intent" in value:
            intent = _string("payment[payment_intent]", value["payment_intent"])
            checks.append(lambda rec: rec.get("_pi") == intent)
        if "payment_record" in value:
            _string("payment[payment_record]", value["payment_record"])
            checks.append(lambda rec: False)
        return checks

    def _filters(self, spec: ListSpec, params: dict[str, Any]) -> tuple[tuple[str, Any] | None, Where | None]:
        """The secondary index to walk and the predicate on records for a list's filter parameters."""
        account = self.account
        resource = spec.resource
        index: tuple[str, Any] | None = None
        checks: list[Where] = []

        def field_is(name: str, expected: Any) -> Where:
            return lambda rec: account.field(resource, rec, name) == expected

        for name, value in params.items():
            if name in _LIST_COMMON:
                continue
            if name in SECONDARY_INDEXES.get(resource, ()) and index is None:
                index = (name, _string(name, value))
            elif name == "subscription" and resource == "invoice":  # parent.subscription_details.subscription
                subscription = _string(name, value)
                checks.append(lambda rec, s=subscription: account.invoice_subscription(rec) == s)
            elif name == "payment" and resource == "invoice_payment":
                checks.extend(self._payment_filter(value))
            elif name in ("customer", "charge", "product", "source", "payment_intent", "email", "invoice"):
                checks.append(field_is(name, _string(name, value)))
            elif name == "currency":
                checks.append(field_is("currency", _string(name, value).lower()))
            elif name in ("active", "shippable"):
                checks.append(field_is(name, _boolean(name, value)))
            elif name == "delivery_success":
                _boolean(name, value)  # every recorded event counts as delivered
            elif name == "ids":
                wanted = set(_string_list("ids", value))
                checks.append(lambda rec, wanted=wanted: rec["id"] in wanted)
            elif name == "type" and resource == "price":
                checks.append(field_is("type", _enum("type", value, ("one_time", "recurring"))))
            elif name == "type" and resource == "balance_transaction":
                checks.append(field_is("type", _string("type", value)))
            elif name == "status" and resource == "invoice":
                checks.append(
                    field_is("status", _enum("status", value, ("draft", "open", "paid", "uncollectible", "void")))
                )
            elif name == "status" and resource == "invoice_payment":
                checks.append(field_is("status", _enum("status", value, ("canceled", "open", "paid"))))
            elif name == "status" and resource == "checkout.session":
                checks.append(field_is("status", _enum("status", value, ("open", "complete", "expired"))))
            elif name == "price":
                price = _string("price", value)
                checks.append(lambda rec, price=price: any(item[1] == price for item in rec["_items"]))
            elif name in ("type", "types", "status"):
                continue  # below: events' type filters, subscriptions' status default
            else:  # pragma: no cover - every allowed filter is handled above
                raise _unknown_parameter(name)

        if resource == "subscription":
            status = _enum("status", params["status"], SUBSCRIPTION_FILTER_STATUSES) if "status" in params else None
            if status is None:
                checks.append(lambda rec: account.field(resource, rec, "status") != "canceled")
            elif status == "ended":
                checks.append(lambda rec: account.field(resource, rec, "status") in ("canceled", "incomplete_expired"))
            elif status != "all":
                checks.append(field_is("status", status))
        if resource == "event":
            if "type" in params and "types" in params:
                raise StripeApiError(
                    400,
                    "You may only specify one of these parameters: type, types.",
                    code="parameters_exclusive",
                    param="types",
                )
            if "type" in params:
                pattern = _string("type", params["type"])
                regex = re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")
                checks.append(lambda rec: regex.match(rec["type"]) is not None)
            if "types" in params:
                types = _string_list("types", params["types"])
                if len(types) > MAX_EVENT_TYPES:
                    raise _invalid("types", f"types can contain at most {MAX_EVENT_TYPES} event types.")
                if any("*" in t for t in types):
                    raise _invalid("types", "types does not accept wildcards; use type for a wildcard.")
                wanted_types = frozenset(types)
                checks.append(lambda rec: rec["type"] in wanted_types)

        if not checks:
            return index, None
        if len(checks) == 1:
            return index, checks[0]
        return index, lambda rec: all(check(rec) for check in checks)
