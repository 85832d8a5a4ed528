"""The reverse ETL a user would write by hand: one official-SDK call per person, in a plain loop.

    python -m bench.push_naive --destination mailchimp --warehouse W --url URL --key KEY --audience ID --seconds 20
    python -m bench.push_naive --destination customerio --warehouse W --url URL --site-id ID --key KEY --seconds 20

Mailchimp: ``mailchimp-marketing``'s ``lists.set_list_member`` (a PUT with ``status_if_new``) then
``lists.update_list_member_tags`` for each profile, after creating the merge fields it needs. Customer.io:
``customerio``'s ``CustomerIO.identify`` for each profile. The SDKs are pointed at the stand-ins (the
Customer.io SDK only builds https URLs: its ``base_url`` is set after construction). Runs for ``--seconds``
and prints one JSON line: profiles pushed, seconds, API calls.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from audiences.field_mapping import load_mapping
from audiences.profiles import Profile, load_profiles
from bench.common import emit

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "dbt_project" / "target" / "manifest.json"


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()[:10]
    return "" if value is None else value


def push_mailchimp(args: argparse.Namespace, profiles: list[Profile]) -> tuple[int, int]:
    import mailchimp_marketing

    client = mailchimp_marketing.Client()
    client.set_config({"api_key": args.key, "server": args.key.rsplit("-", 1)[1]})
    client.api_client.host = args.url.rstrip("/") + "/3.0"  # the SDK builds https://<dc>.api.mailchimp.com
    mapping = load_mapping(MANIFEST)
    calls = 1
    existing = {f["tag"] for f in client.lists.get_list_merge_fields(args.audience, count=1000)["merge_fields"]}
    for field in mapping.merge_fields:
        if field.tag not in existing:
            client.lists.add_list_merge_field(args.audience, {"tag": field.tag, "name": field.name, "type": field.type})
            calls += 1
    pushed = 0
    deadline = time.monotonic() + args.seconds
    for profile in profiles:
        if time.monotonic() >= deadline:
            break
        email = profile.email
        if not email or not profile.fields.get("has_valid_email", True):
            continue
        member_hash = hashlib.md5(email.lower().encode()).hexdigest()
        body = {
            "email_address": email,
            "status_if_new": "subscribed" if profile.fields.get("marketing_consent") else "transactional",
            "merge_fields": {f.tag: plain(profile.fields.get(f.column)) for f in mapping.merge_fields},
        }
        try:
            client.lists.set_list_member(args.audience, member_hash, body)
            calls += 1
            tags = [{"name": t, "status": "active"} for t in profile.tags]
            client.lists.update_list_member_tags(args.audience, member_hash, {"tags": tags})
            calls += 1
        except mailchimp_marketing.api_client.ApiClientError:
            calls += 1  # refused (fake email, ...): a hand-written loop logs it and goes on
            continue
        pushed += 1
    return pushed, calls


def push_customerio(args: argparse.Namespace, profiles: list[Profile]) -> tuple[int, int]:
    from customerio import CustomerIO

    cio = CustomerIO(args.site_id, args.key)
    cio.base_url = args.url.rstrip("/") + "/api/v1"  # the SDK only builds https URLs
    mapping = load_mapping(MANIFEST)
    pushed = calls = 0
    deadline = time.monotonic() + args.seconds
    for profile in profiles:
        if time.monotonic() >= deadline:
            break
        attributes = {name: plain(profile.fields.get(col)) for col, name in mapping.customerio_attributes.items()}
        if profile.email and profile.fields.get("has_valid_email", True):
            attributes["email"] = profile.email
        attributes["segments"] = sorted(profile.tags)
        cio.identify(id=profile.customer_id, **attributes)
        calls += 1
        pushed += 1
    return pushed, calls


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--destination", choices=("mailchimp", "customerio"), required=True)
    parser.add_argument("--warehouse", type=Path, required=True, help="a warehouse with the marts built")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--audience", help="Mailchimp audience id")
    parser.add_argument("--site-id", help="Customer.io site id")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to push for")
    args = parser.parse_args(argv)

    con = duckdb.connect(str(args.warehouse), read_only=True)
    try:
        profiles = load_profiles(con)
    finally:
        con.close()
    started = time.monotonic()
    push = push_mailchimp if args.destination == "mailchimp" else push_customerio
    pushed, calls = push(args, profiles)
    seconds = time.monotonic() - started
    emit(
        {
            "tool": "naive",
            "destination": args.destination,
            "profiles": pushed,
            "seconds": round(seconds, 3),
            "profiles_per_second": round(pushed / seconds, 1) if seconds else None,
            "api_calls": calls,
        }
    )


if __name__ == "__main__":
    main()
