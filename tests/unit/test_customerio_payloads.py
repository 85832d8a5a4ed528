"""Customer.io payloads and ops as the warehouse computes them (``payload_sql``)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import duckdb

from audiences.customerio_client import MAX_OP_BYTES
from audiences.customerio_sync import MAX_IDENTIFIER_BYTES, MAX_VALUE_BYTES
from audiences.field_mapping import FieldMapping
from audiences.payload_sql import customerio_payload_sql
from audiences.profiles import Profile, stage_profiles
from audiences.sync_state import canonical_json

MAPPING = FieldMapping(
    merge_fields=(),
    customerio_attributes={
        "lifetime_spend": "lifetime_spend",
        "purchase_count": "purchase_count",
        "last_purchase_at": "last_purchase_at",
        "signup_day": "signup_day",
        "churned_at": "churned_at",
        "notes": "notes",
        "marketing_consent": "marketing_consent",
    },
)


def person(cid: str, email: str | None = "a@gmail.com", valid: bool = True, **fields: Any) -> Profile:
    values = {
        "email": email,
        "has_valid_email": valid,
        "lifetime_spend": Decimal("12.50"),
        "purchase_count": 3,
        "last_purchase_at": dt.datetime(2026, 3, 4, 15, 0, 30, tzinfo=dt.UTC),
        "signup_day": dt.date(2026, 1, 2),
        "churned_at": None,
        "notes": "ok",
        "marketing_consent": True,
        **fields,
    }
    return Profile(cid, values, ["spend:low", "lifecycle:new"])


def rows(profiles: list[Profile]) -> dict[str, dict[str, Any]]:
    con = duckdb.connect()
    source = stage_profiles(con, profiles)
    query = customerio_payload_sql(
        source,
        source.columns(con),
        MAPPING,
        max_identifier_bytes=MAX_IDENTIFIER_BYTES,
        max_op_bytes=MAX_OP_BYTES,
        max_value_bytes=MAX_VALUE_BYTES,
    )
    cursor = con.execute(query)
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def test_values_are_plain_json_dates_as_unix_seconds_and_null_removes() -> None:
    row = rows([person("cus_a")])["cus_a"]
    payload = json.loads(row["payload"])
    assert payload == {
        "id": "cus_a",
        "attributes": {
            "lifetime_spend": 12.5,
            "purchase_count": 3,
            "last_purchase_at": int(dt.datetime(2026, 3, 4, 15, 0, 30, tzinfo=dt.UTC).timestamp()),
            "signup_day": int(dt.datetime(2026, 1, 2, tzinfo=dt.UTC).timestamp()),
            "churned_at": "",  # "" removes the attribute at Customer.io
            "notes": "ok",
            "marketing_consent": True,
            "email": "a@gmail.com",
            "segments": ["lifecycle:new", "spend:low"],
        },
    }
    assert row["payload"] == canonical_json(payload)  # the text the stored hashes were taken of
    assert json.loads(row["op"]) == {
        "type": "person",
        "identifiers": {"id": "cus_a"},
        "action": "identify",
        "attributes": payload["attributes"],
    }
    assert row["problem"] is None


def test_email_only_when_valid() -> None:
    out = rows([person("cus_a", valid=False), person("cus_b", email=None), person("cus_c", email="c@gmail.com")])
    assert "email" not in json.loads(out["cus_a"]["payload"])["attributes"]
    assert "email" not in json.loads(out["cus_b"]["payload"])["attributes"]
    assert json.loads(out["cus_c"]["payload"])["attributes"]["email"] == "c@gmail.com"


def test_limits_are_checked_in_the_warehouse() -> None:
    out = rows(
        [
            person("cus_" + "x" * 200),
            person("cus_long", notes="é" * 501),  # 1002 bytes of UTF-8 in 501 characters
            person("cus_huge", notes="x" * 999, email="e" * 991 + "@gmail.com"),
            person("cus_fits", notes="x" * 1000),
        ]
    )
    assert out["cus_" + "x" * 200]["problem"] == f"identifier longer than {MAX_IDENTIFIER_BYTES} bytes"
    assert out["cus_long"]["problem"] == f"attribute notes longer than {MAX_VALUE_BYTES} bytes"
    assert out["cus_huge"]["problem"] == f"attribute email longer than {MAX_VALUE_BYTES} bytes"
    assert out["cus_fits"]["problem"] is None
