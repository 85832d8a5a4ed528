"""Two Stripe customers with the same address (any case, any padding) are one marketing contact at each
destination, by the one documented rule (docs/reverse_etl.md, "Customers sharing an address"): the customer with
the highest lifetime spend, then the lowest customer id, holds the address."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import duckdb
import pytest

from audiences.customerio_client import CustomerIOClient
from audiences.customerio_sync import sync_people
from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import MailchimpClient, subscriber_hash
from audiences.mailchimp_sync import sync_members
from audiences.profiles import Profile
from sandbox.customerio_api import CustomerIOStandIn
from sandbox.mailchimp_api import MailchimpStandIn

KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE = "dupes00001"
MAPPING = FieldMapping(
    merge_fields=(MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),),
    customerio_attributes={"lifetime_spend": "lifetime_spend"},
)


def pair(spend_a: str, spend_b: str) -> list[Profile]:
    """cus_a and cus_b: one address, spelled differently; and an unrelated cus_c."""
    rows = [
        ("cus_a", "Jane.Doe@Gmail.com", spend_a, ["spend:high"]),
        ("cus_b", " jane.doe@gmail.COM\t", spend_b, ["spend:low"]),
        ("cus_c", "other@gmail.com", "5", ["spend:low"]),
    ]
    return [
        Profile(
            cid,
            {
                "customer_id": cid,
                "email": email,
                "has_valid_email": True,
                "lifetime_spend": Decimal(spend),
                "marketing_consent": True,
            },
            tags,
        )
        for cid, email, spend, tags in rows
    ]


@pytest.fixture
def mailchimp() -> Iterator[MailchimpStandIn]:
    server = MailchimpStandIn(api_key=KEY)
    server.create_audience(list_id=AUDIENCE, name="dupes")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def customerio() -> Iterator[CustomerIOStandIn]:
    server = CustomerIOStandIn(site_id="site", api_key="key")
    server.start()
    yield server
    server.stop()


def test_mailchimp_one_member_for_two_customers_sharing_an_address(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    client = MailchimpClient(KEY, api_base=mailchimp.url + "/3.0")

    first = sync_members(con, client, AUDIENCE, pair("10", "90"), MAPPING)  # cus_b spends more: it wins

    members = {m["email_address"].lower(): m for m in mailchimp.members(AUDIENCE)}
    assert sorted(members) == ["jane.doe@gmail.com", "other@gmail.com"]
    jane = members["jane.doe@gmail.com"]
    assert jane["email_address"] == "jane.doe@gmail.COM"  # cus_b's address, trimmed
    assert jane["merge_fields"]["LTV"] == 90
    assert {t["name"] for t in jane["tags"]} == {"spend:low"}
    assert [(r.record_key, r.reason) for r in first.rejections] == [
        ("cus_a", "duplicate email: merged into contact of cus_b")
    ]
    assert not mailchimp.contract_violations

    # cus_a now spends more: the same member (one address, one key) takes cus_a's data and tags.
    second = sync_members(con, client, AUDIENCE, pair("200", "90"), MAPPING)
    assert len(mailchimp.members(AUDIENCE)) == 2
    jane = mailchimp.member(AUDIENCE, "jane.doe@gmail.com")
    assert jane is not None and jane["merge_fields"]["LTV"] == 200
    assert mailchimp.member_tags(AUDIENCE, "jane.doe@gmail.com") == {"spend:high"}
    assert [(r.record_key, r.reason) for r in second.rejections] == [
        ("cus_b", "duplicate email: merged into contact of cus_a")
    ]
    assert subscriber_hash(" JANE.doe@gmail.com ") == jane["id"]


def test_customerio_one_person_holds_an_address_two_customers_share(customerio: CustomerIOStandIn) -> None:
    con = duckdb.connect()
    client = CustomerIOClient("site", "key", base_url=customerio.url)

    first = sync_people(con, client, pair("10", "90"), MAPPING)  # cus_b spends more: it holds the address

    assert first.rejections == [] and first.sent == 3
    assert customerio.person("cus_b") == {
        "id": "cus_b",
        "email": "jane.doe@gmail.COM",
        "lifetime_spend": 90.0,
        "segments": ["spend:low"],
    }
    assert customerio.person("cus_a") == {"id": "cus_a", "lifetime_spend": 10.0, "segments": ["spend:high"]}
    assert customerio.attribute_update_failures == [] and customerio.dropped_ops == []
    assert not customerio.contract_violations

    # cus_a now spends more: the address moves to cus_a in one run (cus_b gives it up first).
    second = sync_people(con, client, pair("200", "90"), MAPPING)
    assert second.rejections == [] and second.sent == 2
    assert customerio.person("cus_a") == {
        "id": "cus_a",
        "email": "Jane.Doe@Gmail.com",
        "lifetime_spend": 200.0,
        "segments": ["spend:high"],
    }
    assert "email" not in customerio.person("cus_b")  # type: ignore[operator]
    assert customerio.attribute_update_failures == [] and customerio.dropped_ops == []
    holders = [p for p in customerio.persons().values() if str(p.get("email", "")).lower() == "jane.doe@gmail.com"]
    assert len(holders) == 1
