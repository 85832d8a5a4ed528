"""The nightly schedule: 02:00 UTC unless NIGHTLY_SYNC_CRON / NIGHTLY_SYNC_TIMEZONE say otherwise."""

from __future__ import annotations

import os

import dagster as dg

from orchestration.jobs import nightly_sync
from orchestration.settings import DEFAULT_NIGHTLY_CRON, DEFAULT_NIGHTLY_TIMEZONE

nightly_schedule = dg.ScheduleDefinition(
    name="nightly_sync_schedule",
    job=nightly_sync,
    cron_schedule=os.environ.get("NIGHTLY_SYNC_CRON") or DEFAULT_NIGHTLY_CRON,
    execution_timezone=os.environ.get("NIGHTLY_SYNC_TIMEZONE") or DEFAULT_NIGHTLY_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Runs nightly_sync every night.",
)
