"""Build the dbt project against a small hand-made Stripe warehouse and check the marts by hand.

The ``stripe.*`` tables follow ``audiences/stripe_streams.py`` (typed columns; ``is_deleted`` and
``deleted_at`` on every object table, i.e. all but ``events``; ``raw`` JSON; ``_extracted_at``;
amounts in minor units). Expected numbers are worked out in the comments next to the data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"

DDL = """
create schema stripe;
create table stripe.customers (
  id VARCHAR primary key, email VARCHAR, name VARCHAR, currency VARCHAR, delinquent BOOLEAN,
  metadata JSON, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON,
  _extracted_at TIMESTAMPTZ
);
create table stripe.charges (
  id VARCHAR primary key, customer_id VARCHAR, amount BIGINT, amount_captured BIGINT,
  amount_refunded BIGINT, currency VARCHAR, status VARCHAR, paid BOOLEAN, captured BOOLEAN,
  refunded BOOLEAN, disputed BOOLEAN, failure_code VARCHAR, invoice_id VARCHAR,
  payment_intent_id VARCHAR, balance_transaction_id VARCHAR, bt_amount BIGINT, bt_currency VARCHAR,
  bt_exchange_rate DOUBLE, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON,
  _extracted_at TIMESTAMPTZ
);
create table stripe.subscriptions (
  id VARCHAR primary key, customer_id VARCHAR, status VARCHAR, currency VARCHAR,
  cancel_at_period_end BOOLEAN, start_date TIMESTAMPTZ, canceled_at TIMESTAMPTZ, ended_at TIMESTAMPTZ,
  trial_end TIMESTAMPTZ, items JSON, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ,
  raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.products (
  id VARCHAR primary key, name VARCHAR, active BOOLEAN, created TIMESTAMPTZ, updated TIMESTAMPTZ,
  is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.prices (
  id VARCHAR primary key, product_id VARCHAR, active BOOLEAN, currency VARCHAR, unit_amount BIGINT,
  type VARCHAR, recurring_interval VARCHAR, recurring_interval_count INTEGER, created TIMESTAMPTZ,
  is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.refunds (
  id VARCHAR primary key, charge_id VARCHAR, payment_intent_id VARCHAR, amount BIGINT,
  currency VARCHAR, status VARCHAR, reason VARCHAR, created TIMESTAMPTZ, is_deleted BOOLEAN,
  deleted_at TIMESTAMPTZ, raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.disputes (
  id VARCHAR primary key, charge_id VARCHAR, amount BIGINT, currency VARCHAR, status VARCHAR,
  reason VARCHAR, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON,
  _extracted_at TIMESTAMPTZ
);
create table stripe.checkout_sessions (
  id VARCHAR primary key, customer_id VARCHAR, payment_intent_id VARCHAR, invoice_id VARCHAR, mode VARCHAR,
  status VARCHAR, payment_status VARCHAR, currency VARCHAR, amount_total BIGINT, customer_email VARCHAR,
  consent_promotions VARCHAR, line_items JSON, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ,
  raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.invoices (
  id VARCHAR primary key, customer_id VARCHAR, subscription_id VARCHAR, status VARCHAR, billing_reason VARCHAR,
  collection_method VARCHAR, currency VARCHAR, amount_due BIGINT, amount_paid BIGINT, amount_remaining BIGINT,
  total BIGINT, number VARCHAR, lines JSON, lines_has_more BOOLEAN, paid_at TIMESTAMPTZ, created TIMESTAMPTZ,
  is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON, _extracted_at TIMESTAMPTZ
);
create table stripe.invoice_payments (
  id VARCHAR primary key, invoice_id VARCHAR, payment_type VARCHAR, payment_intent_id VARCHAR, charge_id VARCHAR,
  status VARCHAR, is_default BOOLEAN, currency VARCHAR, amount_paid BIGINT, amount_requested BIGINT,
  paid_at TIMESTAMPTZ, created TIMESTAMPTZ, is_deleted BOOLEAN, deleted_at TIMESTAMPTZ, raw JSON,
  _extracted_at TIMESTAMPTZ
);
create table stripe.events (
  id VARCHAR primary key, type VARCHAR, object_type VARCHAR, object_id VARCHAR, api_version VARCHAR,
  livemode BOOLEAN, previous_attributes JSON, created TIMESTAMPTZ, raw JSON, _extracted_at TIMESTAMPTZ
);
"""

# id, email, name, metadata, created
CUSTOMERS = [
    # 5000 JPY x 0.0067 = 33.50 USD; 100.00 EUR captured - 25.00 refunded = 75.00 x 1.08 = 81.00 USD;
    # a failed and an uncaptured charge add nothing; a fully refunded one adds 0 and is no purchase.
    # 114.50 from 2 purchases: repeat, medium.
    ("cus_alice", "  Alice@Example.COM ", "Alice", {"marketing_opt_in": " YES "}, "2023-12-01"),
    # 12.345 KWD x 3.25 = 40.12125 -> 40.12 USD from 1 purchase: one_time, low.
    ("cus_bob", "bob@example", "Bob", {"marketing_opt_in": "no"}, "2023-12-02"),
    # No charges at all.
    ("cus_carol", None, "Carol", None, "2023-12-03"),
    # 5 x 200.00 USD = 1000.00 exactly: frequent (5), high (1000).
    ("cus_dave", "dave@example.org", "Dave", {"marketing_opt_in": "1", "plan": "pro"}, "2023-12-04"),
    # Only a fully refunded charge: spend 0, no purchase, currency from the charge.
    ("cus_erin", "   ", "Erin", {"marketing_opt_in": "TRUE"}, "2023-12-05"),
]

USD = ("usd", None)  # settlement currency, exchange rate (NULL: charge already in USD)
# id, customer, currency, amount, captured amount, refunded amount, status, captured, (bt currency,
# rate), created
CHARGES = [
    ("ch_a_jpy", "cus_alice", "jpy", 5000, 5000, 0, "succeeded", True, ("usd", 0.0067), "2024-01-10 09:00"),
    ("ch_a_eur", "cus_alice", "eur", 10000, 10000, 2500, "succeeded", True, ("usd", 1.08), "2024-02-01 12:30"),
    ("ch_a_failed", "cus_alice", "usd", 5000, 0, 0, "failed", False, (None, None), "2024-03-01 00:00"),
    ("ch_a_uncaptured", "cus_alice", "usd", 7000, 0, 0, "succeeded", False, (None, None), "2024-03-02 00:00"),
    ("ch_a_refunded", "cus_alice", "usd", 3000, 3000, 3000, "succeeded", True, USD, "2024-03-05 00:00"),
    ("ch_b_kwd", "cus_bob", "kwd", 12345, 12345, 0, "succeeded", True, ("usd", 3.25), "2024-01-15 00:00"),
    *[
        (f"ch_d_{i}", "cus_dave", "usd", 20000, 20000, 0, "succeeded", True, USD, f"2024-0{i}-01 00:00")
        for i in range(1, 6)
    ],
    # Lost to a dispute: deducted whole, so it adds 0 and is no purchase.
    ("ch_d_disputed", "cus_dave", "usd", 15000, 15000, 0, "succeeded", True, USD, "2024-05-15 00:00"),
    ("ch_e_refunded", "cus_erin", "usd", 4200, 4200, 4200, "succeeded", True, USD, "2024-04-01 00:00"),
    ("ch_guest", None, "usd", 999, 999, 0, "succeeded", True, USD, "2024-04-02 00:00"),
]

# id, charge, currency, amount (minor units), status, reason, created. ch_a_eur's two refunds add up to
# its 25.00 EUR `amount_refunded`; the failed JPY refund never reduced ch_a_jpy.
REFUNDS = [
    ("re_a_eur_1", "ch_a_eur", "eur", 1000, "succeeded", "requested_by_customer", "2024-02-03 10:00"),
    ("re_a_eur_2", "ch_a_eur", "EUR", 1500, "succeeded", None, "2024-02-10 10:00"),
    ("re_a_jpy", "ch_a_jpy", "jpy", 2500, "failed", "requested_by_customer", "2024-01-11 09:00"),
    ("re_e_usd", "ch_e_refunded", "usd", 4200, "succeeded", "fraudulent", "2024-04-02 08:00"),
]

# id, charge, currency, amount (minor units), status, reason, created. Only the lost one is deducted (from
# ch_d_disputed, which then adds 0); won and open disputes change nothing.
DISPUTES = [
    ("dp_d_1", "ch_d_disputed", "usd", 15000, "lost", "fraudulent", "2024-05-20 00:00"),
    ("dp_b_kwd", "ch_b_kwd", "kwd", 12345, "won", "product_not_received", "2024-02-01 00:00"),
    ("dp_d_2", "ch_d_2", "usd", 20000, "needs_response", "duplicate", "2024-02-20 00:00"),
]

# id, type, object type, object id, livemode, previous attributes, created
EVENTS = [
    (
        "evt_cus_updated",
        "customer.updated",
        "customer",
        "cus_alice",
        False,
        {"email": "alice@old.example"},
        "2024-01-05 00:00",
    ),
    (
        "evt_refunded",
        "charge.refunded",
        "charge",
        "ch_a_eur",
        False,
        {"amount_refunded": 1000, "refunds": {}},
        "2024-02-10 10:00",
    ),
    ("evt_cus_deleted", "customer.deleted", "customer", "cus_deleted", None, None, "2024-05-01 12:00"),
]


def _minor_to_bt(amount_captured: int, currency: str, rate: float | None) -> int | None:
    """Stripe's balance transaction amount in USD cents (only filled in for realism)."""
    exponent = {"jpy": 0, "kwd": 3}.get(currency, 2)
    return round(amount_captured / 10**exponent * (rate or 1) * 100)


def build_warehouse(path: Path) -> None:
    con = duckdb.connect(str(path))
    try:
        con.execute(DDL)
        extracted = "2024-06-01 00:00:00+00"
        for cid, email, name, metadata, created in CUSTOMERS:
            raw = {"id": cid, "object": "customer", "email": email, "name": name, "metadata": metadata}
            con.execute(
                "insert into stripe.customers values"
                " (?, ?, ?, 'usd', false, ?::JSON, ?::TIMESTAMPTZ, false, null, ?::JSON, ?)",
                [
                    cid,
                    email,
                    name,
                    None if metadata is None else json.dumps(metadata),
                    f"{created} 00:00:00+00",
                    json.dumps(raw),
                    extracted,
                ],
            )
        con.execute(
            "insert into stripe.customers (id, is_deleted, deleted_at, raw, _extracted_at)"
            " values (?, true, '2024-05-01 12:00:00+00', ?::JSON, ?)",
            ["cus_deleted", json.dumps({"id": "cus_deleted", "object": "customer", "deleted": True}), extracted],
        )
        disputed = {charge for _, charge, *_ in DISPUTES}
        for cid, customer, currency, amount, captured_amount, refunded, status, captured, bt, created in CHARGES:
            bt_currency, rate = bt
            con.execute(
                "insert into stripe.charges values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null, null, ?, ?, ?, ?,"
                " ?::TIMESTAMPTZ, false, null, ?::JSON, ?)",
                [
                    cid,
                    customer,
                    amount,
                    captured_amount,
                    refunded,
                    currency,
                    status,
                    status == "succeeded",
                    captured,
                    refunded > 0 and refunded == captured_amount,
                    cid in disputed,
                    "card_declined" if status == "failed" else None,
                    f"txn_{cid}" if bt_currency else None,
                    _minor_to_bt(captured_amount, currency, rate) if bt_currency else None,
                    bt_currency,
                    rate,
                    f"{created}:00+00",
                    json.dumps({"id": cid, "object": "charge"}),
                    extracted,
                ],
            )
        con.execute(
            """
            insert into stripe.products values
              ('prod_pro', 'Pro plan', true, '2023-01-01 00:00:00+00', '2023-06-01 00:00:00+00',
               false, null, '{}', now()),
              ('prod_legacy', 'Legacy plan', false, '2022-01-01 00:00:00+00', '2022-06-01 00:00:00+00',
               true, '2023-03-01 08:30:00+00', '{}', now());
            insert into stripe.prices values
              ('price_pro_usd', 'prod_pro', true, 'usd', 1999, 'recurring', 'month', 1,
               '2023-01-01 00:00:00+00', false, null, '{}', now()),
              ('price_pro_jpy', 'prod_pro', true, 'jpy', 3000, 'one_time', null, null,
               '2023-01-01 00:00:00+00', null, null, '{}', now());
            insert into stripe.subscriptions values
              ('sub_alice', 'cus_alice', 'active', 'usd', false, '2024-01-01 00:00:00+00', null, null,
               null, '[{"id": "si_alice", "quantity": 1, "price": {"id": "price_pro_usd", "currency": "usd",
               "unit_amount": 1999, "recurring": {"interval": "month", "interval_count": 1}}}]',
               '2024-01-01 00:00:00+00', false, null,
               '{}', now()),
              ('sub_dave', 'cus_dave', 'canceled', 'usd', false, '2024-01-01 00:00:00+00',
               '2024-05-01 00:00:00+00', '2024-05-01 00:00:00+00', null, '[]',
               '2024-01-01 00:00:00+00', false, null, '{}', now());
            """
        )
        for rid, charge, currency, amount, status, reason, created in REFUNDS:
            con.execute(
                "insert into stripe.refunds values (?, ?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, false, null, ?::JSON, ?)",
                [
                    rid,
                    charge,
                    f"pi_{charge}",
                    amount,
                    currency,
                    status,
                    reason,
                    f"{created}:00+00",
                    json.dumps({"id": rid, "object": "refund", "charge": charge}),
                    extracted,
                ],
            )
        for did, charge, currency, amount, status, reason, created in DISPUTES:
            con.execute(
                "insert into stripe.disputes values (?, ?, ?, ?, ?, ?, ?::TIMESTAMPTZ, false, null, ?::JSON, ?)",
                [
                    did,
                    charge,
                    amount,
                    currency,
                    status,
                    reason,
                    f"{created}:00+00",
                    json.dumps({"id": did, "object": "dispute", "charge": charge}),
                    extracted,
                ],
            )
        for eid, event_type, object_type, object_id, livemode, previous, created in EVENTS:
            con.execute(
                "insert into stripe.events values (?, ?, ?, ?, '2024-06-20', ?, ?::JSON, ?::TIMESTAMPTZ, ?::JSON, ?)",
                [
                    eid,
                    event_type,
                    object_type,
                    object_id,
                    livemode,
                    None if previous is None else json.dumps(previous),
                    f"{created}:00+00",
                    json.dumps({"id": eid, "object": "event", "type": event_type}),
                    extracted,
                ],
            )
    finally:
        con.close()


def run_dbt(tmp: Path, *args: str, project_dir: Path = PROJECT_DIR) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WAREHOUSE_PATH": str(tmp / "warehouse.duckdb"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    env.pop("MARKETING_CONSENT_METADATA_KEY", None)  # the default key, whatever the shell says
    return subprocess.run(
        [
            str(DBT),
            *args,
            "--project-dir",
            str(project_dir),
            "--profiles-dir",
            str(project_dir),
            "--target-path",
            str(tmp / "target"),
            "--log-path",
            str(tmp / "logs"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("dbt")
    build_warehouse(tmp / "warehouse.duckdb")
    result = run_dbt(tmp, "build")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    return tmp


def query(tmp: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(tmp / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_build_passes_every_node_without_warnings(built: Path) -> None:
    results = json.loads((built / "target" / "run_results.json").read_text())["results"]
    statuses = {r["unique_id"]: r["status"] for r in results}
    assert statuses, "dbt build ran nothing"
    assert {s for s in statuses.values()} <= {"success", "pass"}, {
        k: v for k, v in statuses.items() if v not in ("success", "pass")
    }
    kinds = {uid.split(".")[0] for uid in statuses}
    assert {"seed", "model", "test", "unit_test"} <= kinds
    log = (built / "logs" / "dbt.log").read_text()
    assert "Deprecat" not in log


def test_customer_profiles(built: Path) -> None:
    rows = query(
        built,
        """
        select customer_id, email, has_valid_email, name, currency, lifetime_spend, purchase_count,
               strftime(first_purchase_at at time zone 'UTC', '%Y-%m-%d %H:%M'),
               strftime(last_purchase_at at time zone 'UTC', '%Y-%m-%d %H:%M'),
               frequency_segment, spend_segment, marketing_consent
        from marts.customer_profiles order by customer_id
        """,
    )
    assert rows == [
        (
            "cus_alice",
            "alice@example.com",
            True,
            "Alice",
            "usd",
            Decimal("114.50"),
            2,
            "2024-01-10 09:00",
            "2024-02-01 12:30",
            "repeat",
            "medium",
            True,
        ),
        (
            "cus_bob",
            "bob@example",
            False,
            "Bob",
            "usd",
            Decimal("40.12"),
            1,
            "2024-01-15 00:00",
            "2024-01-15 00:00",
            "one_time",
            "low",
            False,
        ),
        ("cus_carol", None, False, "Carol", "usd", Decimal("0.00"), 0, None, None, "none", "none", False),
        (
            "cus_dave",
            "dave@example.org",
            True,
            "Dave",
            "usd",
            Decimal("1000.00"),
            5,
            "2024-01-01 00:00",
            "2024-05-01 00:00",
            "frequent",
            "high",
            True,
        ),
        ("cus_erin", None, False, "Erin", "usd", Decimal("0.00"), 0, None, None, "none", "none", True),
    ]


def test_customer_profiles_column_types(built: Path) -> None:
    types = dict(
        query(
            built,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'customer_profiles'",
        )
    )
    assert types["lifetime_spend"] == "DECIMAL(18,2)"
    assert types["purchase_count"] == "INTEGER"
    assert types["marketing_consent"] == "BOOLEAN"
    assert types["has_valid_email"] == "BOOLEAN"
    assert types["last_purchase_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["customer_created_at"] == "TIMESTAMP WITH TIME ZONE"


def test_customer_segments(built: Path) -> None:
    rows = query(
        built,
        "select customer_id, segment_group, segment, tag from marts.customer_segments order by customer_id, tag",
    )
    # Every purchase is from 2024, long before the as_of moment (now): all buyers are churned but Alice, whose
    # subscription is active. RFM among the three buyers (percent ranks 0, 0.5, 1: scores 1, 3, 5): Dave
    # (latest, most, most) is a champion, Bob (oldest, fewest, least) lost, Alice (3, 3) loyal.
    assert rows == [
        ("cus_alice", "frequency", "repeat", "frequency:repeat"),
        ("cus_alice", "lifecycle", "active", "lifecycle:active"),
        ("cus_alice", "rfm", "loyal", "rfm:loyal"),
        ("cus_alice", "spend", "medium", "spend:medium"),
        ("cus_bob", "frequency", "one_time", "frequency:one_time"),
        ("cus_bob", "lifecycle", "churned", "lifecycle:churned"),
        ("cus_bob", "rfm", "lost", "rfm:lost"),
        ("cus_bob", "spend", "low", "spend:low"),
        ("cus_carol", "lifecycle", "prospect", "lifecycle:prospect"),
        ("cus_dave", "frequency", "frequent", "frequency:frequent"),
        ("cus_dave", "lifecycle", "churned", "lifecycle:churned"),
        ("cus_dave", "rfm", "champions", "rfm:champions"),
        ("cus_dave", "spend", "high", "spend:high"),
        ("cus_erin", "lifecycle", "prospect", "lifecycle:prospect"),
    ]
    assert query(built, "select count(*) from marts.customer_segments where segment_description is null") == [(0,)]


def test_customer_profiles_activity_subscriptions_and_disputes(built: Path) -> None:
    rows = query(
        built,
        """
        select customer_id, average_order_value, avg_days_between_purchases, total_refunded,
               failed_payments_last_30_days, dispute_count, lost_dispute_count, active_subscription_count,
               mrr, subscription_status, strftime(churned_at at time zone 'UTC', '%Y-%m-%d'),
               recency_score, frequency_score, monetary_score
        from marts.customer_profiles order by customer_id
        """,
    )
    assert rows == [
        # 114.50 / 2; 22.1 days from 2024-01-10 09:00 to 2024-02-01 12:30; refunded 25.00 EUR x 1.08 + 30.00 USD.
        # The failed charge is from 2024, not the last 30 days. 19.99 USD a month.
        (
            "cus_alice",
            Decimal("57.25"),
            Decimal("22.1"),
            Decimal("57.00"),
            0,
            0,
            0,
            1,
            Decimal("19.99"),
            "active",
            None,
            3,
            3,
            3,
        ),
        ("cus_bob", Decimal("40.12"), None, Decimal("0.00"), 0, 1, 0, 0, Decimal("0.00"), None, None, 1, 1, 1),
        ("cus_carol", None, None, Decimal("0.00"), 0, 0, 0, 0, Decimal("0.00"), None, None, None, None, None),
        # 1000.00 / 5; 121 days from Jan 1 to May 1 over 4 gaps; the disputed charge lost 150.00; churned when
        # the canceled subscription ended.
        (
            "cus_dave",
            Decimal("200.00"),
            Decimal("30.3"),
            Decimal("0.00"),
            0,
            2,
            1,
            0,
            Decimal("0.00"),
            "canceled",
            "2024-05-01",
            5,
            5,
            5,
        ),
        ("cus_erin", None, None, Decimal("42.00"), 0, 0, 0, 0, Decimal("0.00"), None, None, None, None, None),
    ]


def test_reconciliation_catches_a_profile_that_drifts_from_stripe(built: Path, tmp_path: Path) -> None:
    # The build passed it; now a copy of the warehouse whose mart lost a single cent.
    copy = tmp_path / "drift"
    copy.mkdir()
    shutil.copy(built / "warehouse.duckdb", copy / "warehouse.duckdb")
    con = duckdb.connect(str(copy / "warehouse.duckdb"))
    try:
        con.execute(
            "update marts.customer_profiles set lifetime_spend = lifetime_spend - 0.01 where customer_id = 'cus_dave'"
        )
    finally:
        con.close()
    result = run_dbt(copy, "test", "--select", "assert_lifetime_spend_reconciles_with_charges")
    assert result.returncode != 0
    assert "Got 2 results" in result.stdout  # usd and all currencies


def test_staging_converts_minor_units(built: Path) -> None:
    rows = dict(
        query(
            built,
            "select charge_id, amount_captured from staging.stg_stripe__charges"
            " where charge_id in ('ch_a_jpy', 'ch_a_eur', 'ch_b_kwd')",
        )
    )
    assert rows == {"ch_a_jpy": Decimal("5000"), "ch_a_eur": Decimal("100"), "ch_b_kwd": Decimal("12.345")}
    prices = dict(query(built, "select price_id, unit_amount from staging.stg_stripe__prices"))
    assert prices == {"price_pro_usd": Decimal("19.99"), "price_pro_jpy": Decimal("3000")}


def test_staging_flags_tombstones(built: Path) -> None:
    def deleted(model: str, key: str) -> dict[str, tuple]:
        rows = query(
            built,
            f"select {key}, is_deleted, strftime(deleted_at at time zone 'UTC', '%Y-%m-%d %H:%M') from staging.{model}",
        )
        return {r[0]: r[1:] for r in rows}

    customers = deleted("stg_stripe__customers", "customer_id")
    assert customers["cus_deleted"] == (True, "2024-05-01 12:00")
    assert {k: v for k, v in customers.items() if k != "cus_deleted"} == {cid: (False, None) for cid, *_ in CUSTOMERS}
    assert deleted("stg_stripe__products", "product_id") == {
        "prod_pro": (False, None),
        "prod_legacy": (True, "2023-03-01 08:30"),
    }
    # A NULL is_deleted reads as not deleted.
    assert deleted("stg_stripe__prices", "price_id") == {
        "price_pro_usd": (False, None),
        "price_pro_jpy": (False, None),
    }


def test_staging_refunds(built: Path) -> None:
    rows = query(
        built,
        "select refund_id, charge_id, payment_intent_id, currency, amount, refund_status, refund_reason,"
        " strftime(created_at at time zone 'UTC', '%Y-%m-%d %H:%M')"
        " from staging.stg_stripe__refunds order by refund_id",
    )
    assert rows == [
        # 1000 EUR cents = 10.00 EUR; the upper-case currency is lowercased and still found in the seed.
        (
            "re_a_eur_1",
            "ch_a_eur",
            "pi_ch_a_eur",
            "eur",
            Decimal("10.000"),
            "succeeded",
            "requested_by_customer",
            "2024-02-03 10:00",
        ),
        ("re_a_eur_2", "ch_a_eur", "pi_ch_a_eur", "eur", Decimal("15.000"), "succeeded", None, "2024-02-10 10:00"),
        # JPY has no minor unit: 2500 stays 2500.
        (
            "re_a_jpy",
            "ch_a_jpy",
            "pi_ch_a_jpy",
            "jpy",
            Decimal("2500.000"),
            "failed",
            "requested_by_customer",
            "2024-01-11 09:00",
        ),
        (
            "re_e_usd",
            "ch_e_refunded",
            "pi_ch_e_refunded",
            "usd",
            Decimal("42.000"),
            "succeeded",
            "fraudulent",
            "2024-04-02 08:00",
        ),
    ]
    # ch_a_eur's succeeded refunds add up to its amount_refunded.
    assert query(
        built,
        "select sum(refunds.amount), any_value(charges.amount_refunded)"
        " from staging.stg_stripe__refunds as refunds"
        " join staging.stg_stripe__charges as charges on refunds.charge_id = charges.charge_id"
        " where refunds.charge_id = 'ch_a_eur' and refunds.refund_status = 'succeeded'",
    ) == [(Decimal("25.000"), Decimal("25.000"))]


def test_staging_disputes(built: Path) -> None:
    rows = query(
        built,
        "select dispute_id, charge_id, currency, amount, dispute_status, dispute_reason, is_lost"
        " from staging.stg_stripe__disputes order by dispute_id",
    )
    assert rows == [
        # 12345 fils = 12.345 KWD (three decimals).
        ("dp_b_kwd", "ch_b_kwd", "kwd", Decimal("12.345"), "won", "product_not_received", False),
        ("dp_d_1", "ch_d_disputed", "usd", Decimal("150.000"), "lost", "fraudulent", True),
        ("dp_d_2", "ch_d_2", "usd", Decimal("200.000"), "needs_response", "duplicate", False),
    ]
    disputed = query(built, "select charge_id from staging.stg_stripe__charges where is_disputed order by 1")
    assert disputed == [("ch_b_kwd",), ("ch_d_2",), ("ch_d_disputed",)]


def test_staging_events(built: Path) -> None:
    rows = query(
        built,
        "select event_id, event_type, object_type, object_id, api_version, is_livemode,"
        " previous_attributes ->> 'email', strftime(created_at at time zone 'UTC', '%Y-%m-%d %H:%M')"
        " from staging.stg_stripe__events order by event_id",
    )
    assert rows == [
        (
            "evt_cus_deleted",
            "customer.deleted",
            "customer",
            "cus_deleted",
            "2024-06-20",
            False,
            None,
            "2024-05-01 12:00",
        ),
        (
            "evt_cus_updated",
            "customer.updated",
            "customer",
            "cus_alice",
            "2024-06-20",
            False,
            "alice@old.example",
            "2024-01-05 00:00",
        ),
        ("evt_refunded", "charge.refunded", "charge", "ch_a_eur", "2024-06-20", False, None, "2024-02-10 10:00"),
    ]
    types = dict(
        query(
            built,
            "select column_name, data_type from information_schema.columns"
            " where table_schema = 'staging' and table_name = 'stg_stripe__events'",
        )
    )
    assert types["previous_attributes"] == "JSON"
    assert types["is_livemode"] == "BOOLEAN"


def test_manifest_carries_destination_meta_and_source_asset_keys(built: Path) -> None:
    manifest = json.loads((built / "target" / "manifest.json").read_text())
    profiles = manifest["nodes"]["model.stripe_audiences.customer_profiles"]
    meta = {
        name: (column.get("meta") or column.get("config", {}).get("meta") or {})
        for name, column in profiles["columns"].items()
    }
    assert meta["lifetime_spend"] == {
        "mailchimp_merge_field": {"tag": "LTV", "name": "Lifetime spend", "type": "number"},
        "customerio_attribute": "lifetime_spend",
    }
    assert meta["last_purchase_at"]["mailchimp_merge_field"]["type"] == "date"
    assert meta["first_purchase_at"] == {"customerio_attribute": "first_purchase_at"}
    assert {m["mailchimp_merge_field"]["tag"] for m in meta.values() if "mailchimp_merge_field" in m} == {
        "LTV",
        "PURCHASES",
        "LASTPURCH",
        "FREQSEG",
        "SPENDSEG",
        "CURRENCY",
        "AOV",
        "MRR",
        "LIFECYCLE",
        "RFM",
    }
    assert all(len(tag) <= 10 for tag in ("LTV", "PURCHASES", "LASTPURCH", "FREQSEG", "SPENDSEG", "LIFECYCLE"))
    assert "customerio_attribute" not in meta["days_since_last_purchase"]  # changes daily for everyone
    assert "email" not in {m.get("customerio_attribute") for m in meta.values()}
    for table in ("customers", "charges", "subscriptions", "products", "prices", "refunds", "disputes", "events"):
        source = manifest["sources"][f"source.stripe_audiences.stripe.{table}"]
        source_meta = source.get("config", {}).get("meta") or source.get("meta") or {}
        assert source_meta["dagster"]["asset_key"] == ["stripe", table]


def test_docs_generate_describes_every_mart_column(built: Path) -> None:
    result = run_dbt(built, "docs", "generate")
    assert result.returncode == 0, result.stdout[-3000:]
    catalog = json.loads((built / "target" / "catalog.json").read_text())
    manifest = json.loads((built / "target" / "manifest.json").read_text())
    for model in ("customer_profiles", "customer_segments"):
        unique_id = f"model.stripe_audiences.{model}"
        documented = {name for name, column in manifest["nodes"][unique_id]["columns"].items() if column["description"]}
        in_warehouse = {name.lower() for name in catalog["nodes"][unique_id]["columns"]}
        assert in_warehouse and in_warehouse == documented
    assert (built / "target" / "index.html").exists()


def test_the_readme_worked_example_adds_a_segment_without_python(built: Path, tmp_path: Path) -> None:
    """The README's two edits (a catalogue row, a SQL branch) make a new tag appear in the marts."""
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    with (project / "seeds" / "segment_catalogue.csv").open("a") as catalogue:
        catalogue.write('billing,payment_trouble,"Two or more failed payments in the last 30 days."\n')
    segments_sql = project / "models" / "marts" / "customer_segments.sql"
    branch = """
    union all

    select
        customer_id,
        'billing' as segment_group,
        case when failed_payments_last_30_days >= 2 then 'payment_trouble' end as segment
    from customer_profiles

),

final as ("""
    sql = segments_sql.read_text()
    assert sql.count("\n),\n\nfinal as (") == 1
    segments_sql.write_text(sql.replace("\n),\n\nfinal as (", branch, 1))
    segments_yml = project / "models" / "marts" / "customer_segments.yml"
    segments_yml.write_text(
        segments_yml.read_text().replace(
            "[frequency, spend, lifecycle, rfm]", "[frequency, spend, lifecycle, rfm, billing]"
        )
    )

    shutil.copy(built / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    try:  # Bob's card fails twice this week
        for i in (1, 2):
            con.execute(
                "insert into stripe.charges (id, customer_id, amount, amount_captured, amount_refunded, currency,"
                " status, captured, created, is_deleted, raw) values (?, 'cus_bob', 1000, 0, 0, 'usd', 'failed',"
                " false, now() - interval 2 day, false, '{}')",
                [f"ch_b_failed_{i}"],
            )
    finally:
        con.close()
    result = run_dbt(tmp_path, "build", project_dir=project)
    assert result.returncode == 0, result.stdout[-5000:]
    assert query(
        tmp_path,
        "select customer_id, tag, segment_description from marts.customer_segments where segment_group = 'billing'",
    ) == [("cus_bob", "billing:payment_trouble", "Two or more failed payments in the last 30 days.")]
