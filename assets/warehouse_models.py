"""The dbt project as Dagster assets; dbt tests run as asset checks.

``dbt build`` stops at a failing error-severity test, the step fails, and the reverse-ETL assets downstream
do not run: nothing is pushed from models that failed their tests.
"""

import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.dbt_project import dbt_project
from orchestration.resources import WarehouseResource


class WarehouseTranslator(DagsterDbtTranslator):
    """dbt sources map to the Stripe extract assets; every model lives in the `warehouse` group."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return dg.AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"


translator = WarehouseTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


@dbt_assets(manifest=dbt_project.manifest_path, project=dbt_project, dagster_dbt_translator=translator)
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource):
    # The dbt profile reads WAREHOUSE_PATH; dbt runs in dbt_project/, so hand it an absolute path.
    os.environ["WAREHOUSE_PATH"] = warehouse.absolute_path
    yield from dbt.cli(["build"], context=context).stream()
