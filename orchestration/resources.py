"""Configurable resources built from environment variables."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
import stripe
from pydantic import Field

from audiences.customerio_client import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TRACK_REQUESTS_PER_SECOND,
    CustomerIOClient,
    track_base_url,
)
from audiences.mailchimp_client import MailchimpClient
from audiences.rate_limit import RateLimiter, stripe_limits
from audiences.stripe_reader import StripeReader, make_client
from audiences.warehouse import connect, resolve_path


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file that holds raw Stripe data, the dbt models and all sync state."""

    path: str = Field(description="DuckDB file (WAREHOUSE_PATH).")

    @property
    def absolute_path(self) -> str:
        return str(resolve_path(self.path))

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with connect(self.absolute_path, read_only=read_only) as con:
            yield con


class StripeResource(dg.ConfigurableResource):
    api_key: str = Field(description="Secret or restricted key (STRIPE_API_KEY); read access suffices.")
    api_base: str = Field(description="API base URL (STRIPE_API_BASE).")
    max_network_retries: int = Field(default=3, description="SDK retries of connection errors, 409 and 5xx.")
    requests_per_second: float | None = Field(
        default=None,
        description="STRIPE_REQUESTS_PER_SECOND: global request rate; default 100 for live keys, 25 for test keys.",
    )
    requests_per_second_per_endpoint: float | None = Field(
        default=None, description="STRIPE_REQUESTS_PER_SECOND_PER_ENDPOINT: default 25 (Stripe's per-endpoint limit)."
    )

    def client(self) -> stripe.StripeClient:
        return make_client(self.api_key, self.api_base, self.max_network_retries)

    def limiter(self) -> RateLimiter:
        return stripe_limits(self.api_key, self.requests_per_second, self.requests_per_second_per_endpoint)

    def reader(self) -> StripeReader:
        return StripeReader(self.client(), self.limiter())


class MailchimpResource(dg.ConfigurableResource):
    api_key: str | None = Field(default=None, description="MAILCHIMP_API_KEY, <secret>-<dc>.")
    audience_id: str | None = Field(default=None, description="MAILCHIMP_AUDIENCE_ID.")
    api_base: str | None = Field(
        default=None, description="MAILCHIMP_API_BASE, default https://<dc>.api.mailchimp.com/3.0"
    )
    max_connections: int = Field(default=10, description="Mailchimp allows 10 simultaneous connections per key.")

    @property
    def configured(self) -> bool:
        return bool(self.api_key and self.audience_id)

    def client(self) -> MailchimpClient:
        assert self.api_key
        return MailchimpClient(self.api_key, api_base=self.api_base, max_connections=self.max_connections)


class CustomerIOResource(dg.ConfigurableResource):
    site_id: str | None = Field(default=None, description="CUSTOMERIO_SITE_ID.")
    api_key: str | None = Field(default=None, description="CUSTOMERIO_API_KEY (Track API key).")
    region: str = Field(default="us", description="CUSTOMERIO_REGION: us or eu.")
    track_api_base: str | None = Field(default=None, description="CUSTOMERIO_TRACK_API_BASE override.")
    requests_per_second: float = Field(
        default=DEFAULT_TRACK_REQUESTS_PER_SECOND,
        description="CUSTOMERIO_REQUESTS_PER_SECOND: the client paces batch requests under this rate.",
    )
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY, description="CUSTOMERIO_CONCURRENCY: batch requests in flight at once."
    )

    @property
    def configured(self) -> bool:
        return bool(self.site_id and self.api_key)

    def client(self) -> CustomerIOClient:
        assert self.site_id and self.api_key
        return CustomerIOClient(
            self.site_id,
            self.api_key,
            base_url=track_base_url(self.region, self.track_api_base),
            requests_per_second=self.requests_per_second,
            pool_size=self.concurrency,
        )
