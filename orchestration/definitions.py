"""The one ``Definitions`` object that ``workspace.yaml`` loads."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import dagster as dg

from assets.checks import asset_checks
from assets.customerio_events import customerio_person_events
from assets.customerio_push import customerio_people
from assets.mailchimp_push import mailchimp_audience_members
from assets.mailchimp_store import mailchimp_store
from assets.stripe_extract import stripe_extract
from assets.warehouse_models import warehouse_models
from audiences.customerio_client import DEFAULT_CONCURRENCY, DEFAULT_TRACK_REQUESTS_PER_SECOND
from orchestration.dbt_project import dbt_resource
from orchestration.jobs import extract_stripe, nightly_sync, push_audiences
from orchestration.mailchimp_store_resource import DEFAULT_STORE_CURRENCY, MailchimpStoreResource
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

REPO_ROOT = Path(__file__).resolve().parent.parent


def with_code_references(assets: list[dg.AssetsDefinition]) -> list[Any]:
    """Each asset links to its code in the UI: the local file, or, with ``CODE_REFERENCES_GIT_URL`` (e.g.
    https://github.com/acme/stripe-audiences) and ``CODE_REFERENCES_GIT_BRANCH`` (main), the file in the repo."""
    with warnings.catch_warnings():  # code references are a beta feature of Dagster; say it once, not every load
        warnings.simplefilter("ignore", dg.BetaWarning)
        referenced = dg.with_source_code_references(assets)
    git_url = os.environ.get("CODE_REFERENCES_GIT_URL")
    if not git_url:
        return list(referenced)
    mapping = dg.AnchorBasedFilePathMapping(local_file_anchor=REPO_ROOT, file_anchor_path_in_repository="")
    branch = os.environ.get("CODE_REFERENCES_GIT_BRANCH", "main")
    linked = dg.link_code_references_to_git(referenced, git_url=git_url, git_branch=branch, file_path_mapping=mapping)
    return list(linked)


defs = dg.Definitions(
    assets=with_code_references(
        [
            stripe_extract,
            warehouse_models,
            mailchimp_audience_members,
            mailchimp_store,
            customerio_people,
            customerio_person_events,
        ]
    ),
    asset_checks=asset_checks,
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
        "mailchimp_store": MailchimpStoreResource(
            store_id=env_if_set("MAILCHIMP_STORE_ID"),
            currency_code=env_or_default("MAILCHIMP_STORE_CURRENCY", DEFAULT_STORE_CURRENCY),
            name=env_or_default("MAILCHIMP_STORE_NAME", "Stripe"),
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
