"""Shared fixtures: the dbt manifest the Dagster definitions need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = REPO_ROOT / "dbt_project" / "target" / "manifest.json"


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """`make test` builds it; a bare `pytest` builds it here when missing."""
    if not MANIFEST.exists():
        dbt = Path(sys.executable).parent / "dbt"
        subprocess.run(
            [str(dbt), "parse", "--project-dir", "dbt_project", "--profiles-dir", "dbt_project", "--quiet"],
            cwd=REPO_ROOT,
            check=True,
        )
    return MANIFEST
