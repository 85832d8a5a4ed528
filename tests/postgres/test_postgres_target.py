"""The dbt project on PostgreSQL (the profile's ``postgres`` target), on a real PostgreSQL server.

A synthetic Stripe account is extracted over HTTP from the Stripe stand-in into DuckDB, as the nightly job does;
its ``stripe`` tables are copied into a throwaway PostgreSQL server. ``dbt build`` then runs on both warehouses
with the same ``as_of``: every seed, model, data test and unit test must pass on PostgreSQL, and every mart must
hold exactly the rows DuckDB's holds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg2
import psycopg2.extras
import pytest

from audiences.rate_limit import RateLimiter
from audiences.stripe_extract import extract
from audiences.stripe_reader import Retry, StripeReader, make_client
from audiences.stripe_streams import STREAMS
from sandbox.stripe_account import generate_account
from sandbox.stripe_api import StripeStandIn
from tests.postgres.server import PostgresServer, running_postgres

REPO = Path(__file__).resolve().parents[2]
PROJECT_DIR = REPO / "dbt_project"
DBT = Path(sys.executable).parent / "dbt"
KEY = "sk_test_postgres_target"
MARTS = ("customer_profiles", "customer_segments", "marketing_events", "store_order_lines")

# DuckDB column types of the landed Stripe tables -> PostgreSQL's.
PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "UBIGINT": "numeric(20, 0)",  # the extract's change-detection hash of `raw`
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
}


def copy_stripe_tables(duck: duckdb.DuckDBPyConnection, pg: psycopg2.extensions.connection) -> dict[str, int]:
    """Copy every ``stripe.*`` table (the extract's landing) from DuckDB into PostgreSQL, types mapped."""
    counts: dict[str, int] = {}
    tables = [
        t
        for (t,) in duck.execute(
            "select table_name from information_schema.tables where table_schema = 'stripe' order by 1"
        ).fetchall()
    ]
    with pg.cursor() as cur:
        cur.execute("create schema stripe")
        for table in tables:
            columns = duck.execute(
                "select column_name, data_type from information_schema.columns"
                " where table_schema = 'stripe' and table_name = ? order by ordinal_position",
                [table],
            ).fetchall()
            unknown = [t for _, t in columns if t not in PG_TYPES]
            assert not unknown, f"stripe.{table}: no PostgreSQL type for {unknown}"
            cur.execute(
                f"create table stripe.{table} ("
                + ", ".join(f'"{name}" {PG_TYPES[kind]}' for name, kind in columns)
                + ")"
            )
            rows = duck.execute(f"select * from stripe.{table}").fetchall()
            psycopg2.extras.execute_values(cur, f"insert into stripe.{table} values %s", rows, page_size=1000)
            counts[table] = len(rows)
    pg.commit()
    return counts


def dbt_build(workdir: Path, env: dict[str, str], as_of: str) -> dict[str, str]:
    """``dbt build`` with ``as_of`` pinned; the status of every node it ran."""
    proc = subprocess.run(
        [
            str(DBT),
            "build",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(workdir / "target"),
            "--log-path",
            str(workdir / "logs"),
            "--vars",
            json.dumps({"as_of": as_of}),
        ],
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    results = json.loads((workdir / "target" / "run_results.json").read_text())["results"]
    return {r["unique_id"]: r["status"] for r in results}


def sortable(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted(rows, key=lambda row: tuple((v is None, str(v)) for v in row))


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("postgres_target")
    warehouse = tmp / "warehouse.duckdb"
    account = generate_account(seed=23, customers=300, months=18)
    account.start_clock()
    stand_in = StripeStandIn(account, api_key=KEY)
    url = stand_in.start()
    duck = duckdb.connect(str(warehouse))
    try:
        extract(duck, StripeReader(make_client(KEY, url, 2), RateLimiter(1000, 1000), Retry(base_delay=0.05)), STREAMS)
        pg = psycopg2.connect(postgres.dsn())
        try:
            copied = copy_stripe_tables(duck, pg)
        finally:
            pg.close()
    finally:
        duck.close()
        stand_in.stop()

    as_of = datetime.now(UTC).replace(microsecond=0).isoformat()  # the account's data ends now
    duckdb_nodes = dbt_build(tmp / "duckdb", {"DBT_TARGET": "dev", "WAREHOUSE_PATH": str(warehouse)}, as_of)
    postgres_nodes = dbt_build(tmp / "postgres", postgres.dbt_env(), as_of)
    return {"warehouse": warehouse, "copied": copied, "duckdb": duckdb_nodes, "postgres": postgres_nodes}


def test_every_node_passes_on_postgres_as_on_duckdb(builds: dict[str, object]) -> None:
    postgres_nodes: dict[str, str] = builds["postgres"]  # type: ignore[assignment]
    duckdb_nodes: dict[str, str] = builds["duckdb"]  # type: ignore[assignment]
    # The same nodes with the same outcomes (a data test that warns on this account warns on both); none fails.
    assert postgres_nodes == duckdb_nodes
    assert set(postgres_nodes.values()) <= {"success", "pass", "warn"}
    kinds = {node.split(".")[0] for node in postgres_nodes}
    assert {"seed", "model", "test", "unit_test"} <= kinds
    copied: dict[str, int] = builds["copied"]  # type: ignore[assignment]
    assert copied["customers"] > 250 and copied["charges"] > copied["customers"] and copied["events"] > 0


@pytest.mark.parametrize("mart", MARTS)
def test_each_mart_holds_the_same_rows_on_postgres_and_duckdb(
    builds: dict[str, object], postgres: PostgresServer, mart: str
) -> None:
    duck = duckdb.connect(str(builds["warehouse"]), read_only=True)
    try:
        duck_columns = [
            c
            for (c,) in duck.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'marts' and table_name = ? order by ordinal_position",
                [mart],
            ).fetchall()
        ]
        duck_rows = duck.execute(f"select * from marts.{mart}").fetchall()
    finally:
        duck.close()
    pg = psycopg2.connect(postgres.dsn())
    try:
        with pg.cursor() as cur:
            cur.execute(f"select * from marts.{mart}")
            pg_columns = [d.name for d in cur.description]
            pg_rows = cur.fetchall()
    finally:
        pg.close()

    assert pg_columns == duck_columns
    assert len(duck_rows) > 10
    assert len(pg_rows) == len(duck_rows)
    differences = [
        {
            column: (pg_value, duck_value)
            for column, pg_value, duck_value in zip(pg_columns, pg_row, duck_row, strict=True)
            if pg_value != duck_value
        }
        for pg_row, duck_row in zip(sortable(pg_rows), sortable(duck_rows), strict=True)
        if pg_row != duck_row
    ]
    assert differences == []
