"""Dagster wiring: resources, jobs, schedules and the one ``Definitions`` object."""
