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


# The files that run the whole job several times, longest first (from the durations `make test` prints). With
# `--dist loadfile` a file runs on one worker from start to end, so one of these started last would hold the
# suite up alone; started first, the short files fill the other workers around them.
LONG_FILES = (
    "tests/integration/test_kill_recovery.py",
    "tests/integration/test_run_guards.py",
    "tests/integration/test_nightly_changes.py",
    "tests/integration/test_nightly_sync.py",
    "tests/integration/test_mailchimp_store.py",
    "tests/integration/test_secrets.py",
    "tests/browser/test_dagster_ui.py",
    "tests/postgres/test_postgres_target.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(REPO_ROOT).as_posix()
        return LONG_FILES.index(path) if path in LONG_FILES else len(LONG_FILES)

    items.sort(key=rank)  # stable: the tests of a file keep their order
