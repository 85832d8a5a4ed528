"""The Mailchimp stand-in over real HTTP: auth, contract validation and the API's business rules."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from sandbox.mailchimp_api import DEFAULT_API_KEY, FAKE_EMAIL_DOMAINS, MailchimpStandIn
from sandbox.openapi_contract import load_contract

LIST = "aud123"


def h(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


class Api:
    def __init__(self, base: str, key: str = DEFAULT_API_KEY) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.auth = ("anyone", key)

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.base + path, timeout=10, **kwargs)

    def put_member(self, email: str, body: dict[str, Any] | None = None, **extra: Any) -> requests.Response:
        payload = {"email_address": email, "status_if_new": "transactional", **(body or {}), **extra}
        return self("PUT", f"/lists/{LIST}/members/{h(email)}", json=payload)


@pytest.fixture
def server() -> Iterator[MailchimpStandIn]:
    stand_in = MailchimpStandIn()
    stand_in.start()
    stand_in.create_audience(list_id=LIST, name="Customers")
    yield stand_in
    stand_in.stop()


@pytest.fixture
def api(server: MailchimpStandIn) -> Api:
    return Api(server.url + "/3.0")


def assert_problem(response: requests.Response, status: int, title: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["title"] == title and body["status"] == status
    return body


def assert_doc_shaped(method: str, path: str, status: int, body: Any) -> None:
    """The response matches the document (Mailchimp answers "" for unset timestamps, so do we)."""
    errors = load_contract("mailchimp").validate_response(method, path, status, body)
    assert [e for e in errors if "'' is not a 'date-time'" not in e] == []


# -- auth ------------------------------------------------------------------------------------------------
def test_auth_accepts_any_username_with_the_key(api: Api) -> None:
    response = api("GET", "/ping")
    assert response.status_code == 200
    assert response.json() == {"health_status": "Everything's Chimpy!"}


def test_auth_refuses_a_wrong_key_and_a_missing_one(server: MailchimpStandIn) -> None:
    wrong = Api(server.url + "/3.0", key="0123456789abcdef0123456789abcdef-us20")  # other dc: other key
    body = assert_problem(wrong("GET", f"/lists/{LIST}"), 401, "API Key Invalid")
    assert body["detail"]
    missing = requests.get(server.url + "/3.0/ping", timeout=5)
    assert_problem(missing, 401, "API Key Missing")


# -- audiences ---------------------------------------------------------------------------------------------
def test_get_list_and_unknown_list(api: Api) -> None:
    response = api("GET", f"/lists/{LIST}")
    assert response.status_code == 200
    assert response.json()["id"] == LIST and response.json()["name"] == "Customers"
    assert_doc_shaped("GET", "/lists/{list_id}", 200, response.json())
    partial = api("GET", f"/lists/{LIST}", params={"fields": "id,name,stats.member_count"}).json()
    assert partial == {"id": LIST, "name": "Customers", "stats": {"member_count": 0}}
    assert_problem(api("GET", "/lists/nope"), 404, "Resource Not Found")


def test_unparseable_json_is_a_400(api: Api) -> None:
    response = api("PUT", f"/lists/{LIST}/members/{h('a@acme.io')}", data=b"{nope")
    assert_problem(response, 400, "JSON Parse Error")


# -- merge fields ------------------------------------------------------------------------------------------
def test_new_audiences_have_the_default_merge_fields_and_paging(api: Api, server: MailchimpStandIn) -> None:
    first = api("GET", f"/lists/{LIST}/merge-fields").json()
    assert [f["tag"] for f in first["merge_fields"]] == ["FNAME", "LNAME", "ADDRESS", "PHONE", "BIRTHDAY"]
    assert first["total_items"] == 5 and first["list_id"] == LIST
    assert_doc_shaped("GET", "/lists/{list_id}/merge-fields", 200, first)
    page = api("GET", f"/lists/{LIST}/merge-fields", params={"count": 2, "offset": 1}).json()
    assert [f["tag"] for f in page["merge_fields"]] == ["LNAME", "ADDRESS"]
    assert_problem(api("GET", f"/lists/{LIST}/merge-fields", params={"count": 1001}), 400, "Invalid Resource")
    assert [f["tag"] for f in server.merge_fields(LIST)][:2] == ["FNAME", "LNAME"]


def test_create_merge_field(api: Api, server: MailchimpStandIn) -> None:
    response = api("POST", f"/lists/{LIST}/merge-fields", json={"name": "Plan", "tag": "PLAN", "type": "text"})
    assert response.status_code == 200, response.text
    assert response.json()["tag"] == "PLAN"
    assert_doc_shaped("POST", "/lists/{list_id}/merge-fields", 200, response.json())
    date = api("POST", f"/lists/{LIST}/merge-fields", json={"name": "Since", "tag": "SINCE", "type": "date"})
    assert date.json()["options"]["date_format"] == "MM/DD/YYYY"
    assert "PLAN" in {f["tag"] for f in server.merge_fields(LIST)}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Too long", "tag": "LIFETIMEVAL", "type": "number"}, "tag"),  # 11 characters
        ({"name": "Lower", "tag": "plan", "type": "text"}, "tag"),
        ({"name": "Dash", "tag": "LT-V", "type": "text"}, "tag"),
        (
            {"name": "Format", "tag": "D", "type": "date", "options": {"date_format": "YYYY/MM/DD"}},
            "options.date_format",
        ),
    ],
)
def test_merge_field_tag_rules(api: Api, body: dict[str, Any], field: str) -> None:
    problem = assert_problem(api("POST", f"/lists/{LIST}/merge-fields", json=body), 400, "Invalid Resource")
    assert problem["errors"][0]["field"] == field


def test_merge_field_type_must_be_in_the_document_enum(api: Api, server: MailchimpStandIn) -> None:
    body = {"name": "Money", "tag": "MONEY", "type": "currency"}
    problem = assert_problem(api("POST", f"/lists/{LIST}/merge-fields", json=body), 400, "Invalid Resource")
    assert problem["errors"][0]["field"] == "type"
    assert server.contract_violations and server.contract_violations[-1]["path"].endswith("/merge-fields")
    missing_name = api("POST", f"/lists/{LIST}/merge-fields", json={"tag": "X", "type": "text"})
    assert assert_problem(missing_name, 400, "Invalid Resource")["errors"][0]["message"] == (
        "'name' is a required property"
    )


def test_duplicate_tag_and_the_30_field_cap(api: Api) -> None:
    body = {"name": "First", "tag": "FNAME", "type": "text"}
    problem = assert_problem(api("POST", f"/lists/{LIST}/merge-fields", json=body), 400, "Invalid Resource")
    assert "already exists" in problem["detail"]
    for i in range(25):
        created = api("POST", f"/lists/{LIST}/merge-fields", json={"name": f"F{i}", "tag": f"F{i}", "type": "text"})
        assert created.status_code == 200
    over = api("POST", f"/lists/{LIST}/merge-fields", json={"name": "F30", "tag": "F30", "type": "text"})
    assert_problem(over, 400, "Invalid Resource")


# -- members -----------------------------------------------------------------------------------------------
def test_put_creates_a_member_with_status_if_new(api: Api, server: MailchimpStandIn) -> None:
    response = api.put_member("Ada@Acme.io", {"merge_fields": {"FNAME": "Ada"}, "status_if_new": "subscribed"})
    assert response.status_code == 200, response.text
    member = response.json()
    assert member["id"] == h("ada@acme.io") and member["status"] == "subscribed"
    assert member["merge_fields"]["FNAME"] == "Ada" and member["list_id"] == LIST
    assert_doc_shaped("PUT", "/lists/{list_id}/members/{subscriber_hash}", 200, member)
    assert server.member(LIST, "ada@acme.io")["email_address"] == "Ada@Acme.io"
    got = api("GET", f"/lists/{LIST}/members/{h('ada@acme.io')}")
    assert got.status_code == 200 and got.json()["status"] == "subscribed"
    assert_problem(api("GET", f"/lists/{LIST}/members/{h('nobody@acme.io')}"), 404, "Resource Not Found")


def test_new_member_needs_status_if_new(api: Api) -> None:
    email = "new@acme.io"
    response = api("PUT", f"/lists/{LIST}/members/{h(email)}", json={"email_address": email})
    problem = assert_problem(response, 400, "Invalid Resource")
    assert problem["errors"][0]["field"] == "status_if_new"


def test_status_if_new_is_ignored_for_existing_members(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "left@acme.io", status="unsubscribed")
    response = api.put_member("left@acme.io", status_if_new="subscribed", merge_fields={"FNAME": "Lee"})
    assert response.status_code == 200
    assert response.json()["status"] == "unsubscribed"
    assert server.member(LIST, "left@acme.io")["merge_fields"]["FNAME"] == "Lee"
    # an existing member can be updated without email_address / status_if_new
    update = api("PUT", f"/lists/{LIST}/members/{h('left@acme.io')}", json={"merge_fields": {"LNAME": "Ng"}})
    assert update.status_code == 200 and update.json()["merge_fields"]["LNAME"] == "Ng"


@pytest.mark.parametrize("old", ["unsubscribed", "cleaned"])
@pytest.mark.parametrize("new", ["subscribed", "pending"])
def test_status_change_out_of_a_compliance_state_is_refused(api: Api, server: MailchimpStandIn, old, new) -> None:
    server.add_member(LIST, "gone@acme.io", status=old)
    problem = assert_problem(api.put_member("gone@acme.io", status=new), 400, "Member In Compliance State")
    assert "gone@acme.io" in problem["detail"]
    assert server.member(LIST, "gone@acme.io")["status"] == old


def test_other_status_changes_apply(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "sub@acme.io", status="subscribed")
    assert api.put_member("sub@acme.io", status="unsubscribed").json()["status"] == "unsubscribed"
    server.add_member(LIST, "tx@acme.io", status="transactional")
    assert api.put_member("tx@acme.io", status="subscribed").json()["status"] == "subscribed"


def test_subscriber_hash_must_match_the_email(api: Api) -> None:
    body = {"email_address": "a@acme.io", "status_if_new": "transactional"}
    response = api("PUT", f"/lists/{LIST}/members/{h('b@acme.io')}", json=body)
    assert_problem(response, 400, "Invalid Resource")


def test_unknown_merge_field_is_a_400(api: Api, server: MailchimpStandIn) -> None:
    problem = assert_problem(api.put_member("a@acme.io", merge_fields={"PLAN": "pro"}), 400, "Invalid Resource")
    assert problem["detail"] == "Your merge fields were invalid."
    assert problem["errors"] == [{"field": "PLAN", "message": 'Merge field "PLAN" does not exist on this audience'}]
    assert server.member(LIST, "a@acme.io") is None
    assert server.contract_violations == []  # a business rule, not a schema violation


def test_merge_values_are_checked_by_type(api: Api) -> None:
    for body in (
        {"name": "LTV", "tag": "LTV", "type": "number"},
        {"name": "Since", "tag": "SINCE", "type": "date"},
        {"name": "Tier", "tag": "TIER", "type": "dropdown", "options": {"choices": ["gold", "silver"]}},
    ):
        assert api("POST", f"/lists/{LIST}/merge-fields", json=body).status_code == 200
    good = {"LTV": "12.50", "SINCE": "2024-02-29", "TIER": "gold", "BIRTHDAY": "12/31", "FNAME": "x" * 255}
    response = api.put_member("ok@acme.io", merge_fields=good)
    assert response.status_code == 200, response.text
    merge = response.json()["merge_fields"]
    assert merge["LTV"] == 12.5 and merge["SINCE"] == "2024-02-29" and merge["BIRTHDAY"] == "12/31"
    assert api.put_member("ok2@acme.io", merge_fields={"SINCE": "02/28/2024"}).json()["merge_fields"]["SINCE"] == (
        "2024-02-28"
    )
    bad = {
        "LTV": "twelve",
        "SINCE": "2024-02-30",
        "TIER": "bronze",
        "BIRTHDAY": "1990-12-31",
        "FNAME": "x" * 256,
    }
    problem = assert_problem(api.put_member("bad@acme.io", merge_fields=bad), 400, "Invalid Resource")
    assert {e["field"] for e in problem["errors"]} == set(bad)
    address = {"ADDRESS": {"addr1": "1 Main St", "city": "Springfield"}}  # no state / zip
    assert_problem(api.put_member("addr@acme.io", merge_fields=address), 400, "Invalid Resource")


def test_null_merge_value_is_a_contract_violation(api: Api, server: MailchimpStandIn) -> None:
    assert_problem(api.put_member("n@acme.io", merge_fields={"FNAME": None}), 400, "Invalid Resource")
    assert server.contract_violations[-1]["errors"][0].startswith("$.merge_fields.FNAME")


def test_wrongly_typed_body_is_recorded_as_a_contract_violation(api: Api, server: MailchimpStandIn) -> None:
    problem = assert_problem(api.put_member("v@acme.io", vip="yes"), 400, "Invalid Resource")
    assert problem["errors"] == [{"field": "vip", "message": "'yes' is not of type 'boolean'"}]
    assert server.contract_violations == [
        {
            "method": "PUT",
            "path": f"/3.0/lists/{LIST}/members/{h('v@acme.io')}",
            "errors": ["$.vip: 'yes' is not of type 'boolean'"],
            "body": {"email_address": "v@acme.io", "status_if_new": "transactional", "vip": "yes"},
        }
    ]
    assert server.member(LIST, "v@acme.io") is None


@pytest.mark.parametrize(
    "email",
    [
        "not-an-email",
        "a@b",
        "two@@acme.io",
        "test@acme.io",
        "fake@gmail.com",
        "asdf@acme.io",
        "jenny@example.com",
        "someone@mailinator.com",
        "x@test.com",
        "a b@acme.io",
        "a@acme.test",
    ],
)
def test_fake_or_invalid_emails_are_refused(api: Api, email: str) -> None:
    response = api(
        "PUT",
        f"/lists/{LIST}/members/{h(email)}",
        json={"email_address": email, "status_if_new": "transactional"},
    )
    problem = assert_problem(response, 400, "Invalid Resource")
    assert problem["detail"] == f"{email} looks fake or invalid, please enter a real email address."
    assert "example.com" in FAKE_EMAIL_DOMAINS


@pytest.mark.parametrize("email", ["jenny.rosen@acme.io", "test+1@gmail.com", "o'brien@mail.co.uk"])
def test_real_looking_emails_are_accepted(api: Api, email: str) -> None:
    assert api.put_member(email).status_code == 200


def test_forgotten_email_cannot_come_back(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "gdpr@acme.io", status="subscribed")
    server.forget("GDPR@acme.io")
    assert server.member(LIST, "gdpr@acme.io") is None
    problem = assert_problem(api.put_member("gdpr@acme.io"), 400, "Forgotten Email Not Subscribed")
    assert "gdpr@acme.io" in problem["detail"]
    assert api.put_member("kept@acme.io").status_code == 200


def test_list_members_with_paging(api: Api, server: MailchimpStandIn) -> None:
    for i in range(5):
        server.add_member(LIST, f"m{i}@acme.io", status="subscribed" if i % 2 else "unsubscribed")
    page = api("GET", f"/lists/{LIST}/members", params={"count": 2, "offset": 2}).json()
    assert [m["email_address"] for m in page["members"]] == ["m2@acme.io", "m3@acme.io"]
    assert page["total_items"] == 5 and page["list_id"] == LIST
    assert_doc_shaped("GET", "/lists/{list_id}/members", 200, page)
    subscribed = api("GET", f"/lists/{LIST}/members", params={"status": "subscribed"}).json()
    assert subscribed["total_items"] == 2
    assert len(server.members(LIST)) == 5


# -- tags --------------------------------------------------------------------------------------------------
def test_tags_active_and_inactive(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "t@acme.io", status="subscribed", tags={"old"})
    body = {"tags": [{"name": "vip", "status": "active"}, {"name": "old", "status": "inactive"}]}
    response = api("POST", f"/lists/{LIST}/members/{h('t@acme.io')}/tags", json=body)
    assert response.status_code == 204 and response.content == b""
    assert server.member_tags(LIST, "t@acme.io") == {"vip"}
    tags = api("GET", f"/lists/{LIST}/members/{h('t@acme.io')}/tags").json()
    assert [t["name"] for t in tags["tags"]] == ["vip"] and tags["total_items"] == 1
    member = server.member(LIST, "t@acme.io")
    assert member["tags_count"] == 1 and member["tags"][0]["name"] == "vip"
    again = {"tags": [{"name": "never-had", "status": "inactive"}, {"name": "VIP", "status": "active"}]}
    assert api("POST", f"/lists/{LIST}/members/{h('t@acme.io')}/tags", json=again).status_code == 204
    assert server.member_tags(LIST, "t@acme.io") == {"vip"}


def test_tags_on_unknown_member_and_bad_status(api: Api, server: MailchimpStandIn) -> None:
    body = {"tags": [{"name": "vip", "status": "active"}]}
    assert_problem(api("POST", f"/lists/{LIST}/members/{h('no@acme.io')}/tags", json=body), 404, "Resource Not Found")
    server.add_member(LIST, "t@acme.io")
    bad = {"tags": [{"name": "vip", "status": "on"}]}
    assert_problem(api("POST", f"/lists/{LIST}/members/{h('t@acme.io')}/tags", json=bad), 400, "Invalid Resource")
    assert server.member_tags(LIST, "t@acme.io") == set()


def test_tags_are_static_segments_listed_created_and_set_in_bulk(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "a@acme.io", tags={"vip"})
    server.add_member(LIST, "b@acme.io", status="unsubscribed")
    listed = api("GET", f"/lists/{LIST}/segments", params={"type": "static"}).json()
    assert [(s["name"], s["member_count"], s["type"]) for s in listed["segments"]] == [("vip", 1, "static")]
    assert_doc_shaped("GET", "/lists/{listId}/segments", 200, listed)
    created = api("POST", f"/lists/{LIST}/segments", json={"name": "spend:high", "static_segment": []})
    assert created.status_code == 200 and created.json()["member_count"] == 0
    assert_problem(
        api("POST", f"/lists/{LIST}/segments", json={"name": "VIP", "static_segment": []}), 400, "Invalid Resource"
    )
    segment = created.json()["id"]
    body = {"members_to_add": ["a@acme.io", "B@acme.io", "nobody@acme.io"], "members_to_remove": []}
    answer = api("POST", f"/lists/{LIST}/segments/{segment}", json=body).json()
    assert (answer["total_added"], answer["error_count"]) == (2, 1)  # any status can be tagged
    assert answer["errors"][0]["email_addresses"] == ["nobody@acme.io"]
    assert_doc_shaped("POST", "/lists/{listId}/segments/{segmentId}", 200, answer)
    assert server.member_tags(LIST, "b@acme.io") == {"spend:high"}
    assert server.member(LIST, "b@acme.io")["status"] == "unsubscribed"
    again = api(
        "POST",
        f"/lists/{LIST}/segments/{segment}",
        json={"members_to_add": ["a@acme.io"], "members_to_remove": ["b@acme.io"]},
    ).json()
    assert (again["total_added"], again["total_removed"]) == (0, 1)  # already tagged: nothing to add
    assert server.member_tags(LIST, "a@acme.io") == {"vip", "spend:high"}
    assert server.member_tags(LIST, "b@acme.io") == set()
    too_many = {"members_to_add": [f"p{i}@acme.io" for i in range(501)]}
    assert_problem(api("POST", f"/lists/{LIST}/segments/{segment}", json=too_many), 400, "Invalid Resource")
    assert_problem(api("POST", f"/lists/{LIST}/segments/999", json={"members_to_add": []}), 404, "Resource Not Found")


# -- batch -------------------------------------------------------------------------------------------------
def test_batch_over_500_members_is_refused(api: Api, server: MailchimpStandIn) -> None:
    members = [{"email_address": f"b{i}@acme.io", "status": "transactional"} for i in range(501)]
    assert_problem(api("POST", f"/lists/{LIST}", json={"members": members}), 400, "Invalid Resource")
    assert server.members(LIST) == []
    ok = api("POST", f"/lists/{LIST}", json={"members": members[:500]})
    assert ok.status_code == 200 and ok.json()["total_created"] == 500


def test_batch_without_update_existing_reports_existing_members(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "old@acme.io", status="unsubscribed")
    members = [
        {"email_address": "old@acme.io", "status": "subscribed"},
        {"email_address": "new@acme.io", "status": "transactional", "merge_fields": {"FNAME": "N"}},
        {"email_address": "test@acme.io", "status": "subscribed"},
    ]
    response = api("POST", f"/lists/{LIST}", json={"members": members, "update_existing": False})
    assert response.status_code == 200
    body = response.json()
    assert_doc_shaped("POST", "/lists/{list_id}", 200, body)
    assert body["total_created"] == 1 and body["total_updated"] == 0 and body["error_count"] == 2
    assert [m["email_address"] for m in body["new_members"]] == ["new@acme.io"]
    codes = {e["email_address"]: e["error_code"] for e in body["errors"]}
    assert codes == {"old@acme.io": "ERROR_CONTACT_EXISTS", "test@acme.io": "ERROR_GENERIC"}
    assert server.member(LIST, "old@acme.io")["status"] == "unsubscribed"


def test_batch_sets_the_tags_of_the_members_it_creates_and_answers_only_the_fields_asked(
    api: Api, server: MailchimpStandIn
) -> None:
    server.add_member(LIST, "old@acme.io", status="subscribed")
    members = [
        {"email_address": "new@acme.io", "status": "transactional", "tags": ["rfm:loyal", "spend:high"]},
        {"email_address": "old@acme.io", "status": "subscribed", "tags": ["rfm:lost"]},
    ]
    fields = {"fields": "total_created,error_count,errors"}
    response = api("POST", f"/lists/{LIST}", json={"members": members, "update_existing": False}, params=fields)
    body = response.json()
    assert set(body) == {"total_created", "error_count", "errors"}  # no member objects rendered or sent
    assert body["total_created"] == 1 and [e["error_code"] for e in body["errors"]] == ["ERROR_CONTACT_EXISTS"]
    assert server.member_tags(LIST, "new@acme.io") == {"rfm:loyal", "spend:high"}
    assert server.member_tags(LIST, "old@acme.io") == set()  # an existing member is not touched
    assert {s["name"] for s in server.segments(LIST)} >= {"rfm:loyal", "spend:high"}
    full = api("POST", f"/lists/{LIST}", json={"members": [{"email_address": "n2@acme.io", "status": "pending"}]})
    assert [m["email_address"] for m in full.json()["new_members"]] == ["n2@acme.io"]


def test_batch_update_existing_overwrites_status_the_documented_trap(api: Api, server: MailchimpStandIn) -> None:
    server.add_member(LIST, "unsub@acme.io", status="unsubscribed")
    server.add_member(LIST, "sub@acme.io", status="subscribed")
    server.add_member(LIST, "tx@acme.io", status="transactional")
    members = [
        {"email_address": "unsub@acme.io", "status": "subscribed"},
        {"email_address": "sub@acme.io", "status": "transactional"},
        {"email_address": "tx@acme.io", "status": "subscribed", "merge_fields": {"FNAME": "T"}},
    ]
    body = api("POST", f"/lists/{LIST}", json={"members": members, "update_existing": True}).json()
    assert body["total_updated"] == 2 and body["error_count"] == 1
    assert body["errors"][0]["email_address"] == "unsub@acme.io"
    assert "compliance state" in body["errors"][0]["error"]
    assert server.member(LIST, "unsub@acme.io")["status"] == "unsubscribed"
    assert server.member(LIST, "sub@acme.io")["status"] == "transactional"  # silently changed: the trap
    assert server.member(LIST, "tx@acme.io")["status"] == "subscribed"
    assert server.member(LIST, "tx@acme.io")["merge_fields"]["FNAME"] == "T"


def test_batch_member_errors_do_not_stop_the_others(api: Api, server: MailchimpStandIn) -> None:
    server.forget("forgotten@acme.io")
    members = [
        {"email_address": "forgotten@acme.io", "status": "transactional"},
        {"email_address": "nostatus@acme.io"},
        {"email_address": "badmerge@acme.io", "status": "transactional", "merge_fields": {"NOPE": "x"}},
        {"email_address": "fine@acme.io", "status": "transactional", "tags": ["vip"]},
    ]
    body = api("POST", f"/lists/{LIST}", json={"members": members}).json()
    assert body["total_created"] == 1 and body["error_count"] == 3
    assert server.member_tags(LIST, "fine@acme.io") == {"vip"}
    fields = {e["email_address"]: e["field"] for e in body["errors"]}
    assert fields["nostatus@acme.io"] == "status" and fields["badmerge@acme.io"] == "NOPE"


def test_batch_body_with_wrong_types_is_refused_whole(api: Api, server: MailchimpStandIn) -> None:
    body = {"members": [{"email_address": "a@acme.io", "status": "subscribed"}], "update_existing": "true"}
    problem = assert_problem(api("POST", f"/lists/{LIST}", json=body), 400, "Invalid Resource")
    assert problem["errors"][0]["field"] == "update_existing"
    assert len(server.contract_violations) == 1 and server.members(LIST) == []


# -- connections -------------------------------------------------------------------------------------------
def test_more_than_max_connections_in_flight_get_429() -> None:
    with MailchimpStandIn(latency=0.3, max_connections=10) as server:
        base = server.url + "/3.0/ping"

        def ping(_: int) -> int:
            return requests.get(base, auth=("u", DEFAULT_API_KEY), timeout=10).status_code

        with ThreadPoolExecutor(max_workers=11) as pool:
            statuses = list(pool.map(ping, range(11)))
        assert statuses.count(429) >= 1
        assert statuses.count(200) >= 1
        assert server.max_in_flight_seen >= 11
        assert ping(0) == 200  # the window closes with the requests


def test_ten_at_once_are_fine() -> None:
    with MailchimpStandIn(latency=0.2, max_connections=10) as server:
        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(
                pool.map(
                    lambda _: (
                        requests.get(server.url + "/3.0/ping", auth=("u", DEFAULT_API_KEY), timeout=10).status_code
                    ),
                    range(10),
                )
            )
        assert statuses == [200] * 10
        assert server.max_in_flight_seen <= 10
