"""A Mailchimp Marketing API v3 client: HTTP, auth, errors. No business rules here."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from audiences.http import build_session, check_base_url, json_bytes, retried
from audiences.redact import basic_credentials, redact_secrets

PERMANENT_MEMBER_ERRORS = frozenset(
    {"Invalid Resource", "Member In Compliance State", "Forgotten Email Not Subscribed", "Member Exists"}
)


MAX_CONNECTIONS = 10  # simultaneous connections Mailchimp allows per key; more get 429


def worker_pool(max_connections: int) -> ThreadPoolExecutor:
    """Threads for concurrent calls, never more than Mailchimp's connection limit."""
    return ThreadPoolExecutor(max_workers=max(1, min(MAX_CONNECTIONS, max_connections)))


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: md5 of the lowercased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


def default_base_url(api_key: str) -> str:
    secret, sep, dc = api_key.rpartition("-")
    if not sep or not secret or not dc.isalnum():
        raise ValueError("MAILCHIMP_API_KEY must look like <secret>-<dc> (e.g. ...-us21)")
    return f"https://{dc}.api.mailchimp.com/3.0"


@dataclass
class MailchimpError(Exception):
    status: int
    title: str
    detail: str
    errors: list[dict[str, Any]] = field(default_factory=list)
    method: str = ""
    path: str = ""

    def __str__(self) -> str:
        extra = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in self.errors)
        text = f"Mailchimp {self.status} {self.title} on {self.method} {self.path}: {self.detail}"
        return f"{text} ({extra})" if extra else text

    @property
    def permanent(self) -> bool:
        """A per-record failure that repeating the same payload cannot fix."""
        return self.status == 400 or (self.status < 500 and self.title in PERMANENT_MEMBER_ERRORS)

    @property
    def reason(self) -> str:
        return f"{self.status} {self.title}: {self.detail}"[:2000]


class MailchimpClient:
    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        max_connections: int = 10,
        timeout: float = 60.0,
        retries: int = 5,
    ) -> None:
        self.base_url = check_base_url(api_base or default_base_url(api_key))
        self.timeout = timeout
        self.session = build_session(pool_size=max_connections, retries=retries)
        self.session.auth = ("stripe-audiences", api_key)
        self._secrets = basic_credentials("stripe-audiences", api_key)  # kept out of every error
        self._calls = 0
        self._lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    @property
    def retried(self) -> int:
        """Calls repeated after a 429, a 5xx, a time-out or a reset (not counted in ``api_calls``)."""
        return retried(self.session)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        body: bytes | None = None,
    ) -> Any:
        """``json``: the body as a value to encode; ``body``: the body already encoded as JSON."""
        if json is not None:
            body = json_bytes(json)
        with self._lock:
            self._calls += 1
        response = self.session.request(
            method,
            self.base_url + path,
            data=body,
            headers=None if body is None else {"Content-Type": "application/json"},
            params=params,
            timeout=self.timeout,
        )
        if response.status_code >= 400:
            raise _error(response, method, path, self._secrets)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- audiences and merge fields ----------------------------------------------------------------
    def get_audience(self, list_id: str) -> dict[str, Any]:
        return self.request("GET", f"/lists/{list_id}", params={"fields": "id,name,stats.member_count"})

    def merge_fields(self, list_id: str) -> list[dict[str, Any]]:
        fields: list[dict[str, Any]] = []
        offset = 0
        while True:
            page = self.request("GET", f"/lists/{list_id}/merge-fields", params={"count": 1000, "offset": offset})
            fields.extend(page.get("merge_fields", []))
            offset += len(page.get("merge_fields", []))
            if not page.get("merge_fields") or offset >= int(page.get("total_items", 0)):
                return fields

    def create_merge_field(self, list_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/lists/{list_id}/merge-fields", json=body)

    # -- members -----------------------------------------------------------------------------------
    def upsert_member(self, list_id: str, email: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT a member by subscriber hash: creates it or updates it."""
        return self.request("PUT", f"/lists/{list_id}/members/{subscriber_hash(email)}", json=body)

    def batch_members(
        self, list_id: str, members: Sequence[Mapping[str, Any] | str], *, update_existing: bool
    ) -> dict[str, Any]:
        """``POST /lists/{id}``: up to 500 members; per-member failures come back in ``errors`` of a 200.

        A member given as text is its JSON (as the warehouse wrote it), sent as it is."""
        texts = [m if isinstance(m, str) else json_bytes(m).decode() for m in members]
        flag = "true" if update_existing else "false"
        body = '{"members":[' + ",".join(texts) + '],"update_existing":' + flag + "}"
        fields = "total_created,total_updated,error_count,errors"  # not the 500 member objects
        return self.request("POST", f"/lists/{list_id}", body=body.encode(), params={"fields": fields})

    # -- tags, which the API also serves as static segments ----------------------------------------
    def static_segments(self, list_id: str) -> list[dict[str, Any]]:
        segments: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET",
                f"/lists/{list_id}/segments",
                params={
                    "type": "static",
                    "count": 1000,
                    "offset": len(segments),
                    "fields": "segments.id,segments.name,total_items",
                },
            )
            segments.extend(page.get("segments", []))
            if not page.get("segments") or len(segments) >= int(page.get("total_items", 0)):
                return segments

    def create_static_segment(self, list_id: str, name: str) -> dict[str, Any]:
        return self.request("POST", f"/lists/{list_id}/segments", json={"name": name, "static_segment": []})

    def update_segment_members(
        self, list_id: str, segment_id: int, *, add: list[str], remove: list[str]
    ) -> dict[str, Any]:
        """Add and remove members (by email, up to 500 each) of a static segment, i.e. set a tag on or off."""
        body = {"members_to_add": add, "members_to_remove": remove}
        return self.request(
            "POST",
            f"/lists/{list_id}/segments/{segment_id}",
            json=body,
            params={"fields": "total_added,total_removed,error_count,errors"},
        )

    def close(self) -> None:
        self.session.close()


def _error(response: requests.Response, method: str, path: str, secrets: list[str]) -> MailchimpError:
    """The error of a refused call; whatever the body echoes of the request's credentials is masked."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    errors = [e for e in body.get("errors") or [] if isinstance(e, dict)]
    return MailchimpError(
        status=response.status_code,
        title=redact_secrets(str(body.get("title") or response.reason or ""), secrets),
        detail=redact_secrets(str(body.get("detail") or ""), secrets),
        errors=[{k: redact_secrets(str(v), secrets) for k, v in e.items()} for e in errors],
        method=method,
        path=path,
    )
