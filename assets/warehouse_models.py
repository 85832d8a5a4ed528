"""The dbt project as Dagster assets; dbt tests run as asset checks.

``dbt build`` stops at a failing error-severity test, the step fails, and the reverse-ETL assets downstream
do not run: nothing is pushed from models that failed their tests. dbt's unit tests (fixed inputs, checking the
models' logic, not the data) run where the code changes, in `make test` (tests/dbt, tests/postgres), not in
every production run: the job builds with ``--exclude-resource-type unit_test``.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, DbtProject, dbt_assets

from assets.model_metadata import previous_row_count, with_model_metadata
from orchestration.dbt_project import dbt_project
from orchestration.policies import FRESHNESS, OWNERS, WAREHOUSE_POOL
from orchestration.resources import WarehouseResource


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt sources map to the Stripe extract assets; every model lives in the `warehouse` group, owned by the
    analytics engineers unless its meta says otherwise; the marts are overdue after 36 hours."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        return super().get_owners(dbt_resource_props) or OWNERS["warehouse"]

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props["resource_type"] == "model" and "marts" in props.get("fqn", []):
            spec = spec.replace_attributes(freshness_policy=FRESHNESS)
        return spec


translator = WarehouseTranslator(
    settings=DagsterDbtTranslatorSettings(enable_asset_checks=True, enable_code_references=True)
)


@dbt_assets(
    manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator, pool=WAREHOUSE_POOL
)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # The dbt profile reads WAREHOUSE_PATH; dbt runs in dbt_project/, so hand it an absolute path.
    os.environ["WAREHOUSE_PATH"] = warehouse.absolute_path
    with warehouse.connect():  # another process holding the file: a clear message rather than dbt's
        pass
    # dbt writes the warehouse (and DuckDB's .wal beside it) from its own process: owner-only files, as ours are.
    umask = os.umask(0o077)
    try:
        invocation = dbt.cli(
            ["build", "--exclude-resource-type", "unit_test"], context=context, target_path=dbt_target_path(warehouse)
        )
    finally:
        os.umask(umask)
    nodes = invocation.manifest["nodes"]
    previous: dict[str, int | None] = {}  # by dbt unique id, read before this run records any
    for key in context.selected_asset_keys:
        unique_id = translator_unique_id(context, key)
        if unique_id in nodes:
            previous[unique_id] = previous_row_count(context.instance, key, other_than_run=context.run.run_id)
    events, failure = [], None
    try:
        events.extend(invocation.stream())
    except Exception as error:  # a failing test or model: report what was built, then fail the step
        failure = error
    with warehouse.connect(read_only=True) as con:
        yield from with_model_metadata(events, nodes, con, previous)
    if failure is not None:
        raise failure


def dbt_target_path(warehouse: WarehouseResource) -> Path | None:
    """dbt's target folder for this warehouse, kept beside it from run to run, or ``None`` (a fresh one per run)
    for a warehouse that is not a local file (MotherDuck's ``md:``).

    dbt parses the project again whenever the profile differs from the one its partial-parse state was written
    with, and the profile holds the warehouse's path: a folder per warehouse keeps that state valid from one run
    to the next, so only the first run parses the whole project (about 10 s) and later ones reparse what changed.
    Runs of one warehouse never overlap (the `duckdb_warehouse` pool), so they never share the folder at once.
    """
    path = Path(warehouse.absolute_path)
    if ":" in path.name or not path.parent.is_dir():
        return None
    return path.parent / f".{path.stem}.dbt-target"


def translator_unique_id(context: dg.AssetExecutionContext, key: dg.AssetKey) -> str | None:
    """The dbt unique id of a selected asset (``None`` for what is not a dbt node)."""
    props = context.assets_def.metadata_by_key.get(key, {}).get("dagster_dbt/unique_id")  # type: ignore[union-attr]
    return str(props) if props else None
