"""Start the three stand-ins together and give the environment a production run would get.

Used by ``make demo`` and the integration tests: the job is configured exactly as in production, through
environment variables, only pointing at 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sandbox.customerio_api import CustomerIOStandIn
from sandbox.mailchimp_api import MailchimpStandIn
from sandbox.stripe_account import StripeAccount
from sandbox.stripe_api import StripeStandIn

REPO_ROOT = Path(__file__).resolve().parent.parent
STRIPE_KEY = "sk_test_standin_0123456789"
MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
AUDIENCE_ID = "a1b2c3d4e5"
CIO_SITE_ID = "standin-site"
CIO_KEY = "standin-track-key-0123456789"


@dataclass
class StandIns:
    stripe: StripeStandIn
    mailchimp: MailchimpStandIn
    customerio: CustomerIOStandIn
    audience_id: str = AUDIENCE_ID

    def env(self, warehouse_path: Path, dagster_home: Path) -> dict[str, str]:
        """The environment of a production run, pointed at the stand-ins."""
        return {
            "STRIPE_API_KEY": STRIPE_KEY,
            "STRIPE_API_BASE": self.stripe.url,
            "WAREHOUSE_PATH": str(warehouse_path),
            "MAILCHIMP_API_KEY": MAILCHIMP_KEY,
            "MAILCHIMP_AUDIENCE_ID": self.audience_id,
            "MAILCHIMP_API_BASE": self.mailchimp.url + "/3.0",
            "CUSTOMERIO_SITE_ID": CIO_SITE_ID,
            "CUSTOMERIO_API_KEY": CIO_KEY,
            "CUSTOMERIO_TRACK_API_BASE": self.customerio.url,
            "DAGSTER_HOME": str(dagster_home),
        }


@contextmanager
def running_stand_ins(account: StripeAccount, *, latency: float = 0.0) -> Iterator[StandIns]:
    account.start_clock()  # a live account: events get the current time
    stripe = StripeStandIn(account, api_key=STRIPE_KEY, latency=latency)
    mailchimp = MailchimpStandIn(api_key=MAILCHIMP_KEY, latency=latency)
    customerio = CustomerIOStandIn(site_id=CIO_SITE_ID, api_key=CIO_KEY, latency=latency)
    mailchimp.create_audience(list_id=AUDIENCE_ID, name="Stripe customers")
    for server in (stripe, mailchimp, customerio):
        server.start()
    try:
        yield StandIns(stripe, mailchimp, customerio)
    finally:
        for server in (stripe, mailchimp, customerio):
            server.stop()


def run_job(
    job: str,
    env: dict[str, str],
    *,
    run_config: str | None = None,
    drop: tuple[str, ...] = (),
) -> subprocess.CompletedProcess[str]:
    """``dagster job execute -m orchestration.definitions -j JOB`` from the repo root, as an operator would."""
    dagster = Path(sys.executable).parent / "dagster"
    command = [str(dagster), "job", "execute", "-m", "orchestration.definitions", "-j", job]
    full_env = {**os.environ, **env}
    for name in drop:
        full_env.pop(name, None)
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if run_config:  # JSON is YAML: `dagster job execute -c` reads it as the run config file
            config_file = Path(tmp) / "run_config.yaml"
            config_file.write_text(run_config)
            command += ["-c", str(config_file)]
        return subprocess.run(command, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, check=False)
