"""An in-memory Stripe account, and a seeded generator of a realistic one.

Objects are shaped exactly like Stripe's official examples (``stripe/fixtures3.json`` in the contracts
folder): every object is a copy of that fixture with realistic values put in. Every mutation records the
event Stripe would emit, with ``data.object`` as the object was at that moment.

Storage is built to scale to about a million charges:

* Each object is kept as a small *record*: only the fields that differ from its (per-account) template,
  plus a few internal ``_fields``. The full Stripe-shaped dict is rendered on read. Records are never
  changed in place (an update stores a new record), so events keep a reference to the record of their
  moment instead of a deep copy, and readers need no copy either.
* Each resource keeps an index of ``(created, seq, id)`` sorted ascending (maintained by appending, sorted
  lazily once after out-of-order inserts), plus secondary indexes for the ``customer=``, ``charge=``,
  ``product=`` style list filters, so a page costs O(log n + page size).

``StripeAccount.customers`` and friends are read-only mappings id -> rendered dict (a fresh copy each
time; changing it changes nothing: use the ``update_*`` methods).
"""

from __future__ import annotations

import bisect
import calendar
import functools
import hashlib
import json
import math
import os
import random
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DAY = 86_400
EVENT_RETENTION = 30 * DAY  # GET /v1/events serves the last 30 days only

try:  # the API version of the SDK the project pins; events carry it
    from stripe._api_version import _ApiVersion

    API_VERSION: str = _ApiVersion.CURRENT
except Exception:  # pragma: no cover - the stand-in works without the SDK
    API_VERSION = "2026-10-28.endive"

ZERO_DECIMAL = frozenset(
    ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])

#: Plausible, fixed exchange rates: value of one major unit in USD.
USD_RATES: dict[str, float] = {
    "usd": 1.0,
    "eur": 1.08,
    "gbp": 1.27,
    "jpy": 0.0067,
    "cad": 0.73,
    "aud": 0.66,
    "nzd": 0.60,
    "chf": 1.13,
    "sek": 0.095,
    "nok": 0.094,
    "dkk": 0.145,
    "pln": 0.25,
    "mxn": 0.055,
    "brl": 0.18,
    "inr": 0.012,
    "sgd": 0.74,
    "hkd": 0.128,
    "krw": 0.00075,
    "clp": 0.00105,
    "vnd": 0.000039,
    "kwd": 3.25,
    "bhd": 2.65,
    "jod": 1.41,
    "omr": 2.6,
    "tnd": 0.32,
}

SUBSCRIPTION_STATUSES = (
    "active",
    "trialing",
    "past_due",
    "canceled",
    "unpaid",
    "incomplete",
    "incomplete_expired",
    "paused",
)
DISPUTE_STATUSES = (
    "warning_needs_response",
    "warning_under_review",
    "warning_closed",
    "needs_response",
    "under_review",
    "won",
    "lost",
)
FAILURE_MESSAGES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
    "lost_card": "Your card was declined.",
    "stolen_card": "Your card was declined.",
}
_DECLINE_REASONS = {
    "card_declined": "generic_decline",
    "insufficient_funds": "insufficient_funds",
    "expired_card": "expired_card",
    "incorrect_cvc": "incorrect_cvc",
    "processing_error": "processing_error",
    "lost_card": "lost_card",
    "stolen_card": "stolen_card",
}

_ALNUM = string.ascii_letters + string.digits
_ID_ALPHABET = bytes((_ALNUM * 5)[:256], "ascii")  # random byte -> alphanumeric character

#: resource (Stripe ``object`` name) -> (id prefix, random characters after it)
ID_FORMATS: dict[str, tuple[str, int]] = {
    "customer": ("cus_", 14),
    "charge": ("ch_", 24),
    "balance_transaction": ("txn_", 24),
    "refund": ("re_", 24),
    "dispute": ("dp_", 24),
    "subscription": ("sub_", 24),
    "subscription_item": ("si_", 14),
    "product": ("prod_", 14),
    "price": ("price_", 24),
    "invoice": ("in_", 24),
    "invoice_payment": ("inpay_", 24),
    "checkout.session": ("cs_test_a1", 24),
    "event": ("evt_", 24),
    "payment_intent": ("pi_", 24),
    "payment_method": ("pm_", 24),
    "line_item": ("il_", 24),
    "invoiceitem": ("ii_", 24),
}
RESOURCES = (
    "customer",
    "charge",
    "balance_transaction",
    "refund",
    "dispute",
    "subscription",
    "product",
    "price",
    "invoice",
    "invoice_payment",
    "checkout.session",
    "event",
)
#: secondary indexes: the list filters that must not scan (``GET /v1/charges?customer=...``)
SECONDARY_INDEXES: dict[str, tuple[str, ...]] = {
    "charge": ("customer",),
    "subscription": ("customer",),
    "invoice": ("customer",),
    "invoice_payment": ("invoice",),
    "refund": ("charge",),
    "dispute": ("charge",),
    "price": ("product",),
    "checkout.session": ("customer",),
    "balance_transaction": ("source",),
}


class UnknownObject(KeyError):
    """An id this account does not hold (or not of the resource asked for)."""

    def __init__(self, resource: str, object_id: str) -> None:
        super().__init__(object_id)
        self.resource = resource
        self.object_id = object_id


# -- money -------------------------------------------------------------------------------------------
def currency_exponent(currency: str) -> int:
    """Digits of the minor unit: 0 for JPY, 3 for KWD, 2 otherwise."""
    currency = currency.lower()
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def exchange_rate(currency: str, settlement_currency: str) -> float:
    """The fixed table rate from ``currency`` to ``settlement_currency`` (major units)."""
    try:
        rate = USD_RATES[currency.lower()] / USD_RATES[settlement_currency.lower()]
    except KeyError as exc:
        raise ValueError(f"no exchange rate for {currency}->{settlement_currency}") from exc
    return float(f"{rate:.6g}")


def convert_amount(amount: int, currency: str, rate: float, settlement_currency: str) -> int:
    """``amount`` (minor units of ``currency``) in minor units of the settlement currency."""
    major = amount / 10 ** currency_exponent(currency)
    return round(major * rate * 10 ** currency_exponent(settlement_currency))


# -- fixtures and templates --------------------------------------------------------------------------
def contracts_dir() -> Path:
    """``$CONTRACTS_DIR``, else ``<repo root>/../shared/contracts`` (as ``sandbox.openapi_contract``)."""
    env = os.environ.get("CONTRACTS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "contracts"


@functools.cache
def fixtures() -> dict[str, Any]:
    """Stripe's official example object of every resource (``stripe/fixtures3.json``), by object name."""
    path = contracts_dir() / "stripe" / "fixtures3.json"
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)["resources"]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Stripe's example objects are not at {path}: set CONTRACTS_DIR to the contracts folder"
        ) from None


_CONTAINERS = (dict, list)


def _clone(value: Any) -> Any:
    """Deep copy of JSON-like data (dicts, lists, scalars), several times faster than ``copy.deepcopy``."""
    if type(value) is dict:
        return {k: (_clone(v) if type(v) in _CONTAINERS else v) for k, v in value.items()}
    if type(value) is list:
        return [(_clone(v) if type(v) in _CONTAINERS else v) for v in value]
    return value


def _set_path(obj: Any, path: str, value: Any) -> None:
    parts = path.split(".")
    for part in parts[:-1]:
        obj = obj[int(part)] if type(obj) is list else obj[part]
    last = parts[-1]
    if type(obj) is list:
        obj[int(last)] = value
    else:
        obj[last] = value


def _overlay(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``patch`` applied: nested dicts merge, only keys ``base`` has (shapes stay faithful)."""
    for key, value in patch.items():
        if key not in base:
            raise KeyError(f"template has no field {key!r}")
        if isinstance(value, dict) and isinstance(base[key], dict) and value:
            _overlay(base[key], value)
        else:
            base[key] = value
    return base


_NULL_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}

# Realistic values over the fixtures' placeholder ones ("obj_123", 1592560163, ...). Keys stay the fixture's.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "customer": {
        "address": None,
        "discount": None,
        "invoice_prefix": None,
        "invoice_settings": {"rendering_options": None},
        "shipping": None,
        "currency": None,
    },
    "charge": {
        "amount_captured": 0,
        "application_fee": None,
        "balance_transaction": None,
        "billing_details": {"name": None},
        "calculated_statement_descriptor": "NORTHWIND GOODS",
        "captured": True,
        "description": None,
        "outcome": {
            "network_status": "approved_by_network",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "payment_method_details": {
            "card": {
                "installments": None,
                "three_d_secure": None,
                "wallet": None,
                "network_token": {"used": False},
            }
        },
        "receipt_url": None,
        "shipping": None,
        "source": None,
        "transfer_data": None,
    },
    "balance_transaction": {"description": None},
    "refund": {"destination_details": {"card": {"type": "refund"}}, "reason": "requested_by_customer"},
    "dispute": {
        "evidence": {"enhanced_evidence": {}},
        "evidence_details": {"enhanced_eligibility": {}},
        "is_charge_refundable": False,
        "payment_method_details": {"card": {"case_type": "chargeback", "network_reason_code": "10.4"}},
        "reason": "fraudulent",
        "status": "needs_response",
        "enhanced_eligibility_types": [],
    },
    "subscription": {
        "automatic_tax": {"liability": None},
        "billing_cycle_anchor_config": None,
        "cancel_at": None,
        "canceled_at": None,
        "ended_at": None,
        "invoice_settings": {"issuer": {"type": "self"}},
        "next_pending_invoice_item_invoice": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_update": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "pause"}},
        "trial_start": None,
        "cancel_at_period_end": False,
        "billing_thresholds": None,
        "managed_payments": {"enabled": False},
        "billing_schedules": [],
    },
    "subscription_item": {"billing_thresholds": None},
    "product": {
        "default_price": None,
        "description": None,
        "package_dimensions": None,
        "type": "service",
    },
    "price": {"custom_unit_amount": None, "transform_quantity": None},
    "event": {"api_version": API_VERSION, "data": {}},
    "invoice": {
        "account_name": "Northwind Goods",
        "amount_overpaid": 0,
        "attempt_count": 1,
        "attempted": True,
        "auto_advance": True,
        "automatic_tax": {"liability": None},
        "billing_reason": "manual",
        "customer_address": None,
        "customer_shipping": None,
        "due_date": None,
        "from_invoice": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "parent": None,
        "payment_settings": {"payment_method_options": None},
        "shipping_cost": None,
        "shipping_details": None,
        "status": "open",
    },
    "invoice_payment": {"is_default": True, "status": "open"},
    "checkout.session": {
        "after_expiration": None,
        "cancel_url": "https://shop.northwind.example/cart",
        "consent_collection": {"payment_method_reuse_agreement": None, "terms_of_service": "none"},
        "currency_conversion": None,
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "collected_information": None,
        "customer_creation": "if_required",
        "customer_details": {"address": dict(_NULL_ADDRESS)},
        "invoice_creation": {"enabled": False, "invoice_data": {"issuer": None}},
        "adaptive_pricing": {"enabled": False},
        "discounts": [],
        "managed_payments": {"enabled": False},
        "payment_method_configuration_details": None,
        "payment_status": "paid",
        "permissions": None,
        "saved_payment_method_options": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "status": "complete",
        "success_url": "https://shop.northwind.example/thanks?session_id={CHECKOUT_SESSION_ID}",
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "url": None,
        "wallet_options": None,
    },
}


@functools.cache
def _base_templates() -> dict[str, dict[str, Any]]:
    fx = fixtures()
    out: dict[str, dict[str, Any]] = {}
    for name in (*RESOURCES, "subscription_item"):
        out[name] = _overlay(_clone(fx[name]), _clone(_DEFAULTS.get(name, {})))
    out["subscription"]["items"]["data"] = []
    out["charge"]["refunds"]["data"] = []
    line = out["invoice"]["lines"]["data"][0]
    line["parent"] = {
        "invoice_item_details": {
            "invoice_item": None,
            "proration": False,
            "proration_details": {"credited_items": None},
            "subscription": None,
        },
        "subscription_item_details": None,
        "type": "invoice_item_details",
    }
    line["pricing"] = {"type": "price_details", "price_details": None, "unit_amount_decimal": None}
    out["plan"] = _clone(fx["subscription_item"]["plan"])
    out["deleted_customer"] = _clone(fx["deleted_customer"])
    out["deleted_product"] = _clone(fx["deleted_product"])
    return out


# -- the sorted index --------------------------------------------------------------------------------
Key = tuple[int, int, str]  # (created, insertion sequence, id): unique, so the order is total


class SortedKeys:
    """``(created, seq, id)`` keys in ascending order; appends are O(1), an out-of-order one sorts later."""

    __slots__ = ("_dirty", "keys")

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self._dirty = False

    def add(self, key: Key) -> None:
        if self.keys and key < self.keys[-1]:
            self._dirty = True
        self.keys.append(key)

    def sorted(self) -> list[Key]:
        if self._dirty:
            self.keys.sort()
            self._dirty = False
        return self.keys

    def remove(self, key: Key) -> None:
        keys = self.sorted()
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i]

    def __len__(self) -> int:
        return len(self.keys)


class ResourceView(Mapping[str, dict[str, Any]]):
    """Read-only ``id -> object`` mapping of one resource; each read renders a fresh dict."""

    def __init__(self, account: StripeAccount, resource: str) -> None:
        self._account = account
        self._resource = resource

    def __getitem__(self, object_id: str) -> dict[str, Any]:
        with self._account.lock:
            rec = self._account._records[self._resource][object_id]
            return self._account.render(self._resource, rec)

    def __iter__(self) -> Iterator[str]:
        with self._account.lock:
            return iter(list(self._account._records[self._resource]))

    def __len__(self) -> int:
        return len(self._account._records[self._resource])

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._account._records[self._resource]

    def record(self, object_id: str) -> dict[str, Any]:
        """The stored record (sparse, internal; do not modify)."""
        return self._account._records[self._resource][object_id]

    def __repr__(self) -> str:
        return f"<{self._resource} x{len(self)}>"


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: StripeAccount, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            return method(self, *args, **kwargs)

    return wrapper


# -- periods -----------------------------------------------------------------------------------------
def add_months(ts: int, months: int) -> int:
    d = datetime.fromtimestamp(ts, UTC)
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    day = min(d.day, calendar.monthrange(year, month)[1])
    return int(d.replace(year=year, month=month, day=day).timestamp())


def step_interval(anchor: int, interval: str, count: int, n: int) -> int:
    """``anchor`` moved by ``n`` billing intervals (months counted from the anchor: no day drift)."""
    if interval == "month":
        return add_months(anchor, n * count)
    if interval == "year":
        return add_months(anchor, 12 * n * count)
    if interval == "week":
        return anchor + 7 * DAY * n * count
    return anchor + DAY * n * count


_APPROX = {"day": DAY, "week": 7 * DAY, "month": 30.436875 * DAY, "year": 365.2425 * DAY}


def period_containing(anchor: int, interval: str, count: int, ref: int) -> tuple[int, int]:
    if ref < anchor:
        return anchor, step_interval(anchor, interval, count, 1)
    n = int((ref - anchor) / (_APPROX[interval] * count))
    while step_interval(anchor, interval, count, n) > ref:
        n -= 1
    while step_interval(anchor, interval, count, n + 1) <= ref:
        n += 1
    return step_interval(anchor, interval, count, n), step_interval(anchor, interval, count, n + 1)


_CARD_BRANDS = (("visa", 0.52), ("mastercard", 0.3), ("amex", 0.12), ("discover", 0.04), ("jcb", 0.02))


class StripeAccount:
    """One Stripe account in memory. Thread-safe: every read and mutation holds :attr:`lock`."""

    def __init__(
        self,
        now: int | None = None,
        settlement_currency: str = "usd",
        livemode: bool = False,
        *,
        seed: int | str = 0,
    ) -> None:
        self._now = int(time.time()) if now is None else int(now)
        self._clock_base: float | None = None  # set by start_clock(): the clock then runs in real time
        self.settlement_currency = settlement_currency.lower()
        self.livemode = livemode
        self.lock = threading.RLock()
        self._rng = random.Random(f"stripe-account:{seed}")
        self._seq = 0
        self._records: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self._keys: dict[str, dict[str, Key]] = {r: {} for r in RESOURCES}
        self._index: dict[str, SortedKeys] = {r: SortedKeys() for r in RESOURCES}
        self._secondary: dict[str, dict[str, dict[Any, SortedKeys]]] = {
            r: {f: {} for f in SECONDARY_INDEXES.get(r, ())} for r in RESOURCES
        }
        self._deleted: dict[str, tuple[str, dict[str, Any]]] = {}
        self.deleted_ids: set[str] = set()
        self._cards: dict[str | None, tuple[Any, ...]] = {}
        self._invoice_numbers: dict[str, int] = {}
        #: events of mutations before this time are not recorded (the generator's memory saver)
        self.record_events_since: int | None = None
        self._raw_returns = False
        self._templates = self._make_templates()

        self.customers = ResourceView(self, "customer")
        self.charges = ResourceView(self, "charge")
        self.balance_transactions = ResourceView(self, "balance_transaction")
        self.refunds = ResourceView(self, "refund")
        self.disputes = ResourceView(self, "dispute")
        self.subscriptions = ResourceView(self, "subscription")
        self.products = ResourceView(self, "product")
        self.prices = ResourceView(self, "price")
        self.invoices = ResourceView(self, "invoice")
        self.invoice_payments = ResourceView(self, "invoice_payment")
        self.checkout_sessions = ResourceView(self, "checkout.session")
        self.events = ResourceView(self, "event")

    def _make_templates(self) -> dict[str, dict[str, Any]]:
        templates = _clone(_base_templates())
        for _name, tpl in templates.items():
            if "livemode" in tpl:
                tpl["livemode"] = self.livemode
        templates["balance_transaction"]["currency"] = self.settlement_currency
        return templates

    # -- clock -----------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """The account's clock (unix seconds): frozen, unless :meth:`start_clock` set it running."""
        if self._clock_base is None:
            return self._now
        return self._now + int(time.monotonic() - self._clock_base)

    @now.setter
    def now(self, value: int) -> None:
        self._now = int(value)
        if self._clock_base is not None:
            self._clock_base = time.monotonic()

    def start_clock(self) -> None:
        """Let the clock run from ``now`` in real time, as a live account's does (events get current times)."""
        self._now = self.now
        self._clock_base = time.monotonic()

    @_locked
    def advance(self, seconds: int | float) -> int:
        """Move the account clock forward; returns the new ``now``."""
        self.now += int(seconds)
        return self.now

    # -- ids and storage -------------------------------------------------------------------------
    def new_id(self, kind: str) -> str:
        prefix, length = ID_FORMATS[kind]
        if kind == "checkout.session" and self.livemode:
            prefix = "cs_live_a1"
        store = self._records.get(kind)
        while True:
            new = prefix + self._rng.randbytes(length).translate(_ID_ALPHABET).decode("ascii")
            if store is None or (new not in store and new not in self._deleted):
                return new

    def _insert(self, resource: str, rec: dict[str, Any]) -> None:
        self._seq += 1
        key = (rec["created"], self._seq, rec["id"])
        self._records[resource][rec["id"]] = rec
        self._keys[resource][rec["id"]] = key
        self._index[resource].add(key)
        for field, by_value in self._secondary[resource].items():
            value = rec.get(field)
            if value is not None:
                sk = by_value.get(value)
                if sk is None:
                    sk = by_value[value] = SortedKeys()
                sk.add(key)

    def _remove(self, resource: str, object_id: str) -> dict[str, Any]:
        rec = self._records[resource].pop(object_id)
        key = self._keys[resource][object_id]
        self._index[resource].remove(key)
        for field, by_value in self._secondary[resource].items():
            value = rec.get(field)
            if value is not None and value in by_value:
                by_value[value].remove(key)
        self._deleted[object_id] = (resource, rec)
        self.deleted_ids.add(object_id)
        return rec

    def _record(self, resource: str, object_id: str) -> dict[str, Any]:
        try:
            return self._records[resource][object_id]
        except KeyError:
            raise UnknownObject(resource, object_id) from None

    def field(self, resource: str, rec: dict[str, Any], name: str) -> Any:
        """A top-level field of a record (falling back to the template's value)."""
        if name in rec:
            return rec[name]
        return self._templates[resource].get(name)

    def _update(
        self,
        resource: str,
        object_id: str,
        changes: dict[str, Any],
        internal: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Store a new record with ``changes`` (top-level fields of the object) and ``internal`` (``_x``
        fields); returns (new record, ``previous_attributes``). The old record stays as it was."""
        old = self._record(resource, object_id)
        template = self._templates[resource]
        previous: dict[str, Any] = {}
        for name, value in changes.items():
            if name in ("id", "object", "created") or name not in template:
                raise ValueError(f"{resource} has no updatable field {name!r}")
            before = self.field(resource, old, name)
            if before == value:
                continue
            if name == "metadata" and isinstance(before, dict) and isinstance(value, dict):
                # as Stripe: only the keys that changed, null for the ones that did not exist
                changed = sorted(k for k in set(before) | set(value) if before.get(k) != value.get(k))
                previous[name] = {k: before.get(k) for k in changed}
            else:
                previous[name] = _clone(before)
        new = {**old, **{k: (_clone(v) if type(v) in _CONTAINERS else v) for k, v in changes.items()}}
        if internal:
            new.update(internal)
        self._records[resource][object_id] = new
        return new, previous

    def _emit(
        self,
        event_type: str,
        resource: str,
        rec: dict[str, Any],
        created: int,
        previous_attributes: dict[str, Any] | None = None,
        *,
        event_id: str | None = None,
    ) -> None:
        """Record an event; ``event_id`` given (a derived one) draws no random id."""
        if self.record_events_since is not None and created < self.record_events_since:
            return
        event_id = event_id or self.new_id("event")
        event = {"id": event_id, "created": created, "type": event_type, "_res": resource, "_obj": rec}
        if previous_attributes:
            event["_prev"] = previous_attributes
        self._insert("event", event)

    # -- rendering -------------------------------------------------------------------------------
    def render(self, resource: str, rec: dict[str, Any], at: int | None = None) -> dict[str, Any]:
        """The full Stripe-shaped object of a record, as of ``at`` (default: the account clock)."""
        obj = _clone(self._templates[resource])
        for key, value in rec.items():
            if key[0] == "_":
                continue
            if type(value) in _CONTAINERS:
                value = _clone(value)
            if "." in key:
                _set_path(obj, key, value)
            else:
                obj[key] = value
        hook = self._hooks.get(resource)
        if hook is not None:
            hook(self, obj, rec, self.now if at is None else at)
        return obj

    def _render_charge(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        card = rec.get("_card")
        amount = obj["amount"]
        details = obj["payment_method_details"]["card"]
        if card is not None:
            brand, last4, exp_month, exp_year, country, funding, fingerprint = card
            details.update(
                brand=brand,
                last4=last4,
                exp_month=exp_month,
                exp_year=exp_year,
                country=country,
                funding=funding,
                fingerprint=fingerprint,
                network=brand,
            )
        details["amount_authorized"] = amount
        details["overcapture"]["maximum_amount_capturable"] = amount
        obj["receipt_url"] = f"https://pay.stripe.com/receipts/payment/CAcQARoXChVhY2N0XzFOb3J0aHdpbmQ{obj['id'][3:]}"
        obj["refunds"]["url"] = f"/v1/charges/{obj['id']}/refunds"
        refunds = rec.get("_refunds")
        if refunds:
            store = self._records["refund"]
            obj["refunds"]["data"] = [self.render("refund", store[r], at) for r in reversed(refunds)]
        if obj["status"] == "failed":
            code = obj["failure_code"] or "card_declined"
            details["checks"]["cvc_check"] = "fail" if code == "incorrect_cvc" else "pass"
            obj["outcome"].update(
                advice_code="try_again_later" if code == "processing_error" else "do_not_try_again",
                network_decline_code="05" if code == "card_declined" else None,
                network_status="declined_by_network",
                reason=_DECLINE_REASONS.get(code, "generic_decline"),
                seller_message="The bank did not return any further details with this decline.",
                type="issuer_declined",
            )

    def _render_balance_transaction(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        obj["status"] = "available" if obj["available_on"] <= at else "pending"
        fee = obj["fee"]
        obj["fee_details"] = (
            [
                {
                    "amount": fee,
                    "application": None,
                    "currency": obj["currency"],
                    "description": "Stripe processing fees",
                    "type": "stripe_fee",
                }
            ]
            if fee
            else []
        )

    def _render_dispute(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        txns = self._records["balance_transaction"]
        obj["balance_transactions"] = [
            self.render("balance_transaction", txns[t], at) for t in rec.get("_txns", ()) if t in txns
        ]
        due = obj["evidence_details"]["due_by"]
        obj["evidence_details"]["past_due"] = obj["status"] in ("needs_response", "warning_needs_response") and (
            due is not None and due < at
        )

    def _render_subscription(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        items = []
        status = obj["status"]
        ended = obj["ended_at"]
        ref = min(at, ended) if ended else at
        for item_id, price_id, quantity, created in rec["_items"]:
            price_rec = self._records["price"].get(price_id) or self._deleted[price_id][1]
            price = self.render("price", price_rec, at)
            item = _clone(self._templates["subscription_item"])
            recurring = price["recurring"] or {"interval": "month", "interval_count": 1}
            if status == "trialing" and obj["trial_end"]:
                start, end = obj["trial_start"] or obj["start_date"], obj["trial_end"]
            else:
                start, end = period_containing(
                    obj["billing_cycle_anchor"], recurring["interval"], recurring["interval_count"], ref
                )
            item.update(
                created=created,
                id=item_id,
                price=price,
                plan=self._plan_of(price),
                quantity=quantity,
                subscription=obj["id"],
                current_period_start=start,
                current_period_end=end,
            )
            items.append(item)
        obj["items"]["data"] = items
        obj["items"]["url"] = f"/v1/subscription_items?subscription={obj['id']}"

    def _plan_of(self, price: dict[str, Any]) -> dict[str, Any]:
        plan = _clone(self._templates["plan"])
        recurring = price["recurring"] or {}
        plan.update(
            active=price["active"],
            amount=price["unit_amount"],
            amount_decimal=price["unit_amount_decimal"],
            billing_scheme=price["billing_scheme"],
            created=price["created"],
            currency=price["currency"],
            id=price["id"],
            interval=recurring.get("interval"),
            interval_count=recurring.get("interval_count"),
            livemode=price["livemode"],
            metadata=_clone(price["metadata"]),
            meter=None,
            nickname=price["nickname"],
            product=price["product"],
            tiers_mode=None,
            transform_usage=None,
            trial_period_days=recurring.get("trial_period_days"),
            usage_type=recurring.get("usage_type", "licensed"),
        )
        return plan

    def _render_event(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        data: dict[str, Any] = {"object": self.render(rec["_res"], rec["_obj"], rec["created"])}
        if "_prev" in rec:
            data["previous_attributes"] = _clone(rec["_prev"])
        obj["data"] = data
        obj["request"] = {"id": None, "idempotency_key": None}

    def _render_invoice(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        """A subscription invoice paid by a charge (:meth:`charge_subscription`): its record is compact (a
        ``_paid`` tuple), everything else is derived here. Other invoices are stored whole."""
        paid = rec.get("_paid")
        if paid is None:
            return
        subscription_id, number, reason, lines = paid
        invoice_id, created, status = obj["id"], obj["created"], obj["status"]
        final = status != "draft"
        settled = status == "paid"
        total = sum(unit * quantity for _, _, quantity, unit in lines)
        customer_id = obj["customer"]
        customer = self._records["customer"].get(customer_id) or self._deleted.get(customer_id, ("", {}))[1]
        obj.update(
            amount_due=total,
            amount_paid=total if settled else 0,
            amount_remaining=0 if settled else total,
            attempt_count=1 if settled else 0,
            attempted=settled,
            auto_advance=not settled,
            billing_reason=reason,
            customer_email=customer.get("email"),
            customer_name=customer.get("name"),
            effective_at=created if final else None,
            next_payment_attempt=None,
            number=number if final else None,
            period_start=created,
            period_end=created,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            webhooks_delivered_at=created if final else None,
            hosted_invoice_url=f"https://invoice.stripe.com/i/acct_1Northwind/{invoice_id}" if final else None,
            invoice_pdf=f"https://pay.stripe.com/invoice/acct_1Northwind/{invoice_id}/pdf" if final else None,
            status_transitions={
                "finalized_at": created if final else None,
                "marked_uncollectible_at": None,
                "paid_at": created if settled else None,
                "voided_at": None,
            },
            parent={
                "quote_details": None,
                "subscription_details": {"metadata": None, "subscription": subscription_id},
                "type": "subscription_details",
            },
        )
        template = self._templates["invoice"]["lines"]["data"][0]
        data = []
        for i, (item_id, price_id, quantity, unit) in enumerate(lines):
            price = self._records["price"].get(price_id) or self._deleted[price_id][1]
            product_id = price["product"]
            product = self._records["product"].get(product_id) or self._deleted.get(product_id, ("", {}))[1]
            recurring = self.field("price", price, "recurring") or {"interval": "month", "interval_count": 1}
            end = step_interval(created, recurring["interval"], recurring.get("interval_count") or 1, 1)
            line = _clone(template)
            line.update(
                id=derived_id("line_item", invoice_id, f"line{i}"),
                amount=unit * quantity,
                currency=obj["currency"],
                description=f"{quantity} \u00d7 {product.get('name')} (at {unit} / {recurring['interval']})",
                discount_amounts=[],
                discounts=[],
                invoice=invoice_id,
                metadata={},
                period={"end": end, "start": created},
                pretax_credit_amounts=[],
                quantity=quantity,
                subscription=subscription_id,
                subtotal=unit * quantity,
                taxes=[],
                parent={
                    "invoice_item_details": None,
                    "subscription_item_details": {
                        "invoice_item": None,
                        "proration": False,
                        "proration_details": {"credited_items": None},
                        "subscription": subscription_id,
                        "subscription_item": item_id,
                    },
                    "type": "subscription_item_details",
                },
                pricing={
                    "price_details": {"price": price_id, "product": product_id},
                    "type": "price_details",
                    "unit_amount_decimal": str(unit),
                },
            )
            data.append(line)
        obj["lines"] = {"data": data, "has_more": False, "object": "list", "url": f"/v1/invoices/{invoice_id}/lines"}

    def _render_invoice_payment(self, obj: dict[str, Any], rec: dict[str, Any], at: int) -> None:
        paid = obj["status"] == "paid"
        amount = rec["_amount"]
        obj["amount_requested"] = amount
        obj["amount_paid"] = amount if paid else None
        obj["payment"] = {
            "charge": None,
            "payment_intent": rec["_pi"],
            "payment_record": None,
            "type": "payment_intent",
        }
        obj["status_transitions"] = {"canceled_at": None, "paid_at": obj["created"] if paid else None}

    _hooks: dict[str, Callable[..., None]] = {
        "charge": _render_charge,
        "balance_transaction": _render_balance_transaction,
        "dispute": _render_dispute,
        "subscription": _render_subscription,
        "invoice": _render_invoice,
        "invoice_payment": _render_invoice_payment,
        "event": _render_event,
    }

    def _out(self, resource: str, rec: dict[str, Any]) -> dict[str, Any]:
        """What a mutation returns: the rendered object (the generator takes the bare record: faster)."""
        return rec if self._raw_returns else self.render(resource, rec)

    # -- reads (used by the HTTP stand-in) -------------------------------------------------------
    @_locked
    def retrieve(self, resource: str, object_id: str) -> dict[str, Any] | None:
        """The object, the ``deleted: true`` placeholder for a deleted customer/product, or None."""
        rec = self._records.get(resource, {}).get(object_id)
        if rec is not None:
            if resource == "event" and rec["created"] < self.now - EVENT_RETENTION:
                return None
            return self.render(resource, rec)
        deleted = self._deleted.get(object_id)
        if deleted is not None and deleted[0] == resource:
            placeholder = f"deleted_{resource}"
            if placeholder in self._templates:
                return {**_clone(self._templates[placeholder]), "id": object_id}
        return None

    def resource_of(self, object_id: str) -> str | None:
        """The resource an id belongs to (live or deleted), from the id's prefix and the stores."""
        for resource in RESOURCES:
            if object_id in self._records[resource]:
                return resource
        deleted = self._deleted.get(object_id)
        return deleted[0] if deleted else None

    @_locked
    def list_page(
        self,
        resource: str,
        *,
        limit: int = 10,
        starting_after: str | None = None,
        ending_before: str | None = None,
        created: dict[str, int] | None = None,
        index: tuple[str, Any] | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
        render: bool = True,
    ) -> tuple[list[dict[str, Any]], bool]:
        """One page of a list, newest first (``created`` desc, then insertion order desc).

        ``created``: ``{"gt"|"gte"|"lt"|"lte"|"eq": ts}``; ``index``: ``(field, value)`` of a secondary
        index; ``where``: a predicate on records. Raises :class:`UnknownObject` for an unknown cursor.
        Events older than :data:`EVENT_RETENTION` are never listed.
        """
        if starting_after is not None and ending_before is not None:
            raise ValueError("starting_after and ending_before are mutually exclusive")
        if index is not None:
            field, value = index
            sk = self._secondary[resource][field].get(value)
            keys = sk.sorted() if sk is not None else []
        else:
            keys = self._index[resource].sorted()
        lo, hi = 0, len(keys)
        bounds = dict(created or {})
        if resource == "event":
            floor = self.now - EVENT_RETENTION
            bounds["gte"] = max(bounds.get("gte", floor), floor)
        for op, ts in bounds.items():
            if op == "gt":
                lo = max(lo, bisect.bisect_left(keys, (ts + 1,)))
            elif op == "gte":
                lo = max(lo, bisect.bisect_left(keys, (ts,)))
            elif op == "lt":
                hi = min(hi, bisect.bisect_left(keys, (ts,)))
            elif op == "lte":
                hi = min(hi, bisect.bisect_left(keys, (ts + 1,)))
            elif op == "eq":
                lo = max(lo, bisect.bisect_left(keys, (ts,)))
                hi = min(hi, bisect.bisect_left(keys, (ts + 1,)))
            else:
                raise ValueError(f"unknown created operator {op!r}")
        if starting_after is not None:
            hi = min(hi, bisect.bisect_left(keys, self._cursor_key(resource, starting_after)))
        if ending_before is not None:
            lo = max(lo, bisect.bisect_right(keys, self._cursor_key(resource, ending_before)))
        records = self._records[resource]
        found: list[dict[str, Any]] = []
        if ending_before is not None:  # the page just newer than the cursor, still returned newest first
            i = lo
            while i < hi and len(found) <= limit:
                rec = records.get(keys[i][2])
                if rec is not None and (where is None or where(rec)):
                    found.append(rec)
                i += 1
            has_more = len(found) > limit
            found = found[:limit]
            found.reverse()
        else:
            i = hi - 1
            while i >= lo and len(found) <= limit:
                rec = records.get(keys[i][2])
                if rec is not None and (where is None or where(rec)):
                    found.append(rec)
                i -= 1
            has_more = len(found) > limit
            found = found[:limit]
        if not render:
            return found, has_more
        return [self.render(resource, rec) for rec in found], has_more

    @_locked
    def sort_indexes(self) -> None:
        """Sort every index now (else the first list call after out-of-order inserts pays for it)."""
        for sk in self._index.values():
            sk.sorted()
        for by_field in self._secondary.values():
            for by_value in by_field.values():
                for sk in by_value.values():
                    sk.sorted()

    def _cursor_key(self, resource: str, object_id: str) -> Key:
        key = self._keys[resource].get(object_id)
        if key is None:
            raise UnknownObject(resource, object_id)
        return key

    def recent_events(self, types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Every event of the last 30 days, newest first (optionally of the given exact types)."""
        where = None if types is None else (lambda rec: rec["type"] in types)
        with self.lock:
            total = len(self._index["event"])
            return self.list_page("event", limit=max(total, 1), where=where)[0]

    # -- customers -------------------------------------------------------------------------------
    @_locked
    def add_customer(
        self,
        email: str | None = None,
        name: str | None = None,
        metadata: dict[str, str] | None = None,
        created: int | None = None,
        currency: str | None = None,
        *,
        phone: str | None = None,
        address: dict[str, Any] | None = None,
        description: str | None = None,
        preferred_locales: list[str] | None = None,
    ) -> dict[str, Any]:
        created = self.now if created is None else int(created)
        object_id = self.new_id("customer")
        rec: dict[str, Any] = {
            "id": object_id,
            "created": created,
            "email": email,
            "name": name,
            "invoice_prefix": "".join(self._rng.choices("0123456789ABCDEF", k=8)),
        }
        if metadata:
            rec["metadata"] = {str(k): str(v) for k, v in metadata.items()}
        if currency:
            rec["currency"] = currency.lower()
        if phone:
            rec["phone"] = phone
        if address:
            rec["address"] = {**_NULL_ADDRESS, **address}
        if description:
            rec["description"] = description
        if preferred_locales:
            rec["preferred_locales"] = list(preferred_locales)
        self._insert("customer", rec)
        self._emit("customer.created", "customer", rec, created)
        return self._out("customer", rec)

    @_locked
    def update_customer(self, customer_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec, previous = self._update("customer", customer_id, fields)
        self._emit("customer.updated", "customer", rec, at, previous)
        return self._out("customer", rec)

    @_locked
    def delete_customer(self, customer_id: str, at: int | None = None) -> dict[str, Any]:
        """Delete a customer: its live subscriptions are canceled first, as Stripe does."""
        at = self.now if at is None else int(at)
        self._record("customer", customer_id)
        sk = self._secondary["subscription"]["customer"].get(customer_id)
        for _, _, sub_id in list(sk.sorted()) if sk else ():
            sub = self._records["subscription"].get(sub_id)
            if sub is not None and self.field("subscription", sub, "status") not in ("canceled", "incomplete_expired"):
                self.cancel_subscription(sub_id, at=at)
        rec = self._remove("customer", customer_id)
        self._emit("customer.deleted", "customer", rec, at)
        return {**_clone(self._templates["deleted_customer"]), "id": customer_id}

    # -- catalogue -------------------------------------------------------------------------------
    @_locked
    def add_product(
        self,
        name: str,
        active: bool = True,
        created: int | None = None,
        *,
        description: str | None = None,
        metadata: dict[str, str] | None = None,
        type: str = "service",
    ) -> dict[str, Any]:
        created = self.now if created is None else int(created)
        rec: dict[str, Any] = {
            "id": self.new_id("product"),
            "created": created,
            "updated": created,
            "name": name,
            "active": active,
            "description": description,
            "type": type,
        }
        if metadata:
            rec["metadata"] = dict(metadata)
        self._insert("product", rec)
        self._emit("product.created", "product", rec, created)
        return self._out("product", rec)

    @_locked
    def update_product(self, product_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec, previous = self._update("product", product_id, {**fields, "updated": at})
        previous.pop("updated", None)
        self._emit("product.updated", "product", rec, at, previous)
        return self._out("product", rec)

    @_locked
    def delete_product(self, product_id: str, at: int | None = None) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec = self._remove("product", product_id)
        self._emit("product.deleted", "product", rec, at)
        return {**_clone(self._templates["deleted_product"]), "id": product_id}

    @_locked
    def add_price(
        self,
        product_id: str,
        unit_amount: int,
        currency: str,
        recurring: dict[str, Any] | None = None,
        active: bool = True,
        created: int | None = None,
        *,
        nickname: str | None = None,
        lookup_key: str | None = None,
        make_default: bool = False,
    ) -> dict[str, Any]:
        created = self.now if created is None else int(created)
        self._record("product", product_id)
        rec: dict[str, Any] = {
            "id": self.new_id("price"),
            "created": created,
            "product": product_id,
            "unit_amount": int(unit_amount),
            "unit_amount_decimal": str(int(unit_amount)),
            "currency": currency.lower(),
            "active": active,
            "nickname": nickname,
            "lookup_key": lookup_key,
        }
        if recurring:
            rec["type"] = "recurring"
            rec["recurring"] = {
                "interval": recurring.get("interval", "month"),
                "interval_count": int(recurring.get("interval_count", 1)),
                "meter": None,
                "usage_type": recurring.get("usage_type", "licensed"),
                "trial_period_days": recurring.get("trial_period_days"),
            }
        else:
            rec["type"] = "one_time"
            rec["recurring"] = None
        self._insert("price", rec)
        self._emit("price.created", "price", rec, created)
        if make_default:
            self.update_product(product_id, at=created, default_price=rec["id"])
        return self._out("price", rec)

    @_locked
    def update_price(self, price_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec, previous = self._update("price", price_id, fields)
        self._emit("price.updated", "price", rec, at, previous)
        return self._out("price", rec)

    # -- charges ---------------------------------------------------------------------------------
    def _card_for(self, customer_id: str | None, country: str | None = None) -> tuple[Any, ...]:
        card = self._cards.get(customer_id) if customer_id else None
        if card is None:
            rng = self._rng
            brand = rng.choices([b for b, _ in _CARD_BRANDS], [w for _, w in _CARD_BRANDS])[0]
            card = (
                brand,
                f"{rng.randrange(10000):04d}",
                rng.randint(1, 12),
                datetime.fromtimestamp(self.now, UTC).year + rng.randint(1, 5),
                country or "US",
                rng.choices(("credit", "debit", "prepaid"), (0.62, 0.35, 0.03))[0],
                "".join(rng.choices(_ALNUM, k=16)),
                self.new_id("payment_method"),
            )
            if customer_id:
                self._cards[customer_id] = card
        return card

    def _balance_transaction(
        self,
        source: str,
        amount: int,
        currency: str,
        created: int,
        *,
        rate: float | None,
        kind: str,
        fee: int = 0,
        description: str | None = None,
    ) -> str:
        """Record a balance transaction in the settlement currency; returns its id."""
        settle = self.settlement_currency
        same = currency.lower() == settle
        rate = 1.0 if same else (rate if rate is not None else exchange_rate(currency, settle))
        settled = convert_amount(amount, currency, rate, settle) if not same else amount
        category = {"charge": "charge", "refund": "refund", "adjustment": "dispute"}.get(kind, kind)
        rec = {
            "id": self.new_id("balance_transaction"),
            "created": created,
            "amount": settled,
            "available_on": (created // DAY + 2) * DAY,
            "description": description,
            "exchange_rate": None if same else rate,
            "fee": fee,
            "net": settled - fee,
            "reporting_category": category,
            "source": source,
            "type": kind,
        }
        self._insert("balance_transaction", rec)
        return rec["id"]

    def _stripe_fee(self, settled_amount: int, converted: bool) -> int:
        settle = self.settlement_currency
        fixed = 0.30 / USD_RATES.get(settle, 1.0) * 10 ** currency_exponent(settle)
        return round(settled_amount * (0.029 + (0.01 if converted else 0.0)) + fixed)

    def _charge_txn(self, rec: dict[str, Any], created: int, rate: float | None) -> str:
        currency = rec["currency"]
        settle = self.settlement_currency
        same = currency == settle
        rate = 1.0 if same else (rate if rate is not None else exchange_rate(currency, settle))
        settled = rec["amount"] if same else convert_amount(rec["amount"], currency, rate, settle)
        return self._balance_transaction(
            rec["id"],
            rec["amount"],
            currency,
            created,
            rate=rate,
            kind="charge",
            fee=self._stripe_fee(settled, not same),
            description=rec.get("description"),
        )

    @_locked
    def add_charge(
        self,
        customer_id: str | None,
        amount: int,
        currency: str,
        status: str = "succeeded",
        captured: bool = True,
        created: int | None = None,
        exchange_rate: float | None = None,
        failure_code: str | None = None,
        invoice_id: str | None = None,
        description: str | None = None,
        *,
        payment_intent: str | None = None,
        metadata: dict[str, str] | None = None,
        billing_email: str | None = None,
        billing_name: str | None = None,
        receipt_email: str | None = None,
        card_country: str | None = None,
    ) -> dict[str, Any]:
        """A charge (and, when succeeded and captured, its balance transaction in the settlement currency).

        ``exchange_rate``: charge currency -> settlement currency (default: :data:`USD_RATES`).
        ``invoice_id`` is remembered in :attr:`charge_invoices` (``charge.invoice`` is gone from the API).
        """
        if status not in ("succeeded", "failed", "pending"):
            raise ValueError(f"unknown charge status {status!r}")
        if int(amount) <= 0:
            raise ValueError("amount must be a positive integer in the currency's minor unit")
        created = self.now if created is None else int(created)
        currency = currency.lower()
        customer = self._record("customer", customer_id) if customer_id else None
        card = self._card_for(customer_id, card_country)
        email = billing_email if billing_email is not None else (customer or {}).get("email")
        name = billing_name if billing_name is not None else (customer or {}).get("name")
        object_id = self.new_id("charge")
        rec: dict[str, Any] = {
            "id": object_id,
            "created": created,
            "amount": int(amount),
            "currency": currency,
            "customer": customer_id,
            "description": description,
            "payment_intent": payment_intent or self.new_id("payment_intent"),
            "payment_method": card[7],
            "billing_details.email": email,
            "billing_details.name": name,
            "_card": card[:7],
        }
        if receipt_email or (status == "succeeded" and email and "@" in email):
            rec["receipt_email"] = receipt_email or email
        if metadata:
            rec["metadata"] = dict(metadata)
        if status == "failed":
            code = failure_code or "card_declined"
            rec.update(
                status="failed",
                paid=False,
                captured=False,
                failure_code=code,
                failure_message=FAILURE_MESSAGES.get(code, "Your card was declined."),
            )
        elif status == "pending":
            rec.update(status="pending", paid=False, captured=False)
        elif not captured:
            rec["captured"] = False
            rec["_rate"] = exchange_rate
        else:
            rec["amount_captured"] = int(amount)
            rec["balance_transaction"] = self._charge_txn(rec, created, exchange_rate)
        if invoice_id:
            rec["_invoice"] = invoice_id
        self._insert("charge", rec)
        event = {"succeeded": "charge.succeeded", "failed": "charge.failed", "pending": "charge.pending"}[status]
        self._emit(event, "charge", rec, created)
        return self._out("charge", rec)

    @property
    def charge_invoices(self) -> dict[str, str]:
        """charge id -> invoice id, for charges added with ``invoice_id``."""
        with self.lock:
            return {cid: rec["_invoice"] for cid, rec in self._records["charge"].items() if "_invoice" in rec}

    @_locked
    def capture_charge(self, charge_id: str, at: int | None = None) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        old = self._record("charge", charge_id)
        if self.field("charge", old, "captured") or self.field("charge", old, "status") != "succeeded":
            raise ValueError(f"charge {charge_id} is not an uncaptured authorization")
        txn = self._charge_txn(old, at, old.get("_rate"))
        rec, previous = self._update(
            "charge", charge_id, {"captured": True, "amount_captured": old["amount"], "balance_transaction": txn}
        )
        self._emit("charge.captured", "charge", rec, at, previous)
        return self._out("charge", rec)

    @_locked
    def update_charge(self, charge_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec, previous = self._update("charge", charge_id, fields)
        self._emit("charge.updated", "charge", rec, at, previous)
        return self._out("charge", rec)

    @_locked
    def refund_charge(
        self,
        charge_id: str,
        amount: int | None = None,
        created: int | None = None,
        *,
        reason: str | None = "requested_by_customer",
    ) -> dict[str, Any]:
        """Refund all of a charge's remaining amount, or ``amount`` of it. Returns the refund."""
        created = self.now if created is None else int(created)
        charge = self._record("charge", charge_id)
        if self.field("charge", charge, "status") != "succeeded" or not self.field("charge", charge, "captured"):
            raise ValueError(f"charge {charge_id} has nothing captured to refund")
        refunded = self.field("charge", charge, "amount_refunded")
        remaining = charge["amount_captured"] - refunded
        amount = remaining if amount is None else int(amount)
        if not 0 < amount <= remaining:
            raise ValueError(f"refund of {amount} exceeds the {remaining} left on {charge_id}")
        currency = charge["currency"]
        txn_rate = None
        if charge.get("balance_transaction"):
            txn_rate = self._records["balance_transaction"][charge["balance_transaction"]]["exchange_rate"]
        refund_id = self.new_id("refund")
        txn = self._balance_transaction(refund_id, amount, currency, created, rate=txn_rate, kind="refund")
        txn_rec = self._records["balance_transaction"][txn]
        self._records["balance_transaction"][txn] = {**txn_rec, "amount": -txn_rec["amount"], "net": -txn_rec["net"]}
        refund = {
            "id": refund_id,
            "created": created,
            "amount": amount,
            "balance_transaction": txn,
            "charge": charge_id,
            "currency": currency,
            "customer": charge.get("customer"),
            "payment_intent": charge.get("payment_intent"),
            "payment_method": charge.get("payment_method"),
            "reason": reason,
        }
        self._insert("refund", refund)
        new_total = refunded + amount
        rec, previous = self._update(
            "charge",
            charge_id,
            {"amount_refunded": new_total, "refunded": new_total >= charge["amount"]},
            {"_refunds": (*charge.get("_refunds", ()), refund_id)},
        )
        self._emit("charge.refunded", "charge", rec, created, previous)
        self._emit("refund.created", "refund", refund, created)
        return self._out("refund", refund)

    @_locked
    def update_refund(self, refund_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        rec, previous = self._update("refund", refund_id, fields)
        self._emit("charge.refund.updated", "refund", rec, at, previous)
        self._emit("refund.updated", "refund", rec, at, previous)
        return self._out("refund", rec)

    @_locked
    def dispute_charge(
        self,
        charge_id: str,
        status: str = "needs_response",
        created: int | None = None,
        *,
        reason: str = "fraudulent",
        closed_at: int | None = None,
    ) -> dict[str, Any]:
        """Open a dispute on a charge; ``won``/``lost`` also close it (at ``closed_at``)."""
        if status not in DISPUTE_STATUSES:
            raise ValueError(f"unknown dispute status {status!r}")
        created = self.now if created is None else int(created)
        charge = self._record("charge", charge_id)
        if not charge.get("balance_transaction"):
            raise ValueError(f"charge {charge_id} was never captured")
        currency = charge["currency"]
        settle = self.settlement_currency
        rate = self._records["balance_transaction"][charge["balance_transaction"]]["exchange_rate"]
        dispute_fee = round(15.0 / USD_RATES.get(settle, 1.0) * 10 ** currency_exponent(settle))
        dispute_id = self.new_id("dispute")
        withdrawn = self._balance_transaction(
            dispute_id, charge["amount"], currency, created, rate=rate, kind="adjustment", fee=dispute_fee
        )
        txn_rec = self._records["balance_transaction"][withdrawn]
        self._records["balance_transaction"][withdrawn] = {
            **txn_rec,
            "amount": -txn_rec["amount"],
            "net": -txn_rec["amount"] - dispute_fee,
            "description": f"Chargeback withdrawal for {charge_id}",
        }
        brand = charge["_card"][0]
        opening = "warning_needs_response" if status.startswith("warning") else "needs_response"
        if status in ("under_review", "warning_under_review"):
            opening = status
        dispute: dict[str, Any] = {
            "id": dispute_id,
            "created": created,
            "amount": charge["amount"],
            "charge": charge_id,
            "currency": currency,
            "payment_intent": charge.get("payment_intent"),
            "reason": reason,
            "status": opening,
            "evidence_details.due_by": created + 8 * DAY,
            "evidence_details.has_evidence": opening == "under_review",
            "evidence_details.submission_count": 1 if opening == "under_review" else 0,
            "payment_method_details.card.brand": brand,
            "payment_method_details.card.network": brand,
            "_txns": (withdrawn,),
        }
        self._insert("dispute", dispute)
        rec, previous = self._update("charge", charge_id, {"disputed": True})
        self._emit("charge.dispute.created", "dispute", dispute, created)
        self._emit("charge.dispute.funds_withdrawn", "dispute", dispute, created)
        self._emit("charge.updated", "charge", rec, created, previous)
        if status in ("won", "lost", "warning_closed"):
            at = max(created, int(closed_at) if closed_at is not None else created)
            internal: dict[str, Any] = {}
            if status == "won":
                reinstated = self._balance_transaction(
                    dispute_id, charge["amount"], currency, at, rate=rate, kind="adjustment"
                )
                reinstated_rec = self._records["balance_transaction"][reinstated]
                self._records["balance_transaction"][reinstated] = {
                    **reinstated_rec,
                    "reporting_category": "dispute_reversal",
                    "description": f"Chargeback reversal for {charge_id}",
                }
                internal["_txns"] = (withdrawn, reinstated)
            closed, _ = self._update("dispute", dispute_id, {"status": status}, internal)
            if status == "won":
                self._emit("charge.dispute.funds_reinstated", "dispute", closed, at)
            self._emit("charge.dispute.closed", "dispute", closed, at, {"status": opening})
            dispute = closed
        return self._out("dispute", dispute)

    # -- subscriptions ---------------------------------------------------------------------------
    @_locked
    def add_subscription(
        self,
        customer_id: str,
        price_id: str,
        status: str = "active",
        quantity: int = 1,
        created: int | None = None,
        canceled_at: int | None = None,
        ended_at: int | None = None,
        trial_end: int | None = None,
        *,
        trial_start: int | None = None,
        metadata: dict[str, str] | None = None,
        latest_invoice: str | None = None,
    ) -> dict[str, Any]:
        if status not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"unknown subscription status {status!r}")
        created = self.now if created is None else int(created)
        self._record("customer", customer_id)
        price = self._record("price", price_id)
        if price.get("type") != "recurring":
            raise ValueError(f"price {price_id} is not recurring")
        if trial_end is not None and trial_start is None:
            trial_start = created
        object_id = self.new_id("subscription")
        rec: dict[str, Any] = {
            "id": object_id,
            "created": created,
            "customer": customer_id,
            "currency": price["currency"],
            "status": status,
            "start_date": created,
            "billing_cycle_anchor": trial_end if trial_end is not None else created,
            "trial_start": trial_start,
            "trial_end": trial_end,
            "canceled_at": canceled_at,
            "ended_at": ended_at,
            "latest_invoice": latest_invoice,
            "default_payment_method": self._card_for(customer_id)[7],
            "_items": ((self.new_id("subscription_item"), price_id, int(quantity), created),),
        }
        if canceled_at is not None:
            rec["cancellation_details"] = {"comment": None, "feedback": None, "reason": "cancellation_requested"}
        if metadata:
            rec["metadata"] = dict(metadata)
        self._insert("subscription", rec)
        self._emit("customer.subscription.created", "subscription", rec, created)
        return self._out("subscription", rec)

    @_locked
    def update_subscription(self, subscription_id: str, at: int | None = None, **fields: Any) -> dict[str, Any]:
        at = self.now if at is None else int(at)
        if "status" in fields and fields["status"] not in SUBSCRIPTION_STATUSES:
            raise ValueError(f"unknown subscription status {fields['status']!r}")
        rec, previous = self._update("subscription", subscription_id, fields)
        self._emit("customer.subscription.updated", "subscription", rec, at, previous)
        return self._out("subscription", rec)

    @_locked
    def cancel_subscription(
        self, subscription_id: str, at: int | None = None, *, feedback: str | None = None
    ) -> dict[str, Any]:
        """Cancel now: Stripe emits ``customer.subscription.deleted`` for it."""
        at = self.now if at is None else int(at)
        rec, _ = self._update(
            "subscription",
            subscription_id,
            {
                "status": "canceled",
                "canceled_at": at,
                "ended_at": at,
                "cancel_at_period_end": False,
                "cancellation_details": {"comment": None, "feedback": feedback, "reason": "cancellation_requested"},
            },
        )
        self._emit("customer.subscription.deleted", "subscription", rec, at)
        return self._out("subscription", rec)

    # -- invoices and checkout -------------------------------------------------------------------
    @_locked
    def charge_subscription(
        self,
        subscription_id: str,
        created: int | None = None,
        *,
        description: str | None = "Subscription update",
        billing_reason: str = "subscription_cycle",
    ) -> dict[str, Any]:
        """A paid period of a subscription: the charge, the paid invoice it paid (one line per subscription item,
        naming its price, product and quantity) and the InvoicePayment tying the invoice to the charge's payment
        intent (``charge.invoice`` is gone from the API: that object is the link). Returns the charge.

        Only the charge draws random values: the ids of the invoice, its lines, its payment and their events
        derive from the charge's id, so a generated account's other objects are what they were without them.
        """
        created = self.now if created is None else int(created)
        sub = self._record("subscription", subscription_id)
        lines = []
        for item_id, price_id, quantity, _ in sub["_items"]:
            price = self._records["price"].get(price_id) or self._deleted[price_id][1]
            lines.append((item_id, price_id, int(quantity), int(price.get("unit_amount") or 0)))
        total = sum(unit * quantity for _, _, quantity, unit in lines)
        charge = self.add_charge(sub["customer"], total, sub["currency"], created=created, description=description)
        self._paid_invoice(charge["id"], charge["payment_intent"], sub, tuple(lines), billing_reason, created)
        return charge

    def _paid_invoice(
        self,
        charge_id: str,
        payment_intent: str,
        sub: dict[str, Any],
        lines: tuple[tuple[str, str, int, int], ...],
        billing_reason: str,
        created: int,
    ) -> None:
        """The invoice a charge paid and its InvoicePayment, with Stripe's events, all of derived ids."""
        customer_id = sub["customer"]
        customer = self._record("customer", customer_id)
        seq = self._invoice_numbers.get(customer_id, 0) + 1
        self._invoice_numbers[customer_id] = seq
        number = f"{self.field('customer', customer, 'invoice_prefix') or 'INV'}-{seq:04d}"
        invoice_id = "in_" + charge_id[3:]
        rec: dict[str, Any] = {
            "id": invoice_id,
            "created": created,
            "customer": customer_id,
            "currency": sub["currency"],
            "status": "paid",
            "_paid": (sub["id"], number, billing_reason, lines),
        }
        self._insert("invoice", rec)
        payment: dict[str, Any] = {
            "id": "inpay_" + charge_id[3:],
            "created": created,
            "currency": sub["currency"],
            "invoice": invoice_id,
            "status": "paid",
            "_pi": payment_intent,
            "_amount": sum(unit * quantity for _, _, quantity, unit in lines),
        }
        self._insert("invoice_payment", payment)
        if self.record_events_since is not None and created < self.record_events_since:
            return
        for event_type, state in (
            ("invoice.created", {**rec, "status": "draft"}),
            ("invoice.finalized", {**rec, "status": "open"}),
            ("invoice.paid", rec),
            ("invoice.payment_succeeded", rec),
        ):
            self._emit(event_type, "invoice", state, created, event_id=derived_id("event", invoice_id, event_type))
        self._emit(
            "invoice_payment.paid",
            "invoice_payment",
            payment,
            created,
            event_id=derived_id("event", payment["id"], "invoice_payment.paid"),
        )

    def invoice_subscription(self, rec: dict[str, Any]) -> str | None:
        """The subscription an invoice record bills (``parent.subscription_details.subscription``)."""
        if "_paid" in rec:
            return rec["_paid"][0]
        parent = rec.get("parent")
        details = parent.get("subscription_details") if isinstance(parent, dict) else None
        return details.get("subscription") if isinstance(details, dict) else None

    @_locked
    def fail_invoice_payment(
        self,
        customer_id: str,
        amount: int,
        currency: str,
        created: int | None = None,
        *,
        subscription_id: str | None = None,
        attempt_count: int = 1,
    ) -> dict[str, Any]:
        """An open invoice whose payment attempt failed (event ``invoice.payment_failed``)."""
        created = self.now if created is None else int(created)
        customer = self._record("customer", customer_id)
        currency = currency.lower()
        object_id = self.new_id("invoice")
        prefix = self.field("customer", customer, "invoice_prefix") or "INV"
        seq = self._invoice_numbers.get(customer_id, 0) + 1
        self._invoice_numbers[customer_id] = seq
        rec: dict[str, Any] = {
            "id": object_id,
            "created": created,
            "customer": customer_id,
            "customer_email": customer.get("email"),
            "customer_name": customer.get("name"),
            "currency": currency,
            "amount_due": int(amount),
            "amount_paid": 0,
            "amount_remaining": int(amount),
            "attempt_count": attempt_count,
            "billing_reason": "subscription_cycle" if subscription_id else "manual",
            "effective_at": created,
            "next_payment_attempt": created + 3 * DAY,
            "number": f"{prefix}-{seq:04d}",
            "period_start": created,
            "period_end": created,
            "subtotal": int(amount),
            "subtotal_excluding_tax": int(amount),
            "total": int(amount),
            "total_excluding_tax": int(amount),
            "webhooks_delivered_at": created,
            "hosted_invoice_url": f"https://invoice.stripe.com/i/acct_1Northwind/{object_id}",
            "invoice_pdf": f"https://pay.stripe.com/invoice/acct_1Northwind/{object_id}/pdf",
            "status_transitions": {
                "finalized_at": created,
                "marked_uncollectible_at": None,
                "paid_at": None,
                "voided_at": None,
            },
            "lines.data.0.amount": int(amount),
            "lines.data.0.currency": currency,
            "lines.data.0.description": "Subscription renewal" if subscription_id else "Order",
            "lines.data.0.id": self.new_id("line_item"),
            "lines.data.0.invoice": object_id,
            "lines.data.0.period": {"end": created, "start": created},
            "lines.data.0.subtotal": int(amount),
            "lines.data.0.subscription": subscription_id,
            "lines.data.0.parent.invoice_item_details.invoice_item": self.new_id("invoiceitem"),
            "lines.data.0.parent.invoice_item_details.subscription": subscription_id,
            "lines.url": f"/v1/invoices/{object_id}/lines",
        }
        if subscription_id:
            rec["parent"] = {
                "quote_details": None,
                "subscription_details": {"metadata": None, "subscription": subscription_id},
                "type": "subscription_details",
            }
        self._insert("invoice", rec)
        self._emit("invoice.payment_failed", "invoice", rec, created)
        return self._out("invoice", rec)

    @_locked
    def complete_checkout(
        self,
        customer_id: str | None,
        amount_total: int,
        currency: str,
        promotions_consent: str | None = None,
        created: int | None = None,
        *,
        email: str | None = None,
        payment_intent: str | None = None,
        line_items: list[tuple[str, int]] | None = None,
    ) -> dict[str, Any]:
        """A completed Checkout Session; ``promotions_consent`` is ``opt_in``, ``opt_out`` or None.

        ``line_items``: (price id, quantity) of what was bought, served when a request expands ``line_items``
        (Stripe never includes them otherwise, nor in events); None: a session of an amount only."""
        if promotions_consent not in (None, "opt_in", "opt_out"):
            raise ValueError("promotions_consent must be None, 'opt_in' or 'opt_out'")
        for price_id, quantity in line_items or ():
            self._record("price", price_id)
            if int(quantity) < 1:
                raise ValueError("a line item's quantity is at least 1")
        created = self.now if created is None else int(created)
        customer = self._record("customer", customer_id) if customer_id else {}
        object_id = self.new_id("checkout.session")
        rec: dict[str, Any] = {
            "id": object_id,
            "created": created,
            "expires_at": created + DAY,
            "amount_subtotal": int(amount_total),
            "amount_total": int(amount_total),
            "currency": currency.lower(),
            "customer": customer_id,
            "customer_email": email,
            "customer_details.email": email if email is not None else customer.get("email"),
            "customer_details.name": customer.get("name"),
            "consent": {"promotions": promotions_consent, "terms_of_service": None},
            "consent_collection.promotions": "auto" if promotions_consent else None,
            "payment_intent": payment_intent or self.new_id("payment_intent"),
            "client_reference_id": None,
        }
        if line_items:
            rec["_line_items"] = [(price_id, int(quantity)) for price_id, quantity in line_items]
        self._insert("checkout.session", rec)
        self._emit("checkout.session.completed", "checkout.session", rec, created)
        return self._out("checkout.session", rec)

    @_locked
    def checkout_line_items(self, session_id: str) -> dict[str, Any]:
        """The session's ``line_items`` list (as ``expand[]=line_items`` gives it): one ``item`` per line, its
        price expanded, amounts = unit amount x quantity (a session without lines has an empty list)."""
        rec = self._record("checkout.session", session_id)
        data = []
        for i, (price_id, quantity) in enumerate(rec.get("_line_items") or ()):
            price = self.render("price", self._record("price", price_id))
            product = self._records["product"].get(price["product"]) or {}
            amount = int(price["unit_amount"] or 0) * quantity
            item = _clone(fixtures()["item"])
            item.update(
                id=f"li_{session_id[-22:]}{i:02d}",
                amount_discount=0,
                amount_subtotal=amount,
                amount_tax=0,
                amount_total=amount,
                currency=price["currency"],
                description=product.get("name"),
                price=price,
                quantity=quantity,
                adjustable_quantity=None,
            )
            data.append(item)
        return {
            "object": "list",
            "data": data,
            "has_more": False,
            "url": f"/v1/checkout/sessions/{session_id}/line_items",
        }


def derived_id(kind: str, source_id: str, tag: str) -> str:
    """An id of ``kind``'s format derived from another object's id (no random draw: the account's other ids
    stay what they were)."""
    prefix, length = ID_FORMATS[kind]
    digest = hashlib.blake2b(f"{source_id}:{tag}".encode(), digest_size=length).digest()
    return prefix + digest.translate(_ID_ALPHABET).decode("ascii")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# -- the generator -----------------------------------------------------------------------------------
_FIRST = _words(
    "James Mary John Patricia Robert Jennifer Michael Linda William Elizabeth David Barbara Richard "
    "Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark "
    "Margaret Paul Sandra Steven Ashley Andrew Kimberly Kenneth Emily Joshua Donna Kevin Michelle Brian "
    "Carol George Amanda Lukas Sophie Hannah Jonas Lea Emma Mia Noah Louis Chloe Hugo Ines Oliver Amelia "
    "Harry Isla Yuki Haruto Sakura Ren Aoi Sota Fatima Omar Layla Yusuf Mariam Ahmed Priya Arjun Lucia "
    "Mateo Sofia Diego"
)
_LAST = _words(
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Muller Schmidt Schneider Fischer Weber Dubois Moreau Laurent Bernard Rossi Russo "
    "Ferrari Evans Walsh Sato Suzuki Takahashi Tanaka Watanabe Al-Sabah Al-Mutairi Haddad Khan Patel "
    "Sharma Silva Costa"
)
_DOMAINS = (
    ("gmail.com", 0.42),
    ("yahoo.com", 0.1),
    ("outlook.com", 0.08),
    ("hotmail.com", 0.07),
    ("icloud.com", 0.07),
    ("proton.me", 0.03),
    ("gmx.de", 0.03),
    ("orange.fr", 0.02),
    ("yahoo.co.jp", 0.03),
    ("btinternet.com", 0.02),
    ("acme-corp.com", 0.04),
    ("northwind.io", 0.03),
    ("globex.co", 0.03),
    ("initech.net", 0.03),
)
_INVALID_EMAILS = (
    "not-an-email",
    "john@",
    "jane.doe@@example.com",
    "@example.com",
    "mary smith@example.com",
    "bob@example",
    "alice@gmail..com",
)
#: (currency, weight, country, locale)
_MARKETS = (
    ("usd", 0.72, "US", "en-US"),
    ("eur", 0.11, "DE", "de-DE"),
    ("eur", 0.02, "FR", "fr-FR"),
    ("gbp", 0.07, "GB", "en-GB"),
    ("jpy", 0.05, "JP", "ja-JP"),
    ("cad", 0.02, "CA", "en-CA"),
    ("kwd", 0.01, "KW", "ar-KW"),
)
_OPT_IN_YES = (("true", 0.5), ("TRUE", 0.1), ("yes", 0.15), ("Yes", 0.1), ("1", 0.15))
_OPT_IN_NO = (("false", 0.6), ("no", 0.25), ("0", 0.15))
_SIGNUP_SOURCES = (("web", 0.55), ("mobile_app", 0.2), ("referral", 0.12), ("partner", 0.08), ("event", 0.05))
_FAILURES = (
    ("card_declined", 0.55),
    ("insufficient_funds", 0.2),
    ("expired_card", 0.1),
    ("incorrect_cvc", 0.08),
    ("processing_error", 0.04),
    ("lost_card", 0.03),
)
_STATUS_WEIGHTS = (
    ("active", 0.46),
    ("canceled", 0.27),
    ("trialing", 0.06),
    ("past_due", 0.05),
    ("unpaid", 0.03),
    ("incomplete", 0.02),
    ("incomplete_expired", 0.06),
    ("paused", 0.05),
)
#: one-off basket amounts: (median in major units, rounding step in minor units)
_BASKETS = {
    "usd": (45.0, 100),
    "eur": (42.0, 100),
    "gbp": (36.0, 100),
    "cad": (60.0, 100),
    "jpy": (6500.0, 10),
    "kwd": (14.0, 250),
}


def _pick(rng: random.Random, weighted: tuple[tuple[Any, float], ...]) -> Any:
    u = rng.random() * sum(w for _, w in weighted)
    for value, weight in weighted:
        u -= weight
        if u < 0:
            return value
    return weighted[-1][0]


def _purchase_times(rng: random.Random, created: int, now: int) -> list[int]:
    """One-off purchase times of a customer: a first order at sign-up (most customers), then repeat orders
    as a Poisson process of a skewed per-customer rate until the customer drifts away."""
    if rng.random() < 0.07:
        return []  # signed up, never bought
    first = min(now - 60, created + int(rng.expovariate(1 / (6 * 3600))))
    times = [first]
    u = rng.random()
    if u < 0.42:
        return times  # one-time buyer
    if u < 0.66:
        per_month = rng.uniform(0.2, 0.6)
    elif u < 0.87:
        per_month = rng.uniform(0.8, 2.5)
    elif u < 0.97:
        per_month = rng.uniform(3.0, 6.0)
    else:
        per_month = rng.uniform(8.0, 15.0)  # heavy repeaters
    until = min(now - 60, first + int(rng.expovariate(1 / (24 * 30 * DAY))))
    t = first
    while len(times) < 200:
        t += int(rng.expovariate(per_month / (30 * DAY)))
        if t > until:
            break
        times.append(t)
    return times


def _basket_amount(rng: random.Random, currency: str) -> int:
    median, step = _BASKETS.get(currency, (45.0, 100))
    major = median * math.exp(rng.gauss(0.0, 0.75))
    minor = major * 10 ** currency_exponent(currency)
    amount = max(step, round(minor / step) * step)
    if step == 100 and rng.random() < 0.6:
        amount -= 1  # $44.99
    return amount


_PLANS = (
    ("Starter", "plan", [("usd", 900, "month"), ("usd", 9000, "year"), ("eur", 900, "month"), ("gbp", 800, "month")]),
    ("Pro", "plan", [("usd", 2900, "month"), ("usd", 29000, "year"), ("eur", 2700, "month"), ("gbp", 2400, "month")]),
    ("Team", "plan", [("usd", 9900, "month"), ("eur", 8900, "month"), ("gbp", 7900, "month")]),
    ("Basic (legacy)", "legacy", [("usd", 500, "month")]),
    ("Premium support", "addon", [("usd", 4900, "month")]),
    (
        "Growth Handbook (ebook)",
        "good",
        [("usd", 1900, None), ("eur", 1700, None), ("gbp", 1500, None), ("jpy", 2800, None), ("kwd", 6000, None)],
    ),
    (
        "Workshop ticket",
        "good",
        [("usd", 14900, None), ("eur", 13900, None), ("gbp", 12900, None), ("jpy", 22000, None)],
    ),
    ("Consulting hour", "good", [("usd", 20000, None), ("eur", 18500, None), ("cad", 26000, None)]),
    ("Gift card", "good", [("usd", 5000, None), ("usd", 10000, None), ("jpy", 5000, None), ("kwd", 15000, None)]),
    ("Sticker pack", "archived", [("usd", 500, None)]),
)


class _Catalog:
    def __init__(self) -> None:
        #: currency -> [(plan name, price id, interval, unit amount)]
        self.recurring: dict[str, list[tuple[str, str, str, int]]] = {}
        #: currency -> [(price id, unit amount)]
        self.one_time: dict[str, list[tuple[str, int]]] = {}
        #: price id -> when it was archived (no new subscriptions after that)
        self.archived_at: dict[str, int] = {}
        self.plan_weights = {
            "Starter": 0.45,
            "Pro": 0.38,
            "Team": 0.1,
            "Basic (legacy)": 0.05,
            "Annual membership": 0.03,
        }


def _build_catalog(acct: StripeAccount, rng: random.Random, start: int, now: int) -> _Catalog:
    catalog = _Catalog()
    for name, kind, prices in _PLANS:
        created = start - rng.randint(5, 60) * DAY
        product = acct.add_product(
            name,
            created=created,
            description=f"{name} - Northwind Goods",
            metadata={"category": "subscription" if kind in ("plan", "legacy", "addon") else "shop"},
        )
        for i, (currency, amount, interval) in enumerate(prices):
            price = acct.add_price(
                product["id"],
                amount,
                currency,
                recurring={"interval": interval, "interval_count": 1} if interval else None,
                created=created + i * 60,
                nickname=f"{name} {currency.upper()} {interval or 'one-off'}",
                make_default=i == 0,
            )
            if kind in ("plan", "legacy") and interval:
                catalog.recurring.setdefault(currency, []).append((name, price["id"], interval, amount))
            elif kind in ("good", "archived"):
                catalog.one_time.setdefault(currency, []).append((price["id"], amount))
        if kind in ("legacy", "archived"):  # archived half-way through
            at = start + (now - start) // 2
            for price_id in [p for p, r in acct._records["price"].items() if r["product"] == product["id"]]:
                acct.update_price(price_id, at=at, active=False)
                catalog.archived_at[price_id] = at
            acct.update_product(product["id"], at=at, active=False)
    pro = next(p for p in acct._records["product"].values() if p["name"] == "Pro")
    old = acct.add_price(pro["id"], 2500, "usd", recurring={"interval": "month"}, created=start - 30 * DAY)
    acct.update_price(old["id"], at=start + 90 * DAY, active=False)  # an archived price of a live product
    # recent catalogue changes, so product.* and price.* events exist in the 30-day window
    annual = acct.add_product(
        "Annual membership",
        created=now - 20 * DAY,
        description="Everything, for a year",
        metadata={"category": "subscription"},
    )
    price = acct.add_price(
        annual["id"], 12000, "usd", recurring={"interval": "year"}, created=now - 20 * DAY, make_default=True
    )
    acct.add_price(annual["id"], 37500, "kwd", recurring={"interval": "year"}, created=now - 19 * DAY)
    catalog.recurring.setdefault("usd", []).append(("Annual membership", price["id"], "year", 12000))
    workshop = next(p for p in acct._records["product"].values() if p["name"] == "Workshop ticket")
    acct.update_product(workshop["id"], at=now - 6 * DAY, description="Live online workshop, 3 hours")
    catalog.archived_at[old["id"]] = start + 90 * DAY
    catalog.one_time = {
        c: [p for p in prices if p[0] not in catalog.archived_at] for c, prices in catalog.one_time.items()
    }
    return catalog


def _email_local(rng: random.Random, first: str, last: str) -> str:
    style = rng.random()
    first, last = first.lower(), last.lower().replace("-", "")
    if style < 0.45:
        local = f"{first}.{last}"
    elif style < 0.65:
        local = f"{first[0]}{last}"
    elif style < 0.8:
        local = f"{first}{last}{rng.randint(1, 99)}"
    elif style < 0.9:
        local = f"{first}_{last}"
    else:
        local = f"{first}{rng.randint(1970, 2005)}"
    return local


def _case_variant(rng: random.Random, email: str) -> str:
    local, _, domain = email.partition("@")
    variants = (
        local.title() + "@" + domain,
        local + "@" + domain.upper(),
        local.upper() + "@" + domain,
        local[:1].upper() + local[1:] + "@" + domain.title(),
    )
    for candidate in rng.sample(variants, len(variants)):
        if candidate != email:
            return candidate
    return email.upper()


def generate_account(
    seed: int = 42,
    customers: int = 3000,
    months: int = 24,
    now: int | None = None,
    settlement_currency: str = "usd",
    *,
    with_events: bool = True,
    guest_charges: bool = True,
) -> StripeAccount:
    """A realistic account: ``customers`` customers over ``months`` months, ~10 charges each on average.

    Deterministic for a given ``(seed, now)``: ids and amounts depend on ``seed`` only. Events are recorded
    for the last 30 days (what ``GET /v1/events`` serves); ``with_events=False`` records none.
    """
    rng = random.Random(seed)
    now = int(time.time()) if now is None else int(now)
    acct = StripeAccount(now=now, settlement_currency=settlement_currency, seed=seed)
    acct.record_events_since = now - EVENT_RETENTION if with_events else now + 10 * 365 * DAY
    acct._raw_returns = True  # mutations return bare records while generating: no rendering
    start = now - int(months * 30.436875 * DAY)
    span = now - start
    catalog = _build_catalog(acct, rng, start, now)
    used_emails: set[str] = set()
    valid_emails: list[str] = []
    last_activity: dict[str, int] = {}
    forced_statuses = rng.sample(SUBSCRIPTION_STATUSES, len(SUBSCRIPTION_STATUSES))
    n_subscriptions = 0

    def charge(cid: str | None, amount: int, currency: str, at: int, **kw: Any) -> dict[str, Any] | None:
        """A one-off or renewal charge with realistic outcomes (failures, uncaptured, refunds, disputes)."""
        u = rng.random()
        if u < 0.04:
            failed = acct.add_charge(
                cid, amount, currency, status="failed", failure_code=_pick(rng, _FAILURES), created=at, **kw
            )
            if rng.random() < 0.5 and at + 1800 < now:  # the buyer tries another card
                return acct.add_charge(cid, amount, currency, created=at + rng.randint(60, 1800), **kw)
            return failed
        if u < 0.05:
            return acct.add_charge(cid, amount, currency, captured=False, created=at, **kw)
        ch = acct.add_charge(cid, amount, currency, created=at, **kw)
        v = rng.random()
        if v < 0.05:
            when = at + rng.randint(3600, 20 * DAY)
            if when < now:
                partial = rng.random() < 0.5 and amount >= 2 * _BASKETS.get(currency, (0, 100))[1]
                part = None
                if partial:
                    step = _BASKETS.get(currency, (0, 100))[1]
                    part = max(step, int(amount * rng.uniform(0.2, 0.6)) // step * step)
                acct.refund_charge(ch["id"], amount=part, created=when)
        elif v < 0.053:
            when = at + rng.randint(5 * DAY, 40 * DAY)
            if when < now:
                if now - when < 25 * DAY:
                    status = rng.choice(("needs_response", "under_review", "lost", "won"))
                else:
                    status = rng.choice(("lost", "won"))
                closed = min(now - 60, when + rng.randint(10, 30) * DAY)
                acct.dispute_charge(
                    ch["id"],
                    status=status,
                    created=when,
                    reason=rng.choice(("fraudulent", "product_not_received", "duplicate", "general")),
                    closed_at=closed,
                )
        return ch

    for _ in range(customers):
        created = start + int((span - 3600) * rng.random() ** 0.7)  # a growing business
        currency, _w, country, locale = _pick(rng, tuple((m, m[1]) for m in _MARKETS))
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        name = None if rng.random() < 0.05 else f"{first} {last}"
        u = rng.random()
        if u < 0.08:
            email = None
        elif u < 0.09:
            email = rng.choice(_INVALID_EMAILS)
        elif u < 0.095 and valid_emails:
            email = _case_variant(rng, rng.choice(valid_emails))
        else:
            domain = _pick(rng, _DOMAINS)
            local = _email_local(rng, first, last)
            email = f"{local}@{domain}"
            n = 2
            while email in used_emails:
                email = f"{local}{n}@{domain}"
                n += 1
            used_emails.add(email)
            valid_emails.append(email)
        metadata: dict[str, str] = {"signup_source": _pick(rng, _SIGNUP_SOURCES)}
        c = rng.random()
        if c < 0.45:
            metadata["marketing_opt_in"] = _pick(rng, _OPT_IN_YES)
        elif c < 0.82:
            metadata["marketing_opt_in"] = _pick(rng, _OPT_IN_NO)
        if rng.random() < 0.3:
            metadata["crm_id"] = f"crm_{rng.randrange(10**6):06d}"
        if rng.random() < 0.08:
            metadata["utm_campaign"] = rng.choice(("spring_sale", "black_friday", "newsletter", "podcast"))
        subscriber = currency in catalog.recurring and rng.random() < 0.32
        cus = acct.add_customer(
            email=email,
            name=name,
            metadata=metadata,
            created=created,
            currency=currency if subscriber else None,
            phone=f"+1{rng.randrange(2000000000, 9999999999)}" if rng.random() < 0.25 else None,
            address={"country": country} if rng.random() < 0.6 else None,
            preferred_locales=[locale] if rng.random() < 0.5 else None,
        )
        cid = cus["id"]
        activity = created

        # one-off purchases
        times = _purchase_times(rng, created, now)
        one_time = catalog.one_time.get(currency, [])
        for i, at in enumerate(times):
            if one_time and rng.random() < 0.45:
                price_id, amount = rng.choice(one_time)
                description = acct._records["product"][acct._records["price"][price_id]["product"]]["name"]
                bought: list[tuple[str, int]] | None = [(price_id, 1)]
            else:
                amount, description = _basket_amount(rng, currency), "Northwind order"
                bought = None  # a basket of no catalogue product
            ch = charge(cid, amount, currency, at, description=description)
            if i == 0 and ch is not None and acct.field("charge", ch, "status") == "succeeded" and rng.random() < 0.5:
                consent = _pick(rng, ((None, 0.4), ("opt_in", 0.35), ("opt_out", 0.25)))
                acct.complete_checkout(
                    cid,
                    amount,
                    currency,
                    consent,
                    created=at,
                    payment_intent=ch["payment_intent"],
                    line_items=bought,
                )
            activity = max(activity, at)

        # subscription
        if subscriber:
            plans = catalog.recurring[currency]
            plan, price_id, interval, unit = _pick(rng, tuple((p, catalog.plan_weights.get(p[0], 0.1)) for p in plans))
            status = (
                forced_statuses[n_subscriptions]
                if n_subscriptions < len(forced_statuses)
                else _pick(rng, _STATUS_WEIGHTS)
            )
            n_subscriptions += 1
            quantity = rng.randint(2, 12) if plan == "Team" else 1
            latest_start = catalog.archived_at.get(price_id, now)
            activity = max(
                activity,
                _generate_subscription(
                    acct, rng, cid, price_id, interval, unit, quantity, status, created, latest_start, now
                ),
            )
        last_activity[cid] = activity

    # guest checkouts (no customer object), as Stripe Checkout creates with customer_creation=if_required
    if guest_charges:
        for _ in range(customers // 50):
            at = start + int(span * math.sqrt(rng.random())) - 60
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            email = f"{_email_local(rng, first, last)}@{_pick(rng, _DOMAINS)}"
            charge(None, _basket_amount(rng, "usd"), "usd", at, billing_email=email, billing_name=f"{first} {last}")

    # later changes: profile updates, opt-in flips, deletions
    ids = list(last_activity)
    for cid in rng.sample(ids, k=len(ids) // 30):
        after = max(last_activity[cid], acct._records["customer"][cid]["created"]) + 60
        if after >= now - 60:
            continue
        at = after + int((now - 60 - after) * rng.random())
        old = acct._records["customer"][cid]
        if rng.random() < 0.5 and old.get("email") and "@" in old["email"]:
            local, _, domain = old["email"].partition("@")
            acct.update_customer(cid, at=at, email=f"{local}.new@{domain}")
        else:
            metadata = dict(old.get("metadata") or {})
            was = metadata.get("marketing_opt_in", "").lower() in ("true", "yes", "1")
            metadata["marketing_opt_in"] = "false" if was else "true"
            acct.update_customer(cid, at=at, metadata=metadata)
        last_activity[cid] = at
    for cid in rng.sample(ids, k=max(1, len(ids) // 300)) if ids else ():
        after = max(last_activity[cid], now - 60 * DAY)
        if after < now - 120:
            acct.delete_customer(cid, at=after + int((now - 120 - after) * rng.random()) + 60)

    acct.record_events_since = None
    acct._raw_returns = False
    acct.sort_indexes()
    return acct


def _generate_subscription(
    acct: StripeAccount,
    rng: random.Random,
    cid: str,
    price_id: str,
    interval: str,
    unit: int,
    quantity: int,
    status: str,
    customer_created: int,
    latest_start: int,
    now: int,
) -> int:
    """One subscription's life up to ``now``, ending in ``status``; returns the time of its last change.

    ``latest_start``: the price was archived then, so the subscription must have started before.
    """
    earliest = customer_created + 60
    latest = min(latest_start, now - 60)
    if earliest >= latest:
        return customer_created
    price = acct._records["price"][price_id]
    currency = price["currency"]
    amount = unit * quantity

    def pick_start(lo: int, hi: int, skew: float = 1.0) -> int | None:
        lo, hi = max(lo, earliest), min(hi, latest)
        return None if lo >= hi else lo + int((hi - lo) * rng.random() ** skew)

    if status in ("trialing", "paused"):
        begin = pick_start(now - 13 * DAY, now) if status == "trialing" else pick_start(0, now - 15 * DAY)
        if begin is None:
            return customer_created
        sub = acct.add_subscription(cid, price_id, "trialing", quantity, created=begin, trial_end=begin + 14 * DAY)
        if status == "paused":  # the trial ended without a payment method
            acct.update_subscription(sub["id"], at=begin + 14 * DAY, status="paused")
            return begin + 14 * DAY
        return begin
    if status in ("incomplete", "incomplete_expired"):
        # incomplete: the first payment failed less than 23 hours ago
        begin = pick_start(now - 22 * 3600, now) if status == "incomplete" else pick_start(0, now - 2 * DAY)
        if begin is None:
            return customer_created
        acct.add_charge(
            cid,
            amount,
            currency,
            status="failed",
            failure_code=_pick(rng, _FAILURES),
            created=begin,
            description="Subscription creation",
        )
        sub = acct.add_subscription(cid, price_id, "incomplete", quantity, created=begin)
        if status == "incomplete_expired":
            expired = begin + 23 * 3600
            acct.update_subscription(sub["id"], at=expired, status="incomplete_expired", ended_at=expired)
            return expired
        return begin

    # active, canceled, past_due, unpaid: a paid life of renewals
    begin = pick_start(0, now - 2 * DAY, 0.7)
    if begin is None:
        return customer_created
    trial_end = begin + 14 * DAY if rng.random() < 0.3 and begin + 15 * DAY < now else None
    sub = acct.add_subscription(
        cid, price_id, "trialing" if trial_end else "active", quantity, created=begin, trial_end=trial_end
    )
    anchor = trial_end or begin
    if trial_end:
        acct.update_subscription(sub["id"], at=trial_end, status="active")
    end = anchor + int((now - 60 - anchor) * rng.random()) if status == "canceled" else now - 60
    periods = []
    while (at := step_interval(anchor, interval, 1, len(periods))) <= end:
        periods.append(at)
    failing = {"past_due": 1, "unpaid": rng.randint(2, 3)}.get(status, 0)
    failing = min(failing, len(periods) - 1)
    for i, at in enumerate(periods[: len(periods) - failing]):
        acct.charge_subscription(
            sub["id"],
            created=at,
            description="Subscription creation" if i == 0 else "Subscription update",
            billing_reason="subscription_create" if i == 0 else "subscription_cycle",
        )
    if failing:
        first_fail = periods[len(periods) - failing]
        acct.update_subscription(sub["id"], at=first_fail, status="past_due")
        acct.update_customer(cid, at=first_fail, delinquent=True)
        for at in periods[len(periods) - failing :]:
            invoice = acct.fail_invoice_payment(
                cid, amount, currency, created=at, subscription_id=sub["id"], attempt_count=4
            )
            acct.add_charge(
                cid,
                amount,
                currency,
                status="failed",
                failure_code=_pick(rng, _FAILURES),
                created=at,
                description="Subscription update",
                invoice_id=invoice["id"],
            )
            acct.update_subscription(sub["id"], at=at, latest_invoice=invoice["id"])
        if status == "unpaid":
            acct.update_subscription(sub["id"], at=min(now - 60, periods[-1] + 3 * DAY), status="unpaid")
        return periods[-1]
    if status == "canceled":
        feedback = rng.choice((None, "too_expensive", "unused", "switched_service", "missing_features"))
        acct.cancel_subscription(sub["id"], at=end, feedback=feedback)
        return end
    return periods[-1] if periods else begin
