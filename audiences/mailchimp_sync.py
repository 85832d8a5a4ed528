"""Profiles -> Mailchimp audience members: merge fields, tags, consent-safe status.

Rules (see ../shared/contracts/NOTES.md):
- members are keyed by ``md5(lowercased email)``;
- a new member is ``subscribed`` only with marketing consent, otherwise ``transactional``;
- ``status`` is never sent, so an existing member's status (unsubscribed, cleaned...) never changes;
- segments are tags: active while the customer is in the segment, inactive once they leave it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import duckdb

from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import MailchimpClient, MailchimpError, subscriber_hash
from audiences.profiles import Profile
from audiences.sync_result import SyncResult
from audiences.sync_state import Rejection, payload_hash, plan_changes, record_outcome

log = logging.getLogger(__name__)
DESTINATION = "mailchimp"
TEXT_MAX = 255


def ensure_merge_fields(client: MailchimpClient, list_id: str, mapping: FieldMapping) -> dict[str, str]:
    """Create the mapped merge fields missing on the audience; return tag -> date format for date fields."""
    existing = {f["tag"]: f for f in client.merge_fields(list_id)}
    for field in mapping.merge_fields:
        if field.tag in existing:
            if existing[field.tag].get("type") != field.type:
                raise MailchimpError(
                    400,
                    "Merge field type mismatch",
                    f"audience field {field.tag} is {existing[field.tag].get('type')}, mapping says {field.type}",
                )
            continue
        body: dict[str, Any] = {"tag": field.tag, "name": field.name, "type": field.type, "public": False}
        existing[field.tag] = client.create_merge_field(list_id, body)
        log.info("created Mailchimp merge field %s (%s)", field.tag, field.type)
    return {
        tag: str((f.get("options") or {}).get("date_format") or "YYYY-MM-DD")
        for tag, f in existing.items()
        if f.get("type") == "date"
    }


def format_date(value: Any, date_format: str) -> str:
    if value is None:
        return ""
    day = value.date() if isinstance(value, dt.datetime) else value
    if not isinstance(day, dt.date):
        day = dt.date.fromisoformat(str(value)[:10])
    pattern = date_format.upper().replace("YYYY", "%Y").replace("MM", "%m").replace("DD", "%d")
    return day.strftime(pattern)


def merge_value(field: MergeField, value: Any, date_formats: dict[str, str]) -> Any:
    if field.type == "number":
        if value is None:
            return ""
        return float(value) if isinstance(value, Decimal | float) else value
    if field.type == "date":
        return format_date(value, date_formats.get(field.tag, "YYYY-MM-DD"))
    return "" if value is None else str(value)[:TEXT_MAX]


def build_payloads(
    profiles: list[Profile], mapping: FieldMapping, date_formats: dict[str, str]
) -> tuple[dict[str, dict[str, Any]], list[Rejection]]:
    """One payload per contact, keyed by subscriber hash; profiles that cannot be contacts are rejections.

    Two customers with the same email (any case) are one contact: the one with the highest lifetime spend
    (then the lowest customer id) wins; the others are recorded as rejections naming the winner.
    """
    payloads: dict[str, dict[str, Any]] = {}
    owners: dict[str, Profile] = {}
    rejections: list[Rejection] = []
    ranked = sorted(profiles, key=lambda p: (-(p.fields.get("lifetime_spend") or 0), p.customer_id))
    for profile in ranked:
        email = profile.email
        if not email:
            rejections.append(Rejection(profile.customer_id, "missing email", True, payload_hash({})))
            continue
        if not profile.fields.get("has_valid_email", True):
            reason = "invalid email address"
            rejections.append(Rejection(profile.customer_id, reason, True, payload_hash({"email": email})))
            continue
        key = subscriber_hash(email)
        if key in owners:
            winner = owners[key].customer_id
            rejections.append(
                Rejection(profile.customer_id, f"duplicate email: merged into contact of {winner}", True, key)
            )
            continue
        owners[key] = profile
        payloads[key] = {
            "customer_id": profile.customer_id,
            "email_address": email,
            "status_if_new": "subscribed" if profile.fields.get("marketing_consent") else "transactional",
            "merge_fields": {
                f.tag: merge_value(f, profile.fields.get(f.column), date_formats) for f in mapping.merge_fields
            },
            "tags": sorted(profile.tags),
        }
    return payloads, rejections


def _push_one(client: MailchimpClient, list_id: str, payload: dict[str, Any], previous: dict[str, Any] | None) -> str:
    """Upsert one member then reconcile its tags. Returns "created" or "updated"."""
    client.upsert_member(
        list_id,
        payload["email_address"],
        {
            "email_address": payload["email_address"],
            "status_if_new": payload["status_if_new"],
            "merge_fields": payload["merge_fields"],
        },
    )
    wanted = set(payload["tags"])
    before = set((previous or {}).get("tags", []))
    if previous is None or wanted != before:
        # Also send the member's current tags on first push: they may already carry ours from another run.
        changes = [{"name": t, "status": "active"} for t in sorted(wanted)]
        changes += [{"name": t, "status": "inactive"} for t in sorted(before - wanted)]
        if changes:
            client.update_tags(list_id, payload["email_address"], changes)
    return "created" if previous is None else "updated"


def sync_members(
    con: duckdb.DuckDBPyConnection,
    client: MailchimpClient,
    list_id: str,
    profiles: list[Profile],
    mapping: FieldMapping,
    *,
    run_id: str | None = None,
    dry_run: bool = False,
    full_resync: bool = False,
    max_connections: int = 10,
) -> SyncResult:
    started = time.monotonic()
    result = SyncResult(DESTINATION, dry_run=dry_run, considered=len(profiles))
    client.get_audience(list_id)  # fails fast on a wrong audience id or key
    date_formats = (
        {f.tag: "YYYY-MM-DD" for f in mapping.merge_fields if f.type == "date"}
        if dry_run
        else ensure_merge_fields(client, list_id, mapping)
    )
    payloads, invalid = build_payloads(profiles, mapping, date_formats)
    plan = plan_changes(con, DESTINATION, payloads, full_resync=full_resync)
    new_invalid = [r for r in invalid if plan.is_new_rejection(r)]
    result.still_rejected = plan.still_rejected + len(invalid) - len(new_invalid)
    result.unchanged = plan.unchanged
    if dry_run:
        result.planned_sample = list(plan.to_send.values())[:10]
        return result.finish(started=started, api_calls=client.api_calls, sent=0, rejections=new_invalid)

    accepted: list[str] = []
    rejections: list[Rejection] = list(new_invalid)

    def work(key: str) -> tuple[str, str | None, MailchimpError | Exception | None]:
        try:
            return key, _push_one(client, list_id, plan.to_send[key], plan.previous.get(key)), None
        except MailchimpError as exc:
            return key, None, exc
        except Exception as exc:  # timeouts and resets that outlived the retries
            return key, None, exc

    with ThreadPoolExecutor(max_workers=max(1, min(10, max_connections))) as pool:
        for key, outcome, error in pool.map(work, sorted(plan.to_send)):
            if outcome is not None:
                accepted.append(key)
                result.created += outcome == "created"
                result.updated += outcome == "updated"
            elif isinstance(error, MailchimpError):
                if error.status in (401, 403):
                    raise error
                rejections.append(Rejection(key, error.reason, error.permanent, plan.hashes[key]))
            else:
                reason = f"transient: {type(error).__name__}: {error}"[:500]
                rejections.append(Rejection(key, reason, False, plan.hashes[key]))
    record_outcome(con, DESTINATION, plan, accepted, rejections, run_id)
    return result.finish(started=started, api_calls=client.api_calls, sent=len(accepted), rejections=rejections)
