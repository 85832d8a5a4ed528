"""Merge fields are provisioned while the warehouse plans, and no member is written before they exist.

The missing fields' date formats are known before they are created (their create bodies ask for one), so the
contacts' payloads are planned beside the creates; the batches wait for them. Against the Mailchimp stand-in over
HTTP.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import pytest

from audiences.field_mapping import FieldMapping, MergeField
from audiences.mailchimp_client import MailchimpClient, MailchimpError
from audiences.mailchimp_sync import NEW_DATE_FORMAT, sync_members
from audiences.profiles import Profile
from sandbox.http_server import Fault
from sandbox.mailchimp_api import MailchimpStandIn
from tests.integration.test_push_faults import profiles as fault_test_profiles

KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE = "f00dfeed02"
LATENCY = 0.05
MAPPING = FieldMapping(
    merge_fields=(
        MergeField("lifetime_spend", "LTV", "Lifetime spend", "number"),
        MergeField("last_purchase_at", "LASTPURCH", "Last purchase", "date"),
        MergeField("first_purchase_at", "FIRSTPURCH", "First purchase", "date"),
    ),
    customerio_attributes={},
)
BATCHES = r"/lists/[^/]+$"


def profiles() -> list[Profile]:
    """The fault tests' 1,200 people, each with a first purchase too (a second date field)."""
    people = fault_test_profiles()
    for person in people:
        person.fields["first_purchase_at"] = dt.datetime(2025, 11, 30, tzinfo=dt.UTC)
    return people


@pytest.fixture
def mailchimp() -> Iterator[MailchimpStandIn]:
    server = MailchimpStandIn(api_key=KEY, latency=LATENCY)
    server.latency_includes_processing = True  # each request takes LATENCY from its arrival
    server.create_audience(list_id=AUDIENCE, name="fields")
    server.start()
    yield server
    server.stop()


def client(server: MailchimpStandIn) -> MailchimpClient:
    return MailchimpClient(KEY, api_base=server.url + "/3.0", retries=0)


def test_fields_are_created_beside_the_planning_and_before_any_member_write(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    # the audience has one field already, in the other date format: its dates are written that way
    first = {"tag": "FIRSTPURCH", "name": "First purchase", "type": "date", "options": {"date_format": "DD/MM/YYYY"}}
    client(mailchimp).create_merge_field(AUDIENCE, first)
    mailchimp.clear_requests()

    preview = sync_members(con, client(mailchimp), AUDIENCE, profiles(), MAPPING, dry_run=True)
    assert not mailchimp.requests_to("POST", "/merge-fields") and not mailchimp.requests_to("POST", BATCHES)
    result = sync_members(con, client(mailchimp), AUDIENCE, profiles(), MAPPING)

    assert (result.created, result.rejections) == (1_200, [])
    creates = mailchimp.requests_to("POST", "/merge-fields")
    assert sorted(c.json()["tag"] for c in creates) == ["LASTPURCH", "LTV"]  # FIRSTPURCH existed
    assert next(c.json() for c in creates if c.json()["tag"] == "LASTPURCH")["options"] == {
        "date_format": NEW_DATE_FORMAT
    }
    fields = {f["tag"]: f for f in mailchimp.merge_fields(AUDIENCE)}
    assert fields["LASTPURCH"]["options"]["date_format"] == NEW_DATE_FORMAT
    # no member batch arrived before every create had been answered (each takes LATENCY from its arrival)
    answered = max(c.arrived for c in creates) + LATENCY
    assert min(b.arrived for b in mailchimp.requests_to("POST", BATCHES)) >= answered
    # the dry run planned the same payloads the push sent: the dates in each field's format
    sent = {m["email_address"]: m for b in mailchimp.requests_to("POST", BATCHES) for m in b.json()["members"]}
    for sample in preview.planned_sample:
        member = sent[sample["email_address"]]
        assert sample["merge_fields"] == member["merge_fields"]
        assert member["merge_fields"]["LASTPURCH"] == "03/04/2026"  # MM/DD/YYYY, the format asked for
        assert member["merge_fields"]["FIRSTPURCH"] == "30/11/2025"  # DD/MM/YYYY, the audience's
    assert not mailchimp.contract_violations


def test_a_field_that_cannot_be_created_stops_the_push_before_any_member_write(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    refused = {"type": "about:blank", "title": "Invalid Resource", "status": 400, "detail": "no more fields"}
    mailchimp.inject(Fault("/merge-fields$", method="POST", status=400, body=refused, skip=1))

    with pytest.raises(MailchimpError, match="no more fields"):
        sync_members(con, client(mailchimp), AUDIENCE, profiles(), MAPPING)

    assert not mailchimp.requests_to("POST", BATCHES)
    assert mailchimp.members(AUDIENCE) == []
    pushed = con.execute("select count(*) from sync.pushed_records").fetchone()
    assert pushed == (0,)


def test_a_date_field_created_in_another_format_than_planned_stops_the_push(mailchimp: MailchimpStandIn) -> None:
    con = duckdb.connect()
    other = {"merge_id": 9, "tag": "LASTPURCH", "name": "Last purchase", "type": "date"}
    other["options"] = {"date_format": "DD/MM/YYYY"}  # an API that ignored the format asked for
    mailchimp.inject(Fault("/merge-fields$", method="POST", status=200, body=other, times=3))

    with pytest.raises(MailchimpError, match="created with format DD/MM/YYYY"):
        sync_members(con, client(mailchimp), AUDIENCE, profiles(), MAPPING)

    assert not mailchimp.requests_to("POST", BATCHES)
