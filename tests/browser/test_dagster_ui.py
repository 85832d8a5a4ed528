"""The Dagster UI in a real browser: the asset graph, then `nightly_sync` launched from the launchpad, as an operator
does it, against the stand-ins; the run goes through the instance's queue (dagster_home/dagster.yaml) and succeeds.

Headless Chromium is Debian's `chromium` (`make browser` installs it), driven by Playwright. A screenshot of the
finished run is kept in data/test-artifacts/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import requests

from sandbox.environment import REPO_ROOT, StandIns, running_stand_ins
from sandbox.stripe_account import generate_account

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "data" / "test-artifacts"
LOCATION = "orchestration.definitions:defs"  # the code location workspace.yaml names (module:attribute)
# Chromium on a machine without internet: no background traffic, no first-run work (see the env notes).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def stand_ins() -> Iterator[StandIns]:
    with running_stand_ins(generate_account(seed=5, customers=40)) as servers:
        yield servers


@pytest.fixture(scope="module")
def webserver(stand_ins: StandIns, dbt_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """`dagster dev` (webserver and daemon) on 127.0.0.1 with this project's instance settings."""
    workdir = tmp_path_factory.mktemp("ui")
    home = workdir / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, **stand_ins.env(workdir / "warehouse.duckdb", home)}
    port = free_port()
    dagster = Path(sys.executable).parent / "dagster"
    log = (workdir / "dagster-dev.log").open("w")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/server_info", timeout=2).ok and _location_loaded(url):
                    break
            except requests.RequestException:
                pass
            assert process.poll() is None, (workdir / "dagster-dev.log").read_text()[-5000:]
            time.sleep(1)
        else:
            pytest.fail("dagster dev did not come up: " + (workdir / "dagster-dev.log").read_text()[-5000:])
        yield {"url": url, "home": home, "env": env, "log": workdir / "dagster-dev.log"}
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
        log.close()


def _location_loaded(url: str) -> bool:
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    answer = requests.post(url + "/graphql", json={"query": query}, timeout=5).json()
    entries = answer["data"]["workspaceOrError"]["locationEntries"]
    return any(e["name"] == LOCATION and e["loadStatus"] == "LOADED" for e in entries)


def test_launch_nightly_sync_from_the_ui_and_watch_it_succeed(webserver: dict, stand_ins: StandIns) -> None:
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), "no chromium: `make browser` installs Debian's package (make test does)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = webserver["url"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        # A first visit asks to join the community: skip it whenever it covers the page.
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"), lambda: page.get_by_role("button", name="Skip").click()
        )

        # The asset graph, with the four groups' assets.
        page.goto(f"{url}/asset-groups")
        page.goto(f"{url}/locations/{LOCATION}/asset-groups/warehouse")
        page.wait_for_load_state("networkidle")
        # The whole group is drawn zoomed out (its labels hidden); the lineage of the profiles mart, drawn as a
        # graph too, names its upstream models and the destinations downstream.
        page.goto(f"{url}/assets/marts/customer_profiles?view=lineage&lineageScope=neighbors")
        expect(page.get_by_text("customer_profiles").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "dagster_ui_asset_graph.png"))

        # The launchpad of nightly_sync: launch it as an operator does.
        page.goto(f"{url}/locations/{LOCATION}/jobs/nightly_sync/playground")
        expect(page.get_by_text("dry_run").first).to_be_visible()  # the run config, scaffolded with its defaults
        page.screenshot(path=str(ARTIFACTS / "dagster_ui_launchpad.png"))
        page.get_by_role("button", name="Launch run").click()
        page.wait_for_url("**/runs/**")
        run_id = page.url.rstrip("/").rsplit("/", 1)[-1]

        with dg.DagsterInstance.from_config(str(webserver["home"])) as instance:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                run = instance.get_run_by_id(run_id)
                assert run is not None, f"no run {run_id}"
                if run.is_finished:
                    break
                time.sleep(2)
            assert run.status == dg.DagsterRunStatus.SUCCESS, webserver["log"].read_text()[-5000:]
            assert run.job_name == "nightly_sync"

        page.reload()
        expect(page.get_by_text("Success").first).to_be_visible()
        expect(page.get_by_text("Loading run logs")).to_have_count(0)
        page.screenshot(path=str(ARTIFACTS / "dagster_ui_nightly_sync.png"), full_page=True)
        browser.close()

    assert stand_ins.customerio.persons()  # the run reached the destinations
    assert stand_ins.mailchimp.requests_to("POST", r"/lists/[^/]+$")
    assert (ARTIFACTS / "dagster_ui_nightly_sync.png").stat().st_size > 10_000
