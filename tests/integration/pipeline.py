"""A nightly pipeline for the end-to-end tests: the scenario account, the stand-ins, and the job run as an operator
runs it (`dagster job execute`), over HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import duckdb

from audiences.field_mapping import load_mapping
from sandbox.environment import StandIns, run_job, running_stand_ins
from tests.conftest import MANIFEST
from tests.integration.scenario import Scenario, build_scenario

TABLES = (
    "stripe.customers",
    "stripe.charges",
    "stripe.subscriptions",
    "stripe.products",
    "stripe.prices",
    "marts.customer_profiles",
    "marts.customer_segments",
    "sync.pushed_records",
)


def table_digest(con: duckdb.DuckDBPyConnection, table: str) -> str:
    rows = con.execute(f"select * from {table} order by all").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def writes(stand_ins: StandIns) -> dict[str, int]:
    """Requests that change something at the destinations."""
    return {
        "mailchimp": len([r for r in stand_ins.mailchimp.requests if r.method in {"PUT", "POST", "PATCH"}]),
        "customerio": len([r for r in stand_ins.customerio.requests if r.method in {"PUT", "POST"}]),
    }


class Pipeline:
    def __init__(self, scenario: Scenario, stand_ins: StandIns, workdir: Path) -> None:
        self.scenario = scenario
        self.stand_ins = stand_ins
        self.warehouse = workdir / "warehouse.duckdb"
        self.env = stand_ins.env(self.warehouse, workdir / "dagster_home")

    def run(self, job: str = "nightly_sync", **kwargs: object) -> str:
        proc = run_job(job, self.env, **kwargs)  # type: ignore[arg-type]
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-12000:]
        return proc.stdout + proc.stderr

    def query(self, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()

    def tags(self, customer_id: str) -> list[str]:
        return [
            t for (t,) in self.query("select tag from marts.customer_segments where customer_id = ?", [customer_id])
        ]

    def pushed_view(self, destination: str) -> dict[str, tuple[object, ...]]:
        """Per customer, what ``destination`` receives: its mapped profile columns and the segment tags."""
        mapping = load_mapping(MANIFEST)
        if destination == "mailchimp":
            columns = ["email", "marketing_consent", *(f.column for f in mapping.merge_fields)]
        else:
            columns = ["email", "has_valid_email", *mapping.customerio_attributes]
        rows = self.query(
            f"select p.customer_id, {', '.join('p.' + c for c in columns)}, (select list(tag order by tag)"
            " from marts.customer_segments s where s.customer_id = p.customer_id) from marts.customer_profiles p"
        )
        return {row[0]: row[1:] for row in rows}  # type: ignore[misc]

    def profile(self, customer_id: str) -> dict[str, object]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            cur = con.execute("select * from marts.customer_profiles where customer_id = ?", [customer_id])
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        finally:
            con.close()
        assert row is not None, f"no profile for {customer_id}"
        return dict(zip(names, row, strict=True))


def started_pipeline(workdir: Path) -> Iterator[Pipeline]:
    """The scenario's account behind the stand-ins, after a first nightly run (a module fixture's body)."""
    scenario = build_scenario()
    with running_stand_ins(scenario.account) as stand_ins:
        audience = stand_ins.audience_id
        stand_ins.mailchimp.add_member(audience, "carol.white@yahoo.com", status="unsubscribed")
        pipe = Pipeline(scenario, stand_ins, workdir)
        pipe.first_output = pipe.run()
        yield pipe
