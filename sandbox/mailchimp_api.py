"""A local stand-in for the Mailchimp Marketing API v3, as strict as the real one.

Served under ``/3.0`` on 127.0.0.1; point the client at ``f"{server.start()}/3.0"``. Every JSON request body
is validated against the official OpenAPI document (``mailchimp/marketing-openapi.json``, see
:mod:`sandbox.openapi_contract`); a violation is a 400 ``Invalid Resource`` problem and is also recorded in
:attr:`MailchimpStandIn.contract_violations`. On top of the document, the rules of
``shared/contracts/NOTES.md`` apply: subscriber hashes, compliance states, forgotten and fake-looking
emails, merge field types and limits, 500 members per batch, 10 simultaneous connections per key.
Tags are also served as static segments (``/lists/{id}/segments``), as the real API does: listed, created
empty, and members added and removed by email in bulk (500 of each per call; emails that are not members
come back in ``errors``).

Deliberate choices where the real API is not documented (strict side chosen):

* a member PUT whose ``email_address`` does not hash to the path's subscriber hash is a 400;
* a new member needs ``email_address`` and ``status_if_new`` (PUT) or ``status`` (POST, batch);
  ``status_if_new`` wins over ``status`` for a new member;
* moving an ``unsubscribed`` or ``cleaned`` member to ``subscribed`` or ``pending`` is always refused
  ("Member In Compliance State"), by PUT and by batch ``update_existing``;
* forgotten (permanently deleted) emails are refused by every write;
* tag names match case-insensitively, keep their first spelling and are at most 100 characters;
* ``count`` above 1000 is a 400; merge field ``tag``: 1-10 of ``A-Z 0-9 _``; at most 30 merge fields;
* merge field values: ``text`` strings up to 255 characters, ``number`` numbers or numeric strings,
  ``date`` ``YYYY-MM-DD`` or the field's ``options.date_format`` (default ``MM/DD/YYYY``, returned as
  ``YYYY-MM-DD``), ``birthday`` the field's format (default ``MM/DD``), ``address`` an object with
  ``addr1``, ``city``, ``state``, ``zip``, ``zip`` 5 digits, ``url``/``imageurl`` http(s) URLs,
  ``radio``/``dropdown`` one of ``options.choices``; ``""`` clears a value; ``null`` is a schema violation.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.http_server import Request, Response, StandInServer
from sandbox.openapi_contract import load_contract

DEFAULT_API_KEY = "0123456789abcdef0123456789abcdef-us21"
ERROR_TYPE = "https://mailchimp.com/developer/marketing/docs/errors/"
PROBLEM_JSON = "application/problem+json"

MAX_BATCH_MEMBERS = 500
MAX_MERGE_FIELDS = 30
MAX_PAGE_COUNT = 1000
MAX_TEXT_LENGTH = 255
MAX_TAG_NAME_LENGTH = 100
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
COMPLIANCE_STATES = frozenset({"unsubscribed", "cleaned"})
OPT_IN_STATUSES = frozenset({"subscribed", "pending"})

#: Local parts Mailchimp rejects as fake-looking ("... looks fake or invalid"), compared case-insensitively
#: with the whole local part (``test+1@`` is not ``test@``).
FAKE_EMAIL_LOCAL_PARTS = frozenset(
    {
        "test",
        "testing",
        "tester",
        "fake",
        "asdf",
        "asdfasdf",
        "qwerty",
        "example",
        "sample",
        "noemail",
        "null",
    }
)
#: Domains Mailchimp rejects: documentation/test domains and disposable-address services.
FAKE_EMAIL_DOMAINS = frozenset(
    {
        "example.com",
        "example.org",
        "example.net",
        "test.com",
        "fake.com",
        "mailinator.com",
        "guerrillamail.com",
        "yopmail.com",
        "10minutemail.com",
        "trashmail.com",
    }
)
#: Reserved top-level domains (RFC 2606 / 6761): never deliverable.
RESERVED_TLDS = frozenset({"test", "example", "invalid", "localhost", "local"})

MERGE_TYPES = (
    "text",
    "number",
    "address",
    "phone",
    "date",
    "url",
    "imageurl",
    "radio",
    "dropdown",
    "birthday",
    "zip",
)
DATE_FORMATS = {"date": ("MM/DD/YYYY", "DD/MM/YYYY"), "birthday": ("MM/DD", "DD/MM")}
_STRPTIME = {"MM/DD/YYYY": "%m/%d/%Y", "DD/MM/YYYY": "%d/%m/%Y", "MM/DD": "%m/%d", "DD/MM": "%d/%m"}
_TAG_RE = re.compile(r"^[A-Z0-9_]{1,10}$")
_HASH_RE = re.compile(r"^[0-9a-f]{32}$")
_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_ZIP_RE = re.compile(r"^\d{5}$")
_US_PHONE_RE = re.compile(r"^(\(\d{3}\) ?|\d{3}-)\d{3}-\d{4}$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")


_TLD_RE = re.compile(r"[a-z]{2,63}")
_ISO_DAY_RE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})$")
_SLASH_DAY_RE = re.compile(r"^([0-9]{2})/([0-9]{2})/([0-9]{4})$")


def _two_digit_date(value: str, date_format: str) -> str | None:
    """The ISO day of ``value`` written YYYY-MM-DD, or in the field's MM/DD/YYYY or DD/MM/YYYY with two-digit
    day and month; None when it is not so written or not a real day (strptime then has the last word)."""
    iso = _ISO_DAY_RE.match(value)
    slash = None if iso else _SLASH_DAY_RE.match(value)
    try:
        if iso:
            return dt.date(int(iso[1]), int(iso[2]), int(iso[3])).isoformat()
        if slash and date_format in ("MM/DD/YYYY", "DD/MM/YYYY"):
            first, second, year = int(slash[1]), int(slash[2]), int(slash[3])
            month, day = (first, second) if date_format == "MM/DD/YYYY" else (second, first)
            return dt.date(year, month, day).isoformat()
    except ValueError:
        return None
    return None


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


_CLOCK: list[Any] = [None, ""]  # (second, its ISO text): members written in the same second share it


def _now() -> str:
    second = int(time.time())
    if _CLOCK[0] != second:
        _CLOCK[:] = [second, dt.datetime.fromtimestamp(second, dt.UTC).isoformat()]
    return _CLOCK[1]


def email_problem(email: str) -> str | None:
    """Why Mailchimp would refuse ``email`` ("looks fake or invalid"), or ``None``."""
    fake = f"{email} looks fake or invalid, please enter a real email address."
    if not isinstance(email, str) or email != email.strip() or len(email) > 254 or email.count("@") != 1:
        return fake
    local, domain = email.split("@")
    labels = domain.lower().split(".")
    if not local or len(local) > 64 or not _LOCAL_RE.match(local):
        return fake
    if len(labels) < 2 or not all(_LABEL_RE.match(label) for label in labels):
        return fake
    if not _TLD_RE.fullmatch(labels[-1]) or labels[-1] in RESERVED_TLDS:
        return fake
    if local.lower() in FAKE_EMAIL_LOCAL_PARTS or domain.lower() in FAKE_EMAIL_DOMAINS:
        return fake
    return None


class Problem(Exception):
    """An API error: answered as an ``application/problem+json`` document."""

    def __init__(self, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors


def problem_response(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> Response:
    body: dict[str, Any] = {
        "type": ERROR_TYPE,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": str(uuid.uuid4()),
    }
    if errors is not None:
        body["errors"] = errors
    return Response(status, body, content_type=PROBLEM_JSON)


def _invalid(detail: str, errors: list[dict[str, str]] | None = None) -> Problem:
    return Problem(400, "Invalid Resource", detail, errors if errors is not None else [])


def _not_found() -> Problem:
    return Problem(404, "Resource Not Found", "The requested resource could not be found.")


@dataclass
class _Member:
    email: str
    status: str
    merge: dict[str, Any]
    tags: list[str]
    unique_email_id: str
    contact_id: str
    web_id: int
    timestamp_signup: str
    timestamp_opt: str
    last_changed: str
    email_type: str = "html"
    language: str = ""
    vip: bool = False
    ip_signup: str = ""
    ip_opt: str = ""
    source: str = "API - Generic"
    interests: dict[str, bool] = field(default_factory=dict)
    location: dict[str, float] = field(default_factory=dict)

    @property
    def hash(self) -> str:
        return subscriber_hash(self.email)


@dataclass
class _Audience:
    id: str
    web_id: int
    name: str
    settings: dict[str, Any]
    date_created: str
    merge_fields: list[dict[str, Any]] = field(default_factory=list)
    members: dict[str, _Member] = field(default_factory=dict)  # subscriber hash -> member
    tags: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # lower name -> (id, name, created)
    next_merge_id: int = 1
    _merge_index: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False, compare=False)
    _required: list[dict[str, Any]] = field(default_factory=list, repr=False, compare=False)

    def merge_index(self) -> dict[str, dict[str, Any]]:
        """Merge fields by tag."""
        if len(self._merge_index) != len(self.merge_fields):  # fields were added: index them again
            self._merge_index = {f["tag"]: f for f in self.merge_fields}
            self._required = [f for f in self.merge_fields if f["required"]]
        return self._merge_index

    def required_merge_fields(self) -> list[dict[str, Any]]:
        self.merge_index()
        return self._required

    def merge_field(self, tag: str) -> dict[str, Any] | None:
        return self.merge_index().get(tag)

    def tag(self, name: str) -> tuple[int, str, str]:
        key = name.lower()
        if key not in self.tags:
            self.tags[key] = (len(self.tags) + 1, name, _now())
        return self.tags[key]


def _default_merge_fields() -> list[dict[str, Any]]:
    """The five fields every new Mailchimp audience starts with."""
    return [
        {"tag": "FNAME", "name": "First Name", "type": "text", "options": {"size": 25}},
        {"tag": "LNAME", "name": "Last Name", "type": "text", "options": {"size": 25}},
        {"tag": "ADDRESS", "name": "Address", "type": "address", "options": {"default_country": 164}},
        {"tag": "PHONE", "name": "Phone Number", "type": "phone", "options": {"phone_format": "none"}},
        {"tag": "BIRTHDAY", "name": "Birthday", "type": "birthday", "options": {"date_format": "MM/DD"}},
    ]


def _select(obj: Any, paths: list[list[str]]) -> Any:
    if isinstance(obj, list):
        return [_select(item, paths) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict[str, Any] = {}
    for head in dict.fromkeys(p[0] for p in paths):
        if head not in obj:
            continue
        rests = [p[1:] for p in paths if p[0] == head]
        out[head] = obj[head] if any(not r for r in rests) else _select(obj[head], [r for r in rests if r])
    return out


def _exclude(obj: Any, paths: list[list[str]]) -> Any:
    if isinstance(obj, list):
        return [_exclude(item, paths) for item in obj]
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for path in paths:
        if path[0] not in out:
            continue
        if len(path) == 1:
            del out[path[0]]
        else:
            out[path[0]] = _exclude(out[path[0]], [path[1:]])
    return out


def _split_fields(values: list[str]) -> list[list[str]]:
    return [p.strip().split(".") for v in values for p in v.split(",") if p.strip()]


class MailchimpStandIn(StandInServer):
    """Mailchimp Marketing API v3 under ``/3.0``; in-memory, thread-safe."""

    name = "mailchimp-stand-in"
    prefix = "/3.0"

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        *,
        latency: float = 0.0,
        max_connections: int = 10,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port, latency=latency)
        self.api_key = api_key
        self.max_connections = max_connections
        self.max_in_flight_seen = 0
        self.contract_violations: list[dict[str, Any]] = []
        self.rejected_for_connections = 0
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._state = threading.RLock()
        self._audiences: dict[str, _Audience] = {}
        self._forgotten: set[str] = set()
        self._web_ids = 1000
        self._contract = load_contract("mailchimp")
        p = self.prefix
        self._api("GET", f"{p}/ping", self._ping)
        self._api("GET", f"{p}/lists/{{list_id}}", self._get_list)
        self._api("POST", f"{p}/lists/{{list_id}}", self._batch)
        self._api("GET", f"{p}/lists/{{list_id}}/merge-fields", self._list_merge_fields)
        self._api("POST", f"{p}/lists/{{list_id}}/merge-fields", self._create_merge_field)
        self._api("GET", f"{p}/lists/{{list_id}}/merge-fields/{{merge_id}}", self._get_merge_field)
        self._api("GET", f"{p}/lists/{{list_id}}/members", self._list_members)
        self._api("POST", f"{p}/lists/{{list_id}}/members", self._add_member)
        self._api("GET", f"{p}/lists/{{list_id}}/members/{{subscriber_hash}}", self._get_member)
        self._api("PUT", f"{p}/lists/{{list_id}}/members/{{subscriber_hash}}", self._put_member)
        self._api("GET", f"{p}/lists/{{list_id}}/members/{{subscriber_hash}}/tags", self._list_tags)
        self._api("POST", f"{p}/lists/{{list_id}}/members/{{subscriber_hash}}/tags", self._post_tags)
        self._api("GET", f"{p}/lists/{{list_id}}/segments", self._list_segments)
        self._api("POST", f"{p}/lists/{{list_id}}/segments", self._create_segment)
        self._api("GET", f"{p}/lists/{{list_id}}/segments/{{segment_id}}", self._get_segment)
        self._api("POST", f"{p}/lists/{{list_id}}/segments/{{segment_id}}", self._segment_members)
        from sandbox import mailchimp_ecommerce_api  # imports this module: import it once this one is loaded

        self.ecommerce = mailchimp_ecommerce_api.install(self)  # /ecommerce/stores/...

    # -- plumbing ------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response | None:
        """Count requests in flight (the base's latency sleep included): beyond the cap, 429."""
        with self._flight_lock:
            self._in_flight += 1
            in_flight = self._in_flight
            self.max_in_flight_seen = max(self.max_in_flight_seen, in_flight)
        try:
            if in_flight > self.max_connections:
                with self._lock:
                    self.requests.append(request)
                    self.rejected_for_connections += 1
                return problem_response(
                    429,
                    "Too Many Requests",
                    f"You have exceeded the limit of {self.max_connections} simultaneous connections.",
                )
            return super().dispatch(request)
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        if method_not_allowed:
            return problem_response(
                405,
                "Method Not Allowed",
                f"The requested method and resource are not compatible: {request.method}",
            )
        return problem_response(404, "Resource Not Found", "The requested resource could not be found.")

    def internal_error(self, exc: Exception) -> Response:
        return problem_response(500, "Internal Server Error", f"stand-in error: {type(exc).__name__}: {exc}")

    def _api(self, method: str, pattern: str, handler: Callable[[Request, Any], Response]) -> None:
        template = pattern[len(self.prefix) :]

        def wrapped(request: Request) -> Response:
            denied = self._check_auth(request)
            if denied is not None:
                return denied
            body: Any = None
            if method in ("POST", "PUT", "PATCH"):
                try:
                    body = request.json()
                except (ValueError, UnicodeDecodeError):
                    return problem_response(
                        400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
                    )
                if body is None:
                    return problem_response(
                        400, "JSON Parse Error", "We encountered an unspecified JSON parsing error."
                    )
                violations = self._contract.request_errors(method, template, body)
                if violations:
                    with self._state:
                        self.contract_violations.append(
                            {
                                "method": method,
                                "path": request.path,
                                "errors": [str(v) for v in violations],
                                "body": body,
                            }
                        )
                    return problem_response(
                        400,
                        "Invalid Resource",
                        "The resource submitted could not be validated. "
                        "For field-specific details, see the 'errors' array.",
                        [{"field": v.field, "message": v.message} for v in violations],
                    )
            try:
                with self._state:
                    response = handler(request, body)
            except Problem as problem:
                return problem_response(problem.status, problem.title, problem.detail, problem.errors)
            return self._shape(request, response)

        self.route(method, pattern, wrapped)

    def _check_auth(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if not header:
            return problem_response(401, "API Key Missing", "Your request did not include an API key.")
        password = None
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
                password = decoded.partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                password = None
        if password != self.api_key:
            return problem_response(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        return None

    @staticmethod
    def _shape(request: Request, response: Response) -> Response:
        """Apply the ``fields`` / ``exclude_fields`` partial-response parameters."""
        if not isinstance(response.body, dict) or response.status >= 300:
            return response
        query = request.query_dict()
        if query.get("fields"):
            response.body = _select(response.body, _split_fields(query["fields"]))
        elif query.get("exclude_fields"):
            response.body = _exclude(response.body, _split_fields(query["exclude_fields"]))
        return response

    @staticmethod
    def _asks_for(request: Request, name: str) -> bool:
        """Whether the answer's ``name`` survives the ``fields`` parameter (only then is it worth rendering:
        member objects are what a 500-member answer spends its time on)."""
        fields = request.query_dict().get("fields")
        return not fields or any(path[0] == name for path in _split_fields(fields))

    def _audience(self, list_id: str) -> _Audience:
        audience = self._audiences.get(list_id)
        if audience is None:
            raise _not_found()
        return audience

    @staticmethod
    def _paging(request: Request) -> tuple[int, int]:
        query = request.query_dict()
        try:
            count = int(query.get("count", ["10"])[-1])
            offset = int(query.get("offset", ["0"])[-1])
        except ValueError:
            raise _invalid(
                "The resource submitted could not be validated.",
                [{"field": "count", "message": "count and offset must be integers"}],
            ) from None
        if count < 0 or offset < 0 or count > MAX_PAGE_COUNT:
            raise _invalid(
                "The resource submitted could not be validated.",
                [{"field": "count", "message": f"count must be between 0 and {MAX_PAGE_COUNT}"}],
            )
        return count, offset

    @staticmethod
    def _flag(request: Request, name: str) -> bool:
        values = request.query_dict().get(name)
        return bool(values) and values[-1].lower() in ("true", "1")

    # -- JSON shapes ---------------------------------------------------------------------------------
    def _merge_field_json(self, audience: _Audience, mf: dict[str, Any]) -> dict[str, Any]:
        return {
            "merge_id": mf["merge_id"],
            "tag": mf["tag"],
            "name": mf["name"],
            "type": mf["type"],
            "required": mf["required"],
            "default_value": mf["default_value"],
            "public": mf["public"],
            "display_order": mf["display_order"],
            "options": dict(mf["options"]),
            "help_text": mf["help_text"],
            "list_id": audience.id,
            "_links": [],
        }

    def _member_json(self, audience: _Audience, member: _Member) -> dict[str, Any]:
        merge = {mf["tag"]: member.merge.get(mf["tag"], "") for mf in audience.merge_fields}
        tags = [{"id": audience.tag(name)[0], "name": audience.tag(name)[1]} for name in member.tags]
        full_name = " ".join(str(merge.get(t, "")) for t in ("FNAME", "LNAME") if merge.get(t)).strip()
        return {
            "id": member.hash,
            "email_address": member.email,
            "unique_email_id": member.unique_email_id,
            "contact_id": member.contact_id,
            "full_name": full_name,
            "web_id": member.web_id,
            "email_type": member.email_type,
            "status": member.status,
            "consents_to_one_to_one_messaging": True,
            "merge_fields": merge,
            "interests": dict(member.interests),
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": member.ip_signup,
            "timestamp_signup": member.timestamp_signup,
            "ip_opt": member.ip_opt,
            "timestamp_opt": member.timestamp_opt,
            "member_rating": 2,
            "last_changed": member.last_changed,
            "language": member.language,
            "vip": member.vip,
            "email_client": "",
            "location": {
                "latitude": member.location.get("latitude", 0),
                "longitude": member.location.get("longitude", 0),
                "gmtoff": 0,
                "dstoff": 0,
                "country_code": "",
                "timezone": "",
                "region": "",
            },
            "source": member.source,
            "tags_count": len(tags),
            "tags": tags,
            "list_id": audience.id,
            "_links": [],
        }

    def _list_json(self, audience: _Audience, include_total: bool = False) -> dict[str, Any]:
        statuses = [m.status for m in audience.members.values()]
        stats: dict[str, Any] = {
            "member_count": statuses.count("subscribed"),
            "unsubscribe_count": statuses.count("unsubscribed"),
            "cleaned_count": statuses.count("cleaned"),
            "member_count_since_send": statuses.count("subscribed"),
            "unsubscribe_count_since_send": statuses.count("unsubscribed"),
            "cleaned_count_since_send": statuses.count("cleaned"),
            "campaign_count": 0,
            "merge_field_count": len(audience.merge_fields),
            "avg_sub_rate": 0,
            "avg_unsub_rate": 0,
            "target_sub_rate": 0,
            "open_rate": 0,
            "click_rate": 0,
        }
        if include_total:
            stats["total_contacts"] = len(statuses)
        s = audience.settings
        return {
            "id": audience.id,
            "web_id": audience.web_id,
            "name": audience.name,
            "contact": dict(s["contact"]),
            "permission_reminder": s["permission_reminder"],
            "use_archive_bar": False,
            "campaign_defaults": dict(s["campaign_defaults"]),
            "notify_on_subscribe": "",
            "notify_on_unsubscribe": "",
            "date_created": audience.date_created,
            "list_rating": 0,
            "email_type_option": bool(s.get("email_type_option", False)),
            "subscribe_url_short": f"http://eepurl.com/{audience.id[:6]}",
            "subscribe_url_long": f"https://example.us21.list-manage.com/subscribe?id={audience.id}",
            "beamer_address": f"us21-{audience.id}@inbound.mailchimp.com",
            "visibility": "pub",
            "double_optin": bool(s.get("double_optin", False)),
            "has_welcome": False,
            "marketing_permissions": False,
            "modules": [],
            "stats": stats,
            "_links": [],
        }

    # -- validation of member data -------------------------------------------------------------------
    def _check_merge_value(self, mf: dict[str, Any], value: Any) -> tuple[Any, str | None]:
        """(normalised value, error message or None) for one merge field value."""
        kind = mf["type"]
        if value == "":
            return "", None
        if kind == "address":
            if not isinstance(value, dict):
                return None, "Please enter a complete address"
            missing = [k for k in ("addr1", "city", "state", "zip") if not str(value.get(k) or "").strip()]
            if missing:
                return None, "Please enter a complete address"
            keys = ("addr1", "addr2", "city", "state", "zip", "country")
            return {k: str(value.get(k) or "") for k in keys}, None
        if isinstance(value, dict):
            return None, f"A {kind} merge field cannot hold an object"
        if kind == "number":
            if isinstance(value, bool) or not (
                isinstance(value, int | float) or (isinstance(value, str) and _NUMBER_RE.match(value.strip()))
            ):
                return None, "Please enter a number"
            number = float(value) if isinstance(value, str) else value
            return (int(number) if float(number).is_integer() else number), None
        if not isinstance(value, str):
            return None, f"Please enter a string value for this {kind} field"
        if kind in ("text", "phone", "url", "imageurl", "radio", "dropdown") and len(value) > MAX_TEXT_LENGTH:
            return None, f"Value must be at most {MAX_TEXT_LENGTH} characters"
        if kind == "date":
            fmt = mf["options"].get("date_format", "MM/DD/YYYY")
            day = _two_digit_date(value, fmt)  # what strptime below reads these as, without its cost
            if day is not None:
                return day, None
            for pattern in ("%Y-%m-%d", _STRPTIME.get(fmt, "%m/%d/%Y")):
                try:
                    return dt.datetime.strptime(value, pattern).date().isoformat(), None
                except ValueError:
                    continue
            return None, "Please enter the date"
        if kind == "birthday":
            fmt = mf["options"].get("date_format", "MM/DD")
            try:
                parsed = dt.datetime.strptime(f"2000/{value}", "%Y/" + _STRPTIME[fmt])
            except ValueError:
                return None, "Please enter a month (01-12) and a day (01-31)"
            return parsed.strftime(_STRPTIME[fmt]), None
        if kind == "zip" and not _ZIP_RE.match(value):
            return None, "Please enter a valid zip code (5 digits)"
        if kind in ("url", "imageurl") and not re.match(r"^https?://[^\s/]+\.[^\s]+$", value):
            return None, "Please enter a valid URL"
        if kind == "phone" and mf["options"].get("phone_format") == "US" and not _US_PHONE_RE.match(value):
            return None, "Please enter a valid US phone number, (###) ###-####"
        if kind in ("radio", "dropdown"):
            choices = mf["options"].get("choices") or []
            if value not in choices:
                return None, f"Please choose one of: {', '.join(choices)}"
        return value, None

    def _check_merge_fields(
        self, audience: _Audience, values: dict[str, Any] | None, *, is_new: bool, skip_required: bool
    ) -> tuple[dict[str, Any], list[dict[str, str]]]:
        values = values or {}
        clean: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        index = audience.merge_index()
        for tag, value in values.items():
            mf = index.get(tag)
            if mf is None:
                errors.append({"field": tag, "message": f'Merge field "{tag}" does not exist on this audience'})
                continue
            kind, value_type = mf["type"], type(value)
            if kind == "number" and (value_type is int or value_type is float):  # _check_merge_value's first
                clean[tag] = int(value) if float(value).is_integer() else value  # cases, without the call
                continue
            if kind == "text" and value_type is str and len(value) <= MAX_TEXT_LENGTH:
                clean[tag] = value
                continue
            normalised, error = self._check_merge_value(mf, value)
            if error is not None:
                errors.append({"field": tag, "message": error})
            else:
                clean[tag] = normalised
        if not skip_required:
            for mf in audience.required_merge_fields():
                given = values.get(mf["tag"], None if is_new else "<unchanged>")
                if given in (None, "") and (is_new or mf["tag"] in values):
                    errors.append({"field": mf["tag"], "message": "Please enter a value"})
        return clean, errors

    def _new_member(self, email: str, status: str, body: dict[str, Any]) -> _Member:
        self._web_ids += 1
        now = _now()
        return _Member(
            email=email,
            status=status,
            merge={},
            tags=[],
            unique_email_id=f"{random.getrandbits(40):010x}",
            contact_id=f"{random.getrandbits(128):032x}",
            web_id=self._web_ids,
            timestamp_signup=body.get("timestamp_signup", ""),
            timestamp_opt=body.get("timestamp_opt", now if status == "subscribed" else ""),
            last_changed=now,
        )

    @staticmethod
    def _apply_member_fields(member: _Member, body: dict[str, Any], merge: dict[str, Any]) -> None:
        member.merge.update(merge)
        for key in ("email_type", "language", "ip_signup", "ip_opt", "timestamp_signup", "timestamp_opt"):
            if key in body:
                setattr(member, key, body[key])
        if "vip" in body:
            member.vip = bool(body["vip"])
        if "interests" in body:
            member.interests.update(body["interests"])
        if "location" in body:
            member.location.update(body["location"])
        member.last_changed = _now()

    @staticmethod
    def _change_status(member: _Member, status: str) -> None:
        if status == member.status:
            return
        if member.status in COMPLIANCE_STATES and status in OPT_IN_STATUSES:
            raise Problem(
                400,
                "Member In Compliance State",
                f"{member.email} is in a compliance state due to unsubscribe, bounce, or compliance review "
                "and cannot be subscribed.",
            )
        member.status = status
        if status == "subscribed":
            member.timestamp_opt = _now()

    def _check_new_email(self, email: str) -> None:
        if email.strip().lower() in self._forgotten:
            raise Problem(
                400,
                "Forgotten Email Not Subscribed",
                f"{email} was permanently deleted and cannot be re-imported. "
                "The contact must re-subscribe to get back on the list.",
            )
        problem = email_problem(email)
        if problem is not None:
            raise _invalid(problem, [{"field": "email_address", "message": problem}])

    def _upsert(
        self,
        audience: _Audience,
        body: dict[str, Any],
        *,
        key: str | None,
        new_status: str | None,
        status_field: str,
        update_existing: bool,
        skip_merge_validation: bool,
    ) -> tuple[_Member, bool]:
        """Create or update one member; raises :class:`Problem`. Returns (member, created)."""
        email = body.get("email_address")
        if key is None:
            if not email:
                raise _invalid(
                    "The resource submitted could not be validated.",
                    [{"field": "email_address", "message": "This value should not be blank."}],
                )
            key = subscriber_hash(email)
        member = audience.members.get(key)
        if member is None:
            if not email:
                raise _invalid(
                    "The resource submitted could not be validated.",
                    [{"field": "email_address", "message": "This value should not be blank."}],
                )
            self._check_new_email(email)
            if not new_status:
                raise _invalid(
                    "The resource submitted could not be validated.",
                    [{"field": status_field, "message": "This value should not be blank."}],
                )
            merge, errors = self._check_merge_fields(
                audience, body.get("merge_fields"), is_new=True, skip_required=skip_merge_validation
            )
            if errors:
                raise _invalid("Your merge fields were invalid.", errors)
            member = self._new_member(email, new_status, body)
            self._apply_member_fields(member, body, merge)
            audience.members[key] = member
            return member, True
        if not update_existing:
            raise Problem(
                400,
                "Member Exists",
                f"{member.email} is already a list member. Use PUT to insert or update list members.",
            )
        merge, errors = self._check_merge_fields(
            audience, body.get("merge_fields"), is_new=False, skip_required=skip_merge_validation
        )
        if errors:
            raise _invalid("Your merge fields were invalid.", errors)
        if body.get("status"):
            self._change_status(member, body["status"])
        self._apply_member_fields(member, body, merge)
        return member, False

    def _set_tags(
        self, audience: _Audience, member: _Member, names: list[str], *, replace: bool, checked: bool = False
    ) -> None:
        if not checked:
            for name in names:
                self._check_tag_name(name, "tags")
        if replace or not member.tags:  # a new member's tags: the names as the audience spells them, once each
            member.tags = list(dict.fromkeys(audience.tag(name.strip())[1] for name in names))
            return
        wanted = [audience.tag(name.strip())[1] for name in names]
        present = {t.lower() for t in member.tags}
        for name in wanted:
            if name.lower() not in present:
                member.tags.append(name)
                present.add(name.lower())

    @staticmethod
    def _check_tag_name(name: Any, field_name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise _invalid(
                "The resource submitted could not be validated.",
                [{"field": field_name, "message": "Tag name can't be blank"}],
            )
        if len(name.strip()) > MAX_TAG_NAME_LENGTH:
            raise _invalid(
                "The resource submitted could not be validated.",
                [{"field": field_name, "message": f"Tag names are at most {MAX_TAG_NAME_LENGTH} characters"}],
            )

    # -- handlers ------------------------------------------------------------------------------------
    def _ping(self, request: Request, body: Any) -> Response:
        return Response(200, {"health_status": "Everything's Chimpy!"})

    def _get_list(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        return Response(200, self._list_json(audience, self._flag(request, "include_total_contacts")))

    def _list_merge_fields(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        count, offset = self._paging(request)
        query = request.query_dict()
        fields = audience.merge_fields
        if query.get("type"):
            fields = [f for f in fields if f["type"] == query["type"][-1]]
        if query.get("required"):
            fields = [f for f in fields if f["required"] == (query["required"][-1].lower() == "true")]
        page = fields[offset : offset + count]
        return Response(
            200,
            {
                "merge_fields": [self._merge_field_json(audience, f) for f in page],
                "list_id": audience.id,
                "total_items": len(fields),
                "_links": [],
            },
        )

    def _get_merge_field(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        mf = next((f for f in audience.merge_fields if str(f["merge_id"]) == request.params["merge_id"]), None)
        if mf is None:
            raise _not_found()
        return Response(200, self._merge_field_json(audience, mf))

    def _create_merge_field(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        mf = self._add_merge_field(audience, body)
        return Response(200, self._merge_field_json(audience, mf))

    def _add_merge_field(self, audience: _Audience, body: dict[str, Any]) -> dict[str, Any]:
        def bad(field_name: str, message: str) -> Problem:
            return _invalid(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                [{"field": field_name, "message": message}],
            )

        name = str(body.get("name", "")).strip()
        if not name:
            raise bad("name", "This value should not be blank.")
        if len(name) > 100:
            raise bad("name", "Merge field names are at most 100 characters")
        kind = body["type"]
        tag = body.get("tag")
        if tag is None or tag == "":
            n = audience.next_merge_id
            while audience.merge_field(f"MMERGE{n}") is not None:
                n += 1
            tag = f"MMERGE{n}"
        elif len(tag) > 10:
            raise bad("tag", f'The merge tag "{tag}" is longer than 10 characters')
        elif not _TAG_RE.match(tag):
            raise bad("tag", f'The merge tag "{tag}" may only contain uppercase letters, digits and underscores')
        if tag == "EMAIL" or audience.merge_field(tag) is not None:
            raise _invalid(f'A Merge Field with the tag "{tag}" already exists for this list.')
        if len(audience.merge_fields) >= MAX_MERGE_FIELDS:
            raise _invalid(
                f"This audience already has the maximum of {MAX_MERGE_FIELDS} merge fields.",
                [{"field": "", "message": "Merge Max Limit Exceeded"}],
            )
        options = dict(body.get("options") or {})
        if kind in DATE_FORMATS:
            fmt = options.setdefault("date_format", DATE_FORMATS[kind][0])
            if fmt not in DATE_FORMATS[kind]:
                raise bad("options.date_format", f"date_format must be one of {', '.join(DATE_FORMATS[kind])}")
        if kind in ("radio", "dropdown") and not options.get("choices"):
            raise bad("options.choices", f"A {kind} merge field needs choices")
        if kind == "text":
            options.setdefault("size", 25)
        if kind == "phone":
            options.setdefault("phone_format", "none")
        if kind == "address":
            options.setdefault("default_country", 164)
        mf = {
            "merge_id": audience.next_merge_id,
            "tag": tag,
            "name": name,
            "type": kind,
            "required": bool(body.get("required", False)),
            "default_value": str(body.get("default_value", "")),
            "public": bool(body.get("public", True)),
            "display_order": int(body.get("display_order", len(audience.merge_fields) + 2)),
            "options": options,
            "help_text": str(body.get("help_text", "")),
        }
        audience.next_merge_id += 1
        audience.merge_fields.append(mf)
        return mf

    def _list_members(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        count, offset = self._paging(request)
        members = list(audience.members.values())
        status = request.query_dict().get("status")
        if status:
            members = [m for m in members if m.status == status[-1]]
        page = members[offset : offset + count]
        return Response(
            200,
            {
                "members": [self._member_json(audience, m) for m in page],
                "list_id": audience.id,
                "total_items": len(members),
                "_links": [],
            },
        )

    def _member_key(self, audience: _Audience, raw: str) -> str:
        """The path's subscriber hash (an email or contact_id is also accepted, as by the real API)."""
        if "@" in raw:
            return subscriber_hash(raw)
        for key, member in audience.members.items():
            if member.contact_id == raw:
                return key
        return raw.lower()

    def _get_member(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        member = audience.members.get(self._member_key(audience, request.params["subscriber_hash"]))
        if member is None:
            raise _not_found()
        return Response(200, self._member_json(audience, member))

    def _put_member(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        raw = request.params["subscriber_hash"]
        key = self._member_key(audience, raw)
        email = body.get("email_address")
        if email is not None and subscriber_hash(email) != key:
            raise _invalid(
                f"The subscriber hash in the URL ({raw}) is not the MD5 hash of the lowercased email address {email}.",
                [{"field": "email_address", "message": "does not match the subscriber hash"}],
            )
        if key not in audience.members and not _HASH_RE.match(key):
            raise _invalid(
                f"{raw} is not a valid subscriber hash (MD5 of the lowercased email address).",
                [{"field": "subscriber_hash", "message": "invalid subscriber hash"}],
            )
        member, _ = self._upsert(
            audience,
            body,
            key=key,
            new_status=body.get("status_if_new"),
            status_field="status_if_new",
            update_existing=True,
            skip_merge_validation=self._flag(request, "skip_merge_validation"),
        )
        return Response(200, self._member_json(audience, member))

    def _add_member(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        tags = body.get("tags") or []
        for name in tags:
            self._check_tag_name(name, "tags")
        member, _ = self._upsert(
            audience,
            body,
            key=None,
            new_status=body.get("status"),
            status_field="status",
            update_existing=False,
            skip_merge_validation=self._flag(request, "skip_merge_validation"),
        )
        self._set_tags(audience, member, tags, replace=False)
        return Response(200, self._member_json(audience, member))

    def _list_tags(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        member = audience.members.get(self._member_key(audience, request.params["subscriber_hash"]))
        if member is None:
            raise _not_found()
        count, offset = self._paging(request)
        tags = [audience.tag(name) for name in member.tags]
        page = tags[offset : offset + count]
        return Response(
            200,
            {
                "tags": [{"id": i, "name": n, "date_added": created} for i, n, created in page],
                "total_items": len(tags),
                "_links": [],
            },
        )

    def _post_tags(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        member = audience.members.get(self._member_key(audience, request.params["subscriber_hash"]))
        if member is None:
            raise _not_found()
        for i, tag in enumerate(body["tags"]):
            self._check_tag_name(tag["name"], f"tags[{i}].name")
        for tag in body["tags"]:
            name = tag["name"].strip()
            present = [t for t in member.tags if t.lower() == name.lower()]
            if tag["status"] == "active" and not present:
                member.tags.append(audience.tag(name)[1])
            elif tag["status"] == "inactive" and present:
                member.tags = [t for t in member.tags if t.lower() != name.lower()]
        member.last_changed = _now()
        return Response(204)

    # -- tags as static segments ---------------------------------------------------------------------
    def _segment_json(self, audience: _Audience, key: str) -> dict[str, Any]:
        tag_id, name, created = audience.tags[key]
        count = sum(1 for m in audience.members.values() if any(t.lower() == key for t in m.tags))
        return {
            "id": tag_id,
            "name": name,
            "member_count": count,
            "type": "static",
            "created_at": created,
            "updated_at": created,
            "options": {},
            "list_id": audience.id,
            "_links": [],
        }

    def _segment_key(self, audience: _Audience, segment_id: str) -> str:
        key = next((k for k, (i, _, _) in audience.tags.items() if str(i) == segment_id), None)
        if key is None:
            raise _not_found()
        return key

    def _list_segments(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        count, offset = self._paging(request)
        kind = (request.query_dict().get("type") or [""])[-1]
        if kind not in ("", "saved", "static", "fuzzy"):
            raise _invalid(
                "The resource submitted could not be validated.",
                [{"field": "type", "message": "type must be one of saved, static, fuzzy"}],
            )
        keys = [] if kind in ("saved", "fuzzy") else sorted(audience.tags, key=lambda k: audience.tags[k][0])
        page = [self._segment_json(audience, k) for k in keys[offset : offset + count]]
        return Response(200, {"segments": page, "list_id": audience.id, "total_items": len(keys), "_links": []})

    def _get_segment(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        return Response(200, self._segment_json(audience, self._segment_key(audience, request.params["segment_id"])))

    def _create_segment(self, request: Request, body: Any) -> Response:
        """A static segment (a tag): ``static_segment`` lists its first members; saved segments are not served."""
        audience = self._audience(request.params["list_id"])
        name = body["name"]
        if "options" in body and "static_segment" in body:
            raise _invalid(
                "static_segment cannot be provided with options.",
                [{"field": "static_segment", "message": "cannot be provided with options"}],
            )
        if "static_segment" not in body:
            raise _invalid(
                "This stand-in serves static segments (tags) only: provide static_segment.",
                [{"field": "static_segment", "message": "required by the stand-in"}],
            )
        self._check_tag_name(name, "name")
        if name.strip().lower() in audience.tags:
            raise _invalid(
                f"A segment named {name!r} already exists on this list.",
                [{"field": "name", "message": "a segment with this name already exists"}],
            )
        self._check_segment_emails(body["static_segment"], "static_segment")
        key = name.strip().lower()
        audience.tag(name.strip())
        for email in body["static_segment"]:
            member = audience.members.get(subscriber_hash(email))
            if member is not None and not any(t.lower() == key for t in member.tags):
                member.tags.append(audience.tags[key][1])
        return Response(200, self._segment_json(audience, key))

    @staticmethod
    def _check_segment_emails(emails: list[str], field_name: str) -> None:
        if len(emails) > MAX_BATCH_MEMBERS:
            raise _invalid(
                f"A maximum of {MAX_BATCH_MEMBERS} members can be sent in {field_name}; this request has "
                f"{len(emails)}.",
                [{"field": field_name, "message": f"at most {MAX_BATCH_MEMBERS} members"}],
            )

    def _segment_members(self, request: Request, body: Any) -> Response:
        """Batch add or remove members of a static segment (tag) by email; non-members come back as errors."""
        audience = self._audience(request.params["list_id"])
        key = self._segment_key(audience, request.params["segment_id"])
        name = audience.tags[key][1]
        to_add = body.get("members_to_add") or []
        to_remove = body.get("members_to_remove") or []
        self._check_segment_emails(to_add, "members_to_add")
        self._check_segment_emails(to_remove, "members_to_remove")
        added: list[dict[str, Any]] = []
        removed: list[dict[str, Any]] = []
        render_added = self._asks_for(request, "members_added")
        render_removed = self._asks_for(request, "members_removed")
        not_members: list[str] = []
        for email, adding in [(e, True) for e in to_add] + [(e, False) for e in to_remove]:
            member = audience.members.get(subscriber_hash(email)) if isinstance(email, str) and email else None
            if member is None:
                not_members.append(email)
                continue
            present = any(t.lower() == key for t in member.tags)
            if adding and not present:
                member.tags.append(name)
                added.append(self._member_json(audience, member) if render_added else {})
            elif not adding and present:
                member.tags = [t for t in member.tags if t.lower() != key]
                removed.append(self._member_json(audience, member) if render_removed else {})
            else:
                continue
            member.last_changed = _now()
        errors = (
            [{"email_addresses": not_members, "error": "Email addresses do not belong to this list."}]
            if not_members
            else []
        )
        return Response(
            200,
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": len(not_members),
                "_links": [],
            },
        )

    def _batch(self, request: Request, body: Any) -> Response:
        audience = self._audience(request.params["list_id"])
        members = body["members"]
        if len(members) > MAX_BATCH_MEMBERS:
            raise _invalid(
                f"You can only subscribe or unsubscribe up to {MAX_BATCH_MEMBERS} members per request; "
                f"this one has {len(members)}.",
                [{"field": "members", "message": f"at most {MAX_BATCH_MEMBERS} members per batch"}],
            )
        update_existing = bool(body.get("update_existing", False))
        sync_tags = bool(body.get("sync_tags", False))
        skip_merge = self._flag(request, "skip_merge_validation")
        skip_duplicates = self._flag(request, "skip_duplicate_check")
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        render = self._asks_for(request, "new_members") or self._asks_for(request, "updated_members")
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for entry in members:
            email = entry.get("email_address") or ""
            try:
                key = subscriber_hash(email) if email else ""
                if key and key in seen:
                    if skip_duplicates:
                        continue
                    raise _invalid(
                        f"{email} appears more than once in this batch.",
                        [{"field": "email_address", "message": "duplicate email address in the batch"}],
                    )
                seen.add(key)
                existing = audience.members.get(key) if key else None
                if existing is not None and not update_existing:
                    errors.append(
                        {
                            "email_address": email,
                            "error": f"{email} is already a list member, do you want to update? "
                            "please provide update_existing:true in the request body",
                            "error_code": "ERROR_CONTACT_EXISTS",
                            "field": "email_address",
                            "field_message": "already a list member",
                        }
                    )
                    continue
                if not entry.get("status"):
                    raise _invalid(
                        "The resource submitted could not be validated.",
                        [{"field": "status", "message": "This value should not be blank."}],
                    )
                tags = entry.get("tags")
                if tags is not None:
                    if not isinstance(tags, list):
                        raise _invalid(
                            "tags must be a list of tag names",
                            [{"field": "tags", "message": "must be a list"}],
                        )
                    for name in tags:
                        self._check_tag_name(name, "tags")
                member, was_created = self._upsert(
                    audience,
                    entry,
                    key=key or None,
                    new_status=entry.get("status"),
                    status_field="status",
                    update_existing=True,
                    skip_merge_validation=skip_merge,
                )
                if tags is not None or sync_tags:
                    self._set_tags(audience, member, list(tags or []), replace=sync_tags, checked=True)
                (created if was_created else updated).append(self._member_json(audience, member) if render else {})
            except Problem as problem:
                first = (problem.errors or [{}])[0]
                errors.append(
                    {
                        "email_address": email,
                        "error": problem.detail,
                        "error_code": "ERROR_GENERIC",
                        "field": first.get("field", ""),
                        "field_message": first.get("message", problem.title),
                    }
                )
        return Response(
            200,
            {
                "new_members": created,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(created),
                "total_updated": len(updated),
                "error_count": len(errors),
                "_links": [],
            },
        )

    # -- test helpers --------------------------------------------------------------------------------
    def create_audience(
        self,
        list_id: str | None = None,
        name: str = "Stripe Customers",
        *,
        double_optin: bool = False,
        email_type_option: bool = False,
        permission_reminder: str = "You signed up as a customer.",
        from_email: str = "hello@stripe-audiences.dev",
        from_name: str = "Stripe Audiences",
    ) -> dict[str, Any]:
        """Create an audience with Mailchimp's five default merge fields; returns its JSON."""
        with self._state:
            list_id = list_id or uuid.uuid4().hex[:10]
            if list_id in self._audiences:
                raise ValueError(f"audience {list_id!r} exists")
            self._web_ids += 1
            audience = _Audience(
                id=list_id,
                web_id=self._web_ids,
                name=name,
                settings={
                    "double_optin": double_optin,
                    "email_type_option": email_type_option,
                    "permission_reminder": permission_reminder,
                    "contact": {
                        "company": "Stripe Audiences",
                        "address1": "1 Main St",
                        "address2": "",
                        "city": "Springfield",
                        "state": "IL",
                        "zip": "62701",
                        "country": "US",
                        "phone": "",
                    },
                    "campaign_defaults": {
                        "from_name": from_name,
                        "from_email": from_email,
                        "subject": "",
                        "language": "en",
                    },
                },
                date_created=_now(),
            )
            for mf in _default_merge_fields():
                self._add_merge_field(audience, mf)
            self._audiences[list_id] = audience
            return self._list_json(audience, include_total=True)

    def add_member(
        self,
        list_id: str,
        email: str,
        status: str = "unsubscribed",
        merge_fields: dict[str, Any] | None = None,
        tags: list[str] | set[str] | None = None,
    ) -> dict[str, Any]:
        """Seed a pre-existing member (no email or merge validation: it is already there)."""
        if status not in (*STATUSES, "archived"):
            raise ValueError(f"unknown status {status!r}")
        with self._state:
            audience = self._audience(list_id)
            member = self._new_member(email, status, {})
            member.merge.update(merge_fields or {})
            for name in sorted(tags or []):
                member.tags.append(audience.tag(name)[1])
            audience.members[subscriber_hash(email)] = member
            return self._member_json(audience, member)

    def member(self, list_id: str, email: str) -> dict[str, Any] | None:
        with self._state:
            audience = self._audiences.get(list_id)
            member = audience.members.get(subscriber_hash(email)) if audience else None
            return self._member_json(audience, member) if audience and member else None

    def members(self, list_id: str) -> list[dict[str, Any]]:
        with self._state:
            audience = self._audience(list_id)
            return [self._member_json(audience, m) for m in audience.members.values()]

    def member_tags(self, list_id: str, email: str) -> set[str]:
        """Names of the member's active tags (empty if there is no such member)."""
        with self._state:
            audience = self._audiences.get(list_id)
            member = audience.members.get(subscriber_hash(email)) if audience else None
            return set(member.tags) if member else set()

    def segments(self, list_id: str) -> list[dict[str, Any]]:
        """Every tag of the audience, as the static segment the API serves it as."""
        with self._state:
            audience = self._audience(list_id)
            return [self._segment_json(audience, key) for key in audience.tags]

    def merge_fields(self, list_id: str) -> list[dict[str, Any]]:
        with self._state:
            audience = self._audience(list_id)
            return [self._merge_field_json(audience, f) for f in audience.merge_fields]

    def forget(self, email: str) -> None:
        """Permanently delete ``email`` (GDPR "forget"): removed everywhere, never re-importable."""
        with self._state:
            self._forgotten.add(email.strip().lower())
            key = subscriber_hash(email)
            for audience in self._audiences.values():
                audience.members.pop(key, None)


__all__ = [
    "DEFAULT_API_KEY",
    "FAKE_EMAIL_DOMAINS",
    "FAKE_EMAIL_LOCAL_PARTS",
    "MAX_BATCH_MEMBERS",
    "MAX_MERGE_FIELDS",
    "MailchimpStandIn",
    "email_problem",
    "subscriber_hash",
]
