"""Keys never leave the environment: one real nightly run (`dagster job execute`, the stand-ins over HTTP) with
distinctive key values, then every place a run writes to is searched for them: the command's output, the Dagster
instance's storage (run and event-log databases, compressed snapshots included, compute logs), the dbt logs and
target folder, and the warehouse (every value of every table, and the file's bytes). Customer emails are masked
in what the run prints and logs. Also: two Stripe customers whose address differs only in case and padding are
one contact at each destination, end to end."""

from __future__ import annotations

import base64
import os
import sqlite3
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from sandbox.customerio_api import CustomerIOStandIn
from sandbox.environment import AUDIENCE_ID, StandIns
from sandbox.mailchimp_api import MailchimpStandIn
from sandbox.stripe_api import StripeStandIn
from tests.integration.pipeline import Pipeline
from tests.integration.scenario import build_scenario

REPO_ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEY = "sk_test_SENTINELstripe9f3Kq2Zr"
MAILCHIMP_KEY = "SENTINELmailchimp7Hx2Lp0abcdef-us21"
CIO_SITE_ID = "SENTINELsite4Zt8Wq"
CIO_KEY = "SENTINELtrack6Wm1RvXy"
WEBHOOK_TOKEN = "SENTINELhook5YqB3"
WEBHOOK_URL = f"http://127.0.0.1:9/services/T0000/B0000/{WEBHOOK_TOKEN}"  # alerts: only a failed run posts


def needles() -> dict[str, bytes]:
    """Each secret, and the forms it travels in (the basic-auth header values)."""
    basic = {
        "mailchimp basic auth": base64.b64encode(f"stripe-audiences:{MAILCHIMP_KEY}".encode()),
        "customerio basic auth": base64.b64encode(f"{CIO_SITE_ID}:{CIO_KEY}".encode()),
    }
    plain = {
        "STRIPE_API_KEY": STRIPE_KEY,
        "MAILCHIMP_API_KEY": MAILCHIMP_KEY.removesuffix("-us21"),  # the secret part, whatever the dc
        "CUSTOMERIO_SITE_ID": CIO_SITE_ID,
        "CUSTOMERIO_API_KEY": CIO_KEY,
        "ALERT_WEBHOOK_URL": WEBHOOK_TOKEN,
    }
    return {**{k: v.encode() for k, v in plain.items()}, **basic}


class Run:
    def __init__(self, pipeline: Pipeline, output: str, started: float, emails: list[str]) -> None:
        self.pipeline = pipeline
        self.output = output
        self.started = started
        self.emails = emails

    @property
    def dagster_home(self) -> Path:
        return Path(self.pipeline.env["DAGSTER_HOME"])


@pytest.fixture(scope="module")
def run(dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    scenario = build_scenario(background_customers=12)
    account = scenario.account
    # One address, two Stripe customers: differing in case and padding (the second spends more).
    hank = account.add_customer(email="Hank.Twin@Gmail.com", name="Hank One", created=account.now - 90 * 86_400)
    twin = account.add_customer(email="  hank.twin@gmail.COM ", name="Hank Two", created=account.now - 80 * 86_400)
    account.add_charge(hank["id"], 1000, "usd", created=account.now - 30 * 86_400)
    account.add_charge(twin["id"], 9000, "usd", created=account.now - 20 * 86_400)
    scenario.hank, scenario.twin = hank["id"], twin["id"]  # type: ignore[attr-defined]
    emails = [c["email"] for c in account.customers.values() if c.get("email")]
    account.start_clock()
    stripe = StripeStandIn(account, api_key=STRIPE_KEY)
    mailchimp = MailchimpStandIn(api_key=MAILCHIMP_KEY)
    customerio = CustomerIOStandIn(site_id=CIO_SITE_ID, api_key=CIO_KEY)
    mailchimp.create_audience(list_id=AUDIENCE_ID, name="Stripe customers")
    for server in (stripe, mailchimp, customerio):
        server.start()
    try:
        pipeline = Pipeline(scenario, StandIns(stripe, mailchimp, customerio), tmp_path_factory.mktemp("secrets"))
        pipeline.env.update(
            {
                "STRIPE_API_KEY": STRIPE_KEY,
                "MAILCHIMP_API_KEY": MAILCHIMP_KEY,
                "CUSTOMERIO_SITE_ID": CIO_SITE_ID,
                "CUSTOMERIO_API_KEY": CIO_KEY,
                "ALERT_WEBHOOK_URL": WEBHOOK_URL,
            }
        )
        started = time.time() - 1
        yield Run(pipeline, pipeline.run(), started, emails)
    finally:
        for server in (stripe, mailchimp, customerio):
            server.stop()


def _leaks(data: bytes) -> list[str]:
    return [name for name, needle in needles().items() if needle in data]


def _sqlite_values(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every value of every table of a SQLite file, compressed blobs (Dagster's snapshots) decompressed."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in con.execute(f'select * from "{table}"'):
                for value in row:
                    if isinstance(value, str):
                        yield table, value.encode()
                    elif isinstance(value, bytes):
                        try:
                            yield table, zlib.decompress(value)
                        except zlib.error:
                            yield table, value
    finally:
        con.close()


def test_the_run_worked_with_the_sentinel_keys(run: Run) -> None:
    """The keys were really used (else finding none of them would prove nothing)."""
    stand_ins = run.pipeline.stand_ins
    assert any(r.method == "GET" and r.path.startswith("/v1/customers") for r in stand_ins.stripe.requests)
    assert stand_ins.mailchimp.members(AUDIENCE_ID)
    assert stand_ins.customerio.persons()
    assert not stand_ins.mailchimp.contract_violations and not stand_ins.customerio.contract_violations


def test_no_key_in_the_output_or_the_dagster_instance(run: Run) -> None:
    assert _leaks(run.output.encode()) == []
    files = [p for p in run.dagster_home.rglob("*") if p.is_file()]
    tables: set[str] = set()
    for path in files:
        assert _leaks(path.read_bytes()) == [], path
        if path.suffix == ".db":
            for table, value in _sqlite_values(path):
                assert _leaks(value) == [], (path, table)
                if b"nightly_sync" in value:  # the search reads the job's snapshot and its events
                    tables.add(table)
    assert {"snapshots", "event_logs"} <= tables


def test_no_key_in_the_dbt_logs_or_target(run: Run) -> None:
    warehouse = run.pipeline.warehouse
    folders = [
        REPO_ROOT / "dbt_project" / "logs",
        REPO_ROOT / "dbt_project" / "target",
        warehouse.parent / f".{warehouse.stem}.dbt-target",  # the job's dbt target (and logs), beside the warehouse
    ]
    written = [p for folder in folders for p in folder.rglob("*") if p.is_file() and p.stat().st_mtime >= run.started]
    assert written  # dbt ran and wrote there
    for path in written:
        assert _leaks(path.read_bytes()) == [], path


def test_no_key_in_the_warehouse(run: Run) -> None:
    warehouse = run.pipeline.warehouse
    for path in [warehouse, *warehouse.parent.glob(warehouse.name + ".*")]:  # and a .wal, if any
        assert _leaks(path.read_bytes()) == [], path
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type in ('VARCHAR', 'JSON', 'BLOB') or data_type like '%[]' or data_type like 'STRUCT%'"
            " or data_type like 'MAP%'"
        ).fetchall()
        assert len(columns) > 20
        for schema, table, column in columns:
            (text,) = con.execute(
                f'select string_agg("{column}"::varchar, chr(10)) from "{schema}"."{table}"'
            ).fetchone()
            assert _leaks((text or "").encode()) == [], (schema, table, column)
    finally:
        con.close()


def test_customer_emails_are_masked_in_what_the_run_prints_and_logs(run: Run) -> None:
    logged = [run.output]
    for path in run.dagster_home.rglob("*"):
        if path.is_file() and path.suffix == ".db":
            logged += [v.decode("utf-8", "replace") for table, v in _sqlite_values(path) if table == "event_logs"]
        elif path.is_file() and path.suffix in (".out", ".err", ".complete", ".log"):
            logged.append(path.read_text(errors="replace"))
    text = "\n".join(logged).lower()
    rejected = "test@example.com"  # refused by Mailchimp: its reason, with the address, is in the run's metadata
    assert "t***@example.com" in text
    for email in [*run.emails, rejected]:
        address = email.strip().lower()
        if "@" in address:
            assert address not in text, address


def test_two_customers_sharing_an_address_are_one_contact_at_each_destination(run: Run) -> None:
    stand_ins, scenario = run.pipeline.stand_ins, run.pipeline.scenario
    members = [m for m in stand_ins.mailchimp.members(AUDIENCE_ID) if m["email_address"] == "hank.twin@gmail.com"]
    assert len(members) == 1
    assert members[0]["merge_fields"]["LTV"] == 90  # the customer who spent more holds the address
    (reason,) = run.pipeline.query(
        "select reason from sync.rejections where destination = 'mailchimp' and record_key = ?", [scenario.hank]
    )[0]
    assert reason == f"duplicate email: merged into contact of {scenario.twin}"
    holders = [p for p in stand_ins.customerio.persons().values() if p.get("email") == "hank.twin@gmail.com"]
    assert [p["id"] for p in holders] == [scenario.twin]
    assert "email" not in stand_ins.customerio.person(scenario.hank)  # type: ignore[operator]
    assert stand_ins.customerio.attribute_update_failures == []


def test_the_warehouse_is_private(run: Run) -> None:
    assert os.stat(run.pipeline.warehouse).st_mode & 0o077 == 0
