"""The dbt project as Dagster sees it. ``prepare_if_dev`` parses it only under ``dagster dev``."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


def _dbt_executable() -> str:
    """The dbt installed beside this interpreter (the project's venv), even when that venv is not on PATH."""
    sibling = Path(sys.executable).parent / "dbt"
    return str(sibling) if sibling.exists() else (shutil.which("dbt") or "dbt")


dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())
