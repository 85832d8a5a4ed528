"""A local stand-in for the Customer.io Track API (v1 customers and events, v2 batch).

As strict as the real API.

Request bodies are validated against the official OpenAPI 3.1 document (``customerio/track-openapi.json``, see
:mod:`sandbox.openapi_contract`); violations are refused and recorded in
:attr:`CustomerIOStandIn.contract_violations`. The limits of ``shared/contracts/NOTES.md`` and of the
document's introduction apply on top.

Choices where the sources are vague (the strict side is taken):

* sizes are decimal: a batch request body must be smaller than 500,000 bytes (the document: "must be
  smaller than 500kb"), else the whole request is a 400 with an ``errors`` body (the document lists no 413);
  each op, re-encoded as compact UTF-8 JSON, must be smaller than 32,000 bytes, else a per-op error;
* exactly one of ``id``, ``email``, ``cio_id`` identifies a person (``phone`` is not enabled in this
  workspace); identifiers are at most 150 bytes, emails must look like ``local@domain.tld``;
* attribute names at most 150 bytes, values at most 1000 bytes (strings as UTF-8, other values as compact
  JSON), at most 300 attributes per call; event names at most 100 bytes (after trimming spaces, not
  empty), event data at most 100,000 bytes (compact JSON);
* ``null`` or ``""`` as an attribute value removes the attribute (the document says so for objects and
  relationships; people behave the same);
* an event ``id`` must be a ULID (the document's format) and a repeated one is ignored; a ``timestamp``
  that is clearly in milliseconds (above 10,000,000,000) is refused: Track timestamps are unix seconds;
* an event for an unknown person creates the person; ``_update: true`` never creates (200, nothing
  happens, the failure is listed in :attr:`CustomerIOStandIn.attribute_update_failures`); suppress deletes
  the person and drops later ops for that identifier until unsuppress (recorded in ``dropped_ops``).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import orjson

from sandbox.http_server import Request, Response, StandInServer
from sandbox.openapi_contract import ContractError, load_contract

MAX_REQUEST_BYTES = 500_000
MAX_OP_BYTES = 32_000
MAX_IDENTIFIER_BYTES = 150
MAX_ATTRIBUTE_NAME_BYTES = 150
MAX_ATTRIBUTE_VALUE_BYTES = 1000
MAX_ATTRIBUTES = 300
MAX_EVENT_NAME_BYTES = 100
MAX_EVENT_DATA_BYTES = 100_000
MAX_UNIX_SECONDS = 10_000_000_000  # year 2286: anything larger is milliseconds
PERSON_IDENTIFIERS = ("id", "email", "cio_id")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_V1_RESERVED = {"_update", "_timestamp", "cio_relationships", "anonymous_id"}
_BATCH_ITEMS = "#/paths/~1api~1v2~1batch/post/requestBody/content/application~1json/schema/properties/batch/items"


def _compact(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, the form its size is judged in."""
    try:
        return orjson.dumps(value)
    except TypeError:  # integers past 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _value_bytes(value: Any) -> int:
    """Bytes of ``value`` as JSON (a string without its quotes)."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return len(repr(value))  # JSON spells these as repr does, True/False aside, which have the same length
    return len(_compact(value))


@dataclass
class _Person:
    cio_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str | None:
        return self.attributes.get("id")

    @property
    def email(self) -> str | None:
        return self.attributes.get("email")


class _OpError(Exception):
    def __init__(self, reason: str, field_name: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.field = field_name
        self.message = message


class CustomerIOStandIn(StandInServer):
    """Customer.io Track API: ``/api/v1/customers/...`` and ``/api/v2/batch``; in-memory, thread-safe."""

    name = "customerio-stand-in"
    max_request_bytes = MAX_REQUEST_BYTES
    max_op_bytes = MAX_OP_BYTES

    def __init__(
        self,
        site_id: str = "site123",
        api_key: str = "cio_key_abc",
        *,
        latency: float = 0.0,
        requests_per_second: float | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency)
        self.site_id = site_id
        self.api_key = api_key
        self.requests_per_second = requests_per_second
        self.contract_violations: list[dict[str, Any]] = []
        self.attribute_update_failures: list[dict[str, Any]] = []
        self.dropped_ops: list[dict[str, Any]] = []
        self.batch_ops_seen = 0
        self.rate_limited = 0
        self._state = threading.RLock()
        self._window: deque[float] = deque()
        self._people: dict[str, _Person] = {}  # cio_id -> person
        self._by_id: dict[str, _Person] = {}
        self._by_email: dict[str, _Person] = {}  # lowercased: emails are case-insensitive identifiers
        self._suppressed: set[tuple[str, str]] = set()
        self._event_ids: set[str] = set()
        self._refused: dict[str, tuple[str, str, str]] = {}  # person id -> (reason, field, message) of its ops
        self._cio_seq = 0x3000000
        self._contract = load_contract("customerio")
        self._op_schemas = self._op_schema_map()
        self.route("POST", "/api/v2/batch", self._guard(self._batch))
        self.route("PUT", "/api/v1/customers/{identifier}", self._guard(self._v1_identify))
        self.route("DELETE", "/api/v1/customers/{identifier}", self._guard(self._v1_delete))
        self.route("POST", "/api/v1/customers/{identifier}/events", self._guard(self._v1_event))

    # -- plumbing ------------------------------------------------------------------------------------
    def _op_schema_map(self) -> dict[tuple[str, str], str]:
        """(type, action) -> the schema pointer of that batch op, read from the document."""
        contract = self._contract
        items = contract._resolve({"$ref": _BATCH_ITEMS})

        def enums(schema: Any, depth: int = 0) -> dict[str, list[str]]:
            schema = contract._resolve(schema)
            out: dict[str, list[str]] = {}
            if not isinstance(schema, dict) or depth > 6:
                return out
            for name in ("type", "action"):
                prop = schema.get("properties", {}).get(name)
                if isinstance(prop, dict) and "enum" in prop:
                    out[name] = list(prop["enum"])
            for sub in schema.get("allOf", []):
                for key, values in enums(sub, depth + 1).items():
                    out.setdefault(key, values)
            return out

        mapping: dict[tuple[str, str], str] = {}

        def walk(node: Any) -> None:
            if isinstance(node, dict) and "$ref" in node:
                found = enums(node)
                for kind in found.get("type", []):
                    for action in found.get("action", []):
                        mapping.setdefault((kind, action), node["$ref"])
                return
            for sub in (node or {}).get("anyOf", []) + (node or {}).get("oneOf", []):
                walk(sub)

        walk(items)
        return mapping

    def _guard(self, handler: Any) -> Any:
        def wrapped(request: Request) -> Response:
            if self.requests_per_second is not None:
                now = time.monotonic()
                with self._state:
                    while self._window and self._window[0] <= now - 1.0:
                        self._window.popleft()
                    if len(self._window) >= self.requests_per_second:
                        self.rate_limited += 1
                        return Response(429, None)
                    self._window.append(now)
            if not self._authorized(request):
                return Response(401, None)
            return handler(request)

        return wrapped

    def _authorized(self, request: Request) -> bool:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return decoded == f"{self.site_id}:{self.api_key}"

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        status = 405 if method_not_allowed else 404
        return Response(status, {"meta": {"errors": [f"no route for {request.method} {request.path}"]}})

    def _violation(self, request: Request, errors: list[ContractError], body: Any, index: int | None = None) -> None:
        with self._state:
            self.contract_violations.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "batch_index": index,
                    "errors": [str(e) for e in errors],
                    "body": body,
                }
            )

    @staticmethod
    def _v1_error(*messages: str) -> Response:
        return Response(400, {"meta": {"errors": list(messages)}})

    @staticmethod
    def _batch_error(reason: str, field_name: str, message: str) -> Response:
        return Response(400, {"errors": [{"reason": reason, "field": field_name, "message": message}]})

    # -- people ----------------------------------------------------------------------------------------
    def _find(self, kind: str, value: str) -> _Person | None:
        if kind == "cio_id":
            return self._people.get(value.removeprefix("cio_"))
        if kind == "email":
            return self._by_email.get(value.lower())
        return self._by_id.get(value)

    def _create(self, kind: str, value: str) -> _Person:
        self._cio_seq += 1
        person = _Person(cio_id=f"{self._cio_seq:08x}")
        self._people[person.cio_id] = person
        if kind in ("id", "email"):
            self._set_attribute(person, kind, value)
        return person

    def _set_attribute(self, person: _Person, name: str, value: Any) -> None:
        """Set (or, for None / "", remove) one attribute, keeping the id and email indexes in step."""
        index = {"id": self._by_id, "email": self._by_email}.get(name)
        old = person.attributes.get(name)
        if index is not None and isinstance(old, str):
            index.pop(old.lower() if name == "email" else old, None)
        if value is None or value == "":
            person.attributes.pop(name, None)
            return
        person.attributes[name] = value
        if index is not None and isinstance(value, str):
            index[value.lower() if name == "email" else value] = person

    @staticmethod
    def _check_identifier(kind: str, value: Any, field_name: str) -> None:
        if not isinstance(value, str) or not value.strip():
            raise _OpError("required", field_name, f"{kind} must be a non-empty string")
        if len(value.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
            raise _OpError("too_long", field_name, f"{kind} is longer than {MAX_IDENTIFIER_BYTES} bytes")
        if kind == "email" and not _EMAIL_RE.match(value):
            raise _OpError("invalid", field_name, f"{value!r} is not a valid email address")

    @staticmethod
    def _check_attributes(attributes: dict[str, Any], prefix: str) -> None:
        if len(attributes) > MAX_ATTRIBUTES:
            raise _OpError(
                "too_many",
                prefix.rstrip("."),
                f"{len(attributes)} attributes; at most {MAX_ATTRIBUTES} per call",
            )
        for name, value in attributes.items():
            if len(name.encode("utf-8")) > MAX_ATTRIBUTE_NAME_BYTES:
                raise _OpError(
                    "too_long",
                    f"{prefix}{name}",
                    f"attribute name longer than {MAX_ATTRIBUTE_NAME_BYTES} bytes",
                )
            if value is not None and _value_bytes(value) > MAX_ATTRIBUTE_VALUE_BYTES:
                raise _OpError(
                    "too_long",
                    f"{prefix}{name}",
                    f"attribute value longer than {MAX_ATTRIBUTE_VALUE_BYTES} bytes",
                )

    @staticmethod
    def _check_event(name: Any, data: Any, timestamp: Any, data_field: str) -> str:
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise _OpError("required", "name", "event name must not be empty")
        if len(name.encode("utf-8")) > MAX_EVENT_NAME_BYTES:
            raise _OpError("too_long", "name", f"event name longer than {MAX_EVENT_NAME_BYTES} bytes")
        if data is not None and len(_compact(data)) > MAX_EVENT_DATA_BYTES:
            raise _OpError("too_large", data_field, f"event data larger than {MAX_EVENT_DATA_BYTES} bytes")
        if isinstance(timestamp, int) and not 0 <= timestamp < MAX_UNIX_SECONDS:
            raise _OpError("invalid", "timestamp", "timestamp must be a unix timestamp in seconds")
        return name

    def _suppressed_key(self, kind: str, value: str) -> tuple[str, str]:
        return (kind, value.lower() if kind == "email" else value)

    def _identify(self, kind: str, value: str, attributes: dict[str, Any], *, update_only: bool, op: Any) -> None:
        if self._suppressed_key(kind, value) in self._suppressed:
            self.dropped_ops.append({"reason": "suppressed", "op": op})
            return
        attributes = dict(attributes)
        person = self._find(kind, value)
        new_email = attributes.get("email")
        new_id = attributes.get("id")
        if person is None and kind == "id" and isinstance(new_email, str):
            owner = self._find("email", new_email)
            if owner is not None and owner.id is None:
                person = owner  # the existing person gets the new id (see the document's tip)
        if person is None:
            if update_only or kind == "cio_id":
                self.attribute_update_failures.append({"reason": "person not found", "op": op})
                return
            person = self._create(kind, value)
        for key_kind, new_value in (("email", new_email), ("id", new_id)):
            if isinstance(new_value, str) and new_value:
                owner = self._find(key_kind, new_value)
                if owner is not None and owner is not person:
                    self.attribute_update_failures.append(
                        {"reason": f"{key_kind} {new_value!r} belongs to another person", "op": op}
                    )
                    return
        for name, attr in attributes.items():
            if name in ("id", "email") and name == kind and attr in (None, ""):
                continue  # the identifier the op is addressed by cannot be removed
            self._set_attribute(person, name, attr)

    def _track(self, kind: str, value: str, event: dict[str, Any], op: Any) -> None:
        if self._suppressed_key(kind, value) in self._suppressed:
            self.dropped_ops.append({"reason": "suppressed", "op": op})
            return
        event_id = event.get("id")
        if event_id:
            if event_id.upper() in self._event_ids:
                self.dropped_ops.append({"reason": "duplicate event id", "op": op})
                return
            self._event_ids.add(event_id.upper())
        person = self._find(kind, value)
        if person is None:
            if kind == "cio_id":
                self.attribute_update_failures.append({"reason": "person not found", "op": op})
                return
            person = self._create(kind, value)
        person.events.append(event)

    def _delete(self, kind: str, value: str) -> None:
        person = self._find(kind, value)
        if person is not None:
            self._set_attribute(person, "id", None)
            self._set_attribute(person, "email", None)
            del self._people[person.cio_id]

    # -- v2 batch --------------------------------------------------------------------------------------
    def _batch(self, request: Request) -> Response:
        if len(request.body) >= self.max_request_bytes:
            return self._batch_error(
                "request_too_large",
                "",
                f"request body is {len(request.body)} bytes; it must be smaller than {self.max_request_bytes}",
            )
        try:
            body = request.json()
        except (ValueError, UnicodeDecodeError) as exc:
            return self._batch_error("malformed", "", f"request body is not valid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("batch"), list):
            errors = self._contract.request_errors("POST", "/api/v2/batch", body)
            if errors:
                self._violation(request, errors, body)
            return self._batch_error("malformed", "batch", "the body must be an object with a 'batch' array")
        ops = body["batch"]
        with self._state:
            self.batch_ops_seen += len(ops)
        errors_out: list[dict[str, Any]] = []
        with self._state:  # one request's ops are applied together (and the lock is taken once, not per op)
            for index, op in enumerate(ops):
                try:
                    self._batch_op(request, index, op)
                except _OpError as err:
                    errors_out.append(
                        {"batch_index": index, "reason": err.reason, "field": err.field, "message": err.message}
                    )
        if errors_out:
            return Response(207, {"errors": errors_out})
        return Response(200, {})

    def _batch_op(self, request: Request, index: int, op: Any) -> None:
        size = len(_compact(op))
        if size >= self.max_op_bytes:
            raise _OpError("too_large", "", f"op is {size} bytes; each op must be smaller than {self.max_op_bytes}")
        pointer = None
        if isinstance(op, dict):
            pointer = self._op_schemas.get((str(op.get("type")), str(op.get("action"))))
        errors = self._contract.errors_for(pointer or _BATCH_ITEMS, op)
        if errors:
            self._violation(request, errors, op, index)
            first = errors[0]
            raise _OpError("invalid", first.field, "; ".join(f"{e.field or '$'}: {e.message}" for e in errors))
        kind_type, action = op["type"], op["action"]
        if kind_type != "person":
            with self._state:
                self.dropped_ops.append({"reason": f"{kind_type} ops are accepted but not modelled", "op": op})
            return
        if action == "merge":
            with self._state:
                self.dropped_ops.append({"reason": "merge is accepted but not modelled", "op": op})
            return
        identifiers = op.get("identifiers") or {}
        present = [k for k in identifiers if k in PERSON_IDENTIFIERS or k == "phone"]
        if "phone" in present:
            raise _OpError("invalid", "identifiers.phone", "phone is not enabled as an identifier in this workspace")
        if len(present) != 1 or len(identifiers) != 1:
            raise _OpError("invalid", "identifiers", "identifiers must hold exactly one of id, email or cio_id")
        kind = present[0]
        value = identifiers[kind]
        self._check_identifier(kind, value, f"identifiers.{kind}")
        if kind == "id" and value in self._refused:
            raise _OpError(*self._refused[value])
        attributes = op.get("attributes") or {}
        with self._state:
            if action == "identify":
                self._check_attributes(attributes, "attributes.")
                update_only = bool(attributes.get("_update", False))
                clean = {k: v for k, v in attributes.items() if k != "_update"}
                for ident in ("id", "email"):
                    if isinstance(clean.get(ident), str) and clean[ident]:
                        self._check_identifier(ident, clean[ident], f"attributes.{ident}")
                self._identify(kind, value, clean, update_only=update_only, op=op)
            elif action in ("event", "page", "screen"):
                name = self._check_event(op.get("name"), attributes, op.get("timestamp"), "attributes")
                event = {
                    "name": name,
                    "type": action,
                    "id": op.get("id"),
                    "timestamp": op.get("timestamp", int(time.time())),
                    "attributes": dict(attributes),
                }
                self._track(kind, value, event, op)
            elif action == "delete":
                self._delete(kind, value)
            elif action == "suppress":
                self._delete(kind, value)
                self._suppressed.add(self._suppressed_key(kind, value))
            elif action == "unsuppress":
                self._suppressed.discard(self._suppressed_key(kind, value))
            else:
                self.dropped_ops.append({"reason": f"{action} is accepted but not modelled", "op": op})

    # -- v1 ----------------------------------------------------------------------------------------------
    @staticmethod
    def _path_identifier(request: Request) -> tuple[str, str]:
        raw = unquote(request.params["identifier"])
        if raw.startswith("cio_"):
            return "cio_id", raw
        return ("email" if "@" in raw else "id"), raw

    def _v1_body(self, request: Request) -> tuple[Any, Response | None]:
        try:
            body = json.loads(request.body.decode("utf-8")) if request.body else {}
        except (ValueError, UnicodeDecodeError) as exc:
            return None, self._v1_error(f"request body is not valid JSON: {exc}")
        suffix = "/events" if request.path.endswith("/events") else ""
        template = "/api/v1/customers/{identifier}" + suffix
        errors = self._contract.request_errors(request.method, template, body)
        if errors:
            self._violation(request, errors, body)
            return None, self._v1_error(*(str(e) for e in errors))
        return body, None

    def _v1_identify(self, request: Request) -> Response:
        body, error = self._v1_body(request)
        if error is not None:
            return error
        kind, value = self._path_identifier(request)
        attributes = {k: v for k, v in body.items() if k not in _V1_RESERVED}
        try:
            self._check_identifier(kind, value, "identifier")
            self._check_attributes(attributes, "")
            for ident in ("id", "email"):
                if isinstance(attributes.get(ident), str) and attributes[ident]:
                    self._check_identifier(ident, attributes[ident], ident)
        except _OpError as err:
            return self._v1_error(f"{err.field}: {err.message}")
        with self._state:
            self._identify(kind, value, attributes, update_only=bool(body.get("_update")), op=body)
        return Response(200, {})

    def _v1_delete(self, request: Request) -> Response:
        kind, value = self._path_identifier(request)
        with self._state:
            self._delete(kind, value)
        return Response(200, {})

    def _v1_event(self, request: Request) -> Response:
        body, error = self._v1_body(request)
        if error is not None:
            return error
        kind, value = self._path_identifier(request)
        try:
            self._check_identifier(kind, value, "identifier")
            name = self._check_event(body.get("name"), body.get("data"), body.get("timestamp"), "data")
        except _OpError as err:
            return self._v1_error(f"{err.field}: {err.message}")
        event = {
            "name": name,
            "type": body.get("type", "event"),
            "id": body.get("id"),
            "timestamp": body.get("timestamp", int(time.time())),
            "attributes": dict(body.get("data") or {}),
        }
        with self._state:
            self._track(kind, value, event, body)
        return Response(200, {})

    # -- test helpers ----------------------------------------------------------------------------------
    def refuse(self, person_id: str, reason: str, field_name: str, message: str) -> None:
        """Batch ops for this person id fail with this per-op error (in a 207, the batch's other ops applied)."""
        with self._state:
            self._refused[person_id] = (reason, field_name, message)

    def _lookup(self, identifier: str) -> _Person | None:
        if identifier.startswith("cio_"):
            return self._find("cio_id", identifier)
        return self._find("id", identifier) or self._find("email", identifier)

    def person(self, identifier: str) -> dict[str, Any] | None:
        """The attributes of the person with this id (or email, or ``cio_<cio_id>``); ``None`` if unknown."""
        with self._state:
            person = self._lookup(identifier)
            return dict(person.attributes) if person else None

    def persons(self) -> dict[str, dict[str, Any]]:
        """Every person's attributes, keyed by id (else email, else ``cio_<cio_id>``)."""
        with self._state:
            return {str(p.id or p.email or f"cio_{p.cio_id}"): dict(p.attributes) for p in self._people.values()}

    def events(self, person_id: str) -> list[dict[str, Any]]:
        """The person's events in arrival order: ``name``, ``type``, ``id``, ``timestamp``, ``attributes``."""
        with self._state:
            person = self._lookup(person_id)
            return [dict(e) for e in person.events] if person else []

    def event_count(self) -> int:
        """Events held, over every person."""
        with self._state:
            return sum(len(p.events) for p in self._people.values())

    def new_ulid(self) -> str:
        """A fresh ULID-shaped id, for tests that send events."""
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        n = (int(time.time() * 1000) << 80) | uuid.uuid4().int >> 48
        return "".join(alphabet[(n >> (5 * i)) & 31] for i in reversed(range(26)))


__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_ATTRIBUTE_NAME_BYTES",
    "MAX_ATTRIBUTE_VALUE_BYTES",
    "MAX_EVENT_DATA_BYTES",
    "MAX_EVENT_NAME_BYTES",
    "MAX_IDENTIFIER_BYTES",
    "MAX_OP_BYTES",
    "MAX_REQUEST_BYTES",
    "CustomerIOStandIn",
]
