"""The one ``Definitions`` object that ``workspace.yaml`` loads."""

from __future__ import annotations

import dagster as dg

from assets.customerio_events import customerio_person_events
from assets.customerio_push import customerio_people
from assets.mailchimp_push import mailchimp_audience_members
from assets.stripe_extract import stripe_extract
from assets.warehouse_models import warehouse_models
from audiences.customerio_client import DEFAULT_CONCURRENCY, DEFAULT_TRACK_REQUESTS_PER_SECOND
from orchestration.dbt_project import dbt_resource
from orchestration.jobs import extract_stripe, nightly_sync, push_audiences
from orchestration.resources import CustomerIOResource, MailchimpResource, StripeResource, WarehouseResource
from orchestration.schedules import nightly_schedule
from orchestration.sensors import run_failure_alert
from orchestration.settings import (
    DEFAULT_STRIPE_API_BASE,
    DEFAULT_WAREHOUSE_PATH,
    env_float,
    env_if_set,
    env_int,
    env_or_default,
)

defs = dg.Definitions(
    assets=[stripe_extract, warehouse_models, mailchimp_audience_members, customerio_people, customerio_person_events],
    jobs=[nightly_sync, extract_stripe, push_audiences],
    schedules=[nightly_schedule],
    sensors=[run_failure_alert],
    resources={
        "warehouse": WarehouseResource(path=env_or_default("WAREHOUSE_PATH", DEFAULT_WAREHOUSE_PATH)),
        "stripe": StripeResource(
            api_key=dg.EnvVar("STRIPE_API_KEY"),
            api_base=env_or_default("STRIPE_API_BASE", DEFAULT_STRIPE_API_BASE),
            requests_per_second=env_float("STRIPE_REQUESTS_PER_SECOND"),
            requests_per_second_per_endpoint=env_float("STRIPE_REQUESTS_PER_SECOND_PER_ENDPOINT"),
        ),
        "dbt": dbt_resource,
        "mailchimp": MailchimpResource(
            api_key=env_if_set("MAILCHIMP_API_KEY"),
            audience_id=env_if_set("MAILCHIMP_AUDIENCE_ID"),
            api_base=env_if_set("MAILCHIMP_API_BASE"),
        ),
        "customerio": CustomerIOResource(
            site_id=env_if_set("CUSTOMERIO_SITE_ID"),
            api_key=env_if_set("CUSTOMERIO_API_KEY"),
            region=env_or_default("CUSTOMERIO_REGION", "us"),
            track_api_base=env_if_set("CUSTOMERIO_TRACK_API_BASE"),
            requests_per_second=env_float("CUSTOMERIO_REQUESTS_PER_SECOND") or DEFAULT_TRACK_REQUESTS_PER_SECOND,
            concurrency=env_int("CUSTOMERIO_CONCURRENCY") or DEFAULT_CONCURRENCY,
        ),
    },
    # DuckDB allows one writing process: run the steps of a run one after another in one process.
    executor=dg.in_process_executor,
)
