"""The Dagster UI as a person sees it: a real webserver on loopback over a real instance after one
small materialization, driven by headless Chromium (Debian's package, never a downloaded browser),
with the same facts also asserted through the webserver's GraphQL API."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import DagsterInstance
from dagster._daemon.freshness import FreshnessDaemon

from sales_assets.checks import AGGREGATES_RECONCILE
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import code_location, run_config

pytestmark = pytest.mark.ui

PROJECT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ASSETS = ["raw_sales", "cleaned_sales", "rejected_sales", "sales_aggregates", "clickhouse_sales_aggregates"]
EDGES = {
    ("raw_sales", "cleaned_sales"),
    ("raw_sales", "rejected_sales"),
    ("cleaned_sales", "sales_aggregates"),
    ("sales_aggregates", "clickhouse_sales_aggregates"),
}
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def webserver(data_dir, defs, settings):
    """Two daily runs (different data, so the metadata plots have a line), and the freshness
    daemon's evaluation after them, on a real instance; then the webserver over it."""
    home = data_dir / "dagster_ui_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        for day, rows, seed in (("2026-11-28", 600, 9), ("2026-11-29", 900, 10)):
            result = defs.resolve_job_def("sales_job").execute_in_process(
                instance=instance, run_config=run_config(rows=rows, seed=seed), tags={RUN_DATE_TAG: day}
            )
            assert result.success
        with code_location(instance, settings) as workspace:
            list(FreshnessDaemon().run_iteration(workspace))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DAGSTER_HOME": str(home), "SALES_DATA_DIR": str(data_dir)}
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster-webserver")),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            str(PROJECT / "workspace.yaml"),
        ],
        env=env,
        cwd=PROJECT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/server_info", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dagster-webserver did not come up") from None
                time.sleep(1)
        yield base, result.run_id
    finally:
        server.terminate()
        server.wait(timeout=30)


def graphql(base: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"content-type": "application/json"},
    )
    payload = json.loads(urllib.request.urlopen(request, timeout=60).read())
    assert "errors" not in payload, payload["errors"]
    return payload["data"]


def test_graphql_has_the_assets_edges_materialization_and_checks(webserver):
    base, run_id = webserver
    nodes = graphql(base, "{ assetNodes { assetKey { path } dependencyKeys { path } groupName } }")["assetNodes"]
    keys = {n["assetKey"]["path"][0] for n in nodes}
    assert keys == set(ASSETS), f"assets in the UI: {sorted(keys)}"
    edges = {(d["path"][0], n["assetKey"]["path"][0]) for n in nodes for d in n["dependencyKeys"]}
    assert edges == EDGES, f"missing edges: {EDGES - edges}, unexpected: {edges - EDGES}"
    node = graphql(
        base,
        """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        assetMaterializations(limit: 1) { runId metadataEntries { label } }
        assetChecksOrError { ... on AssetChecks { checks { name blocking
            executionForLatestMaterialization { status } } } } } } }""",
        {"key": {"path": ["sales_aggregates"]}},
    )["assetNodeOrError"]
    latest = node["assetMaterializations"]
    assert latest and latest[0]["runId"] == run_id, "sales_aggregates has no materialization from the test run"
    labels = {e["label"] for e in latest[0]["metadataEntries"]}
    assert {"dagster/row_count", "dagster/table_name", "revenue_total", "top_regions"} <= labels
    checks = {c["name"]: c for c in node["assetChecksOrError"]["checks"]}
    assert checks[AGGREGATES_RECONCILE]["blocking"]
    assert checks[AGGREGATES_RECONCILE]["executionForLatestMaterialization"]["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} missing: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _page(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    page.goto(url, wait_until="networkidle")
    try:  # the UI may greet a new browser with a community dialog
        page.get_by_role("button", name="Skip").click(timeout=3000)
    except Exception:  # noqa: BLE001 - no dialog this time
        pass
    return page


def test_lineage_page_shows_the_five_assets(webserver, browser):
    base, _ = webserver
    page = _page(browser, f"{base}/asset-groups")
    page.mouse.click(1000, 700)  # focus the graph, then its "expand all groups" shortcut
    page.keyboard.press("Alt+KeyE")
    for name in ["raw_sales", "cleaned_sales", "rejected_sales", "sales_aggregates"]:
        page.get_by_text(name, exact=True).first.wait_for(timeout=20000)
    page.get_by_text("clickh", exact=False).first.wait_for(timeout=20000)  # the long name is elided
    page.screenshot(path=str(_shots() / "lineage.png"))
    assert (_shots() / "lineage.png").stat().st_size > 10_000
    page.close()


def _shots() -> Path:
    shots = Path(os.environ.get("SALES_UI_SCREENSHOT_DIR") or PROJECT / ".data" / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_graphql_has_two_revenue_totals_fresh_assets_and_the_next_tick(webserver):
    base, _ = webserver
    node = graphql(
        base,
        """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
        freshnessStatusInfo { freshnessStatus }
        assetMaterializations(limit: 2) { metadataEntries { label ... on FloatMetadataEntry { floatValue } } } } } }""",
        {"key": {"path": ["sales_aggregates"]}},
    )["assetNodeOrError"]
    assert node["freshnessStatusInfo"]["freshnessStatus"] == "HEALTHY"
    totals = [
        e["floatValue"]
        for m in node["assetMaterializations"]
        for e in m["metadataEntries"]
        if e["label"] == "revenue_total"
    ]
    assert len(totals) == 2 and totals[0] != totals[1], totals  # two points for the plot
    schedule = graphql(
        base,
        """{ scheduleOrError(scheduleSelector: {repositoryLocationName: "sales_assets",
        repositoryName: "__repository__", scheduleName: "daily_sales_schedule"}) { ... on Schedule {
        scheduleState { status } futureTicks(limit: 1) { results { timestamp } } } } }""",
    )["scheduleOrError"]
    assert schedule["scheduleState"]["status"] == "RUNNING"  # on from the start
    (tick,) = schedule["futureTicks"]["results"]
    tick = datetime.fromtimestamp(tick["timestamp"], UTC)
    assert (tick.hour, tick.minute) == (2, 0) and timedelta(0) < tick - datetime.now(UTC) <= timedelta(days=1)


def test_asset_page_tells_the_story(webserver, browser):
    """The asset page of sales_aggregates: its latest materialization, check results, freshness,
    owner, source link and schedule; its metadata plotted across the two runs; its checks tab."""
    base, _ = webserver
    page = _page(browser, f"{base}/assets/sales_aggregates")
    for text in ("Latest materialization", "Latest check results", "Freshness policy", "Passing", "sales-data"):
        page.get_by_text(text, exact=True).first.wait_for(timeout=20000)
    page.get_by_text("warehouse.py", exact=False).first.wait_for(timeout=20000)  # the source link
    page.get_by_text("At 02:00 AM UTC").first.wait_for(timeout=20000)  # the schedule
    page.screenshot(path=str(_shots() / "asset_page.png"))
    page.get_by_text("Plots", exact=True).first.click()
    plot = page.locator("div", has=page.get_by_text("revenue_total", exact=True)).filter(has=page.locator("canvas"))
    plot.last.wait_for(timeout=20000)
    plot.last.scroll_into_view_if_needed()
    page.screenshot(path=str(_shots() / "asset_plots.png"))
    page.close()
    page = _page(browser, f"{base}/assets/sales_aggregates?view=checks")
    # long names are middle-truncated on screen; the full name is in the row's measuring element
    page.get_by_text(AGGREGATES_RECONCILE).first.wait_for(state="attached", timeout=20000)
    page.get_by_text("This is a blocking asset check.").first.wait_for(timeout=20000)
    page.get_by_text("Passed").first.wait_for(timeout=20000)
    page.screenshot(path=str(_shots() / "asset_checks.png"))
    page.close()
    for name in ("asset_page.png", "asset_plots.png", "asset_checks.png"):
        assert (_shots() / name).stat().st_size > 10_000, name


def test_the_schedule_page_shows_the_next_tick(webserver, browser):
    base, _ = webserver
    page = _page(browser, f"{base}/locations/sales_assets/schedules/daily_sales_schedule")
    page.get_by_text("Next tick").first.wait_for(timeout=20000)
    page.get_by_text(re.compile(r"2:00:00 AM UTC")).first.wait_for(timeout=20000)
    page.get_by_text("Running", exact=True).first.wait_for(timeout=20000)
    page.close()
