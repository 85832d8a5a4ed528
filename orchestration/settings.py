"""Environment variables: names, defaults, and how optional ones become resource config.

Required secrets are passed to resources as ``EnvVar`` so their values never show in the Dagster UI.
Optional settings use ``EnvVar`` when set and the documented default otherwise.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

DEFAULT_STRIPE_API_BASE = "https://api.stripe.com"
DEFAULT_WAREHOUSE_PATH = "data/warehouse.duckdb"
DEFAULT_NIGHTLY_CRON = "0 2 * * *"
DEFAULT_NIGHTLY_TIMEZONE = "UTC"


def env_or_default(name: str, default: Any) -> Any:
    """``EnvVar(name)`` when the variable is set (non-empty), else ``default``."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def env_if_set(name: str) -> dg.EnvVar | None:
    return dg.EnvVar(name) if os.environ.get(name) else None


def env_float(name: str) -> float | None:
    """A number setting (not a secret): read when the definitions load."""
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {value!r}") from None


def env_int(name: str) -> int | None:
    """A whole-number setting (not a secret): read when the definitions load."""
    value = env_float(name)
    if value is None:
        return None
    if value != int(value) or value < 1:
        raise ValueError(f"{name} must be a positive whole number, not {os.environ[name]!r}")
    return int(value)


def env_flag(name: str) -> bool:
    """A yes/no setting (not a secret): ``true``/``1``/``yes`` or ``false``/``0``/``no``, any case; unset = no."""
    value = os.environ.get(name, "").strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise ValueError(f"{name} must be true or false, not {os.environ[name]!r}")
