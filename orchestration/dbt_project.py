"""The dbt project as Dagster sees it. ``prepare_if_dev`` parses it only under ``dagster dev``."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"


def _dbt_executable() -> str:
    """The dbt installed beside this interpreter (the project's venv), even when that venv is not on PATH."""
    sibling = Path(sys.executable).parent / "dbt"
    return str(sibling) if sibling.exists() else (shutil.which("dbt") or "dbt")


if shutil.which("dbt") is None and Path(_dbt_executable()).exists():
    # `prepare_if_dev` runs `dbt parse` with the dbt on PATH: a `.venv/bin/dagster dev` started without
    # activating the venv (its code server) would not find it.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
dbt_project.prepare_if_dev()


dbt_resource = DbtCliResource(project_dir=dbt_project, dbt_executable=_dbt_executable())
