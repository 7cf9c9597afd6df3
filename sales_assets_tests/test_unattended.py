"""What an unattended deployment relies on: owners, tags and source links on every asset, a
freshness policy that turns stale when a day's load is missing, failure alerts to a webhook that
may be down or slow, a max runtime on the job, and `dg check defs`."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import AssetSelection, DagsterInstance, build_sensor_context, instance_for_test, materialize
from dagster._core.test_utils import freeze_time
from dagster._daemon.freshness import FreshnessDaemon
from dagster_graphql.test.utils import execute_dagster_graphql

from sales_assets import checks as C
from sales_assets.alerts import ALERT_SENSOR, POST_TIMEOUT_S
from sales_assets.definitions import DUE_DAILY, build_definitions
from sales_assets.jobs import MAX_RUNTIME_TAG, SALES_JOB, freshness_deadline
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.settings import Settings
from sales_assets_tests.helpers import GOLDEN_DATE, TEST_ENV, Webhook, code_location, query, run_config

PROJECT = Path(__file__).resolve().parent.parent
ASSETS = {"raw_sales", "cleaned_sales", "rejected_sales", "sales_aggregates", "clickhouse_sales_aggregates"}


# --- ownership and navigation -------------------------------------------------------------------


def test_every_asset_has_owners_tags_and_a_link_to_the_line_that_defines_it():
    graph = build_definitions(Settings.from_env({})).resolve_asset_graph()
    assert {k.to_user_string() for k in graph.get_all_asset_keys()} == ASSETS
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners == ["team:sales-data"], key
        assert node.tags["domain"] == "sales" and node.tags["tier"], key
        (ref,) = node.metadata["dagster/code_references"].code_references
        lines = Path(ref.file_path).read_text().splitlines()[ref.line_number - 1 :]
        assert lines[0].lstrip().startswith("@"), (key, ref)  # the decorator, then the function
        name = key.to_user_string()
        function = "clean_sales" if name in ("cleaned_sales", "rejected_sales") else name  # one multi-asset
        assert any(line.lstrip().startswith(f"def {function}(") for line in lines[:15]), (key, ref)


def test_the_job_has_a_max_runtime_from_the_settings():
    job = build_definitions(Settings.from_env({"SALES_MAX_RUNTIME_SECONDS": "900"})).resolve_job_def(SALES_JOB)
    assert job.tags[MAX_RUNTIME_TAG] == "900"
    assert build_definitions(Settings.from_env({})).resolve_job_def(SALES_JOB).tags[MAX_RUNTIME_TAG] == "3600"


@pytest.mark.system
def test_dg_check_defs_loads_the_project_and_fails_on_a_broken_one():
    dg = str(Path(os.sys.executable).with_name("dg"))
    env = {**os.environ, **TEST_ENV}
    done = subprocess.run([dg, "check", "defs"], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All definitions loaded successfully" in done.stdout + done.stderr
    broken = subprocess.run(
        [dg, "check", "defs"], cwd=PROJECT, env={**env, "SALES_ROWS": "lots"}, capture_output=True, text=True
    )
    assert broken.returncode != 0 and "SALES_ROWS must be an integer" in broken.stdout + broken.stderr


# --- freshness ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "grace", "deadline"),
    [
        ("0 2 * * *", 120, "0 4 * * *"),
        ("30 23 * * *", 60, "30 0 * * *"),  # every day: past midnight is the next day's 00:30
        ("0 2 * * 1-5", 90, "30 3 * * 1-5"),  # weekdays, within the day
        ("0 23 * * 1-5", 120, "0 23 * * 1-5"),  # would move to another weekday: the tick itself
        ("*/15 * * * *", 5, "*/15 * * * *"),  # not a fixed time of day: the tick itself
    ],
)
def test_the_freshness_deadline_is_the_schedule_tick_plus_the_grace(cron, grace, deadline):
    assert freshness_deadline(cron, grace) == deadline


def test_only_what_readers_need_has_a_freshness_policy_and_it_follows_the_schedule():
    settings = Settings.from_env(
        {"SALES_SCHEDULE_CRON": "15 6 * * *", "SALES_TIMEZONE": "Europe/Moscow", "SALES_FRESHNESS_GRACE_MINUTES": "45"}
    )
    graph = build_definitions(settings).resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        policy = graph.get(key).freshness_policy
        if key.to_user_string() in DUE_DAILY:
            assert (policy.deadline_cron, policy.timezone) == ("0 7 * * *", "Europe/Moscow")
            assert policy.lower_bound_delta == timedelta(days=1)
        else:
            assert policy is None, key


FRESHNESS = """
query ($path: [String!]!) {
  assetNodes(assetKeys: [{path: $path}]) { freshnessStatusInfo { freshnessStatus } }
}"""


def _freshness(workspace, asset: str, at: datetime) -> str:
    """The daemon's freshness evaluation at `at`, then what the UI's GraphQL API says."""
    with freeze_time(at):
        list(FreshnessDaemon().run_iteration(workspace))
        result = execute_dagster_graphql(workspace.create_request_context(), FRESHNESS, {"path": [asset]})
    assert not result.errors, result.errors
    info = result.data["assetNodes"][0]["freshnessStatusInfo"]
    return info and info["freshnessStatus"]


@pytest.mark.integration
def test_fresh_after_a_run_and_stale_once_a_deadline_passes_without_one(settings, spark_resource, pg):
    with instance_for_test() as instance:
        result = (
            build_definitions(settings, spark=spark_resource)
            .resolve_job_def(SALES_JOB)
            .execute_in_process(
                instance=instance, run_config=run_config(rows=500, seed=3), tags={RUN_DATE_TAG: "2026-11-30"}
            )
        )
        assert result.success
        loaded = datetime.now(UTC)
        deadline = freshness_deadline(settings.schedule_cron, settings.freshness_grace_minutes)
        assert deadline == "0 4 * * *"
        # a load counts for every deadline up to a day after it: the first one past that finds it missing
        missed = (loaded + timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)
        if missed - loaded <= timedelta(days=1):
            missed += timedelta(days=1)
        with code_location(instance, settings) as workspace:
            for asset in sorted(DUE_DAILY):
                assert _freshness(workspace, asset, loaded + timedelta(minutes=1)) == "HEALTHY", asset
                assert _freshness(workspace, asset, missed - timedelta(minutes=1)) == "HEALTHY", asset
                assert _freshness(workspace, asset, missed + timedelta(minutes=1)) == "DEGRADED", asset
            assert _freshness(workspace, "raw_sales", missed + timedelta(minutes=1)) is None  # no policy


# --- failure alerts -----------------------------------------------------------------------------


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def _tick(sensor, instance: DagsterInstance, cursor: str | None):
    context = build_sensor_context(instance=instance, cursor=cursor)
    started = time.monotonic()
    outcome = sensor(context)
    return outcome, context.cursor, time.monotonic() - started


def _sensor(settings, **env):
    defs = build_definitions(Settings.from_env({**TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir), **env}))
    return defs.resolve_sensor_def(ALERT_SENSOR)


def _failed_run(defs, instance, tmp_path):
    missing = tmp_path / "no-such-file.csv"
    result = defs.resolve_job_def(SALES_JOB).execute_in_process(
        instance=instance, run_config=run_config(source_path=str(missing)), raise_on_error=False
    )
    assert not result.success
    return result.run_id


@pytest.mark.integration
def test_a_failed_run_is_posted_once_with_its_step_error_and_link(defs, settings, webhook, tmp_path):
    sensor = _sensor(settings, SALES_ALERT_WEBHOOK=webhook.url, SALES_UI_URL="http://dagster.example:3000/")
    with instance_for_test() as instance:
        _, cursor, _ = _tick(sensor, instance, None)  # the first tick starts watching from now
        run_id = _failed_run(defs, instance, tmp_path)
        _, cursor, _ = _tick(sensor, instance, cursor)
        _, cursor, _ = _tick(sensor, instance, cursor)  # nothing new: nothing posted twice
    (post,) = webhook.posts
    assert post["path"] == "/services/T000/B000/secret-part" and post["type"] == "application/json"
    assert (post["job"], post["run_id"], post["status"], post["step"]) == (SALES_JOB, run_id, "failed", "raw_sales")
    assert post["error"].startswith("SourceFileError: source_path ") and post["error"].endswith("does not exist")
    assert post["url"] == f"http://dagster.example:3000/runs/{run_id}"
    assert post["text"].startswith(f":red_circle: {SALES_JOB} run {run_id[:8]} failed at step raw_sales: ")
    assert "secret-part" not in json.dumps(post, default=str).replace(post["path"], "")
    assert json.loads(cursor)["pending"] == []


@pytest.mark.integration
def test_a_webhook_down_or_slow_costs_one_timeout_and_the_alert_goes_out_later(defs, settings, tmp_path):
    slow = Webhook(delay_s=POST_TIMEOUT_S + 5)
    try:
        sensor = _sensor(settings, SALES_ALERT_WEBHOOK=slow.url)
        with instance_for_test() as instance:
            _, cursor, _ = _tick(sensor, instance, None)
            first, second = _failed_run(defs, instance, tmp_path), _failed_run(defs, instance, tmp_path)
            outcome, cursor, seconds = _tick(sensor, instance, cursor)
            assert seconds < POST_TIMEOUT_S + 3, seconds  # one timeout, not one per alert, never a hang
            assert [a["run_id"] for a in json.loads(cursor)["pending"]] == [first, second]
            assert "not delivered yet" in outcome.skip_message
            down = _sensor(settings, SALES_ALERT_WEBHOOK="http://127.0.0.1:9/hook")  # nothing listens
            _, cursor, _ = _tick(down, instance, cursor)
            assert len(json.loads(cursor)["pending"]) == 2
            slow.delay_s = 0  # the webhook is back
            _, cursor, _ = _tick(sensor, instance, cursor)
            assert json.loads(cursor)["pending"] == []
        delivered = [p["run_id"] for p in slow.posts]
        assert delivered[-2:] == [first, second] and delivered.count(second) == 1
    finally:
        slow.close()


@pytest.mark.integration
def test_without_a_webhook_the_alert_is_logged(defs, settings, tmp_path, capfd):
    sensor = _sensor(settings)
    with instance_for_test() as instance:
        _, cursor, _ = _tick(sensor, instance, None)
        run_id = _failed_run(defs, instance, tmp_path)
        _, cursor, _ = _tick(sensor, instance, cursor)
    assert json.loads(cursor)["pending"] == []
    logged = capfd.readouterr().err
    assert (
        f"run alert (SALES_ALERT_WEBHOOK unset, logged only): :red_circle: {SALES_JOB} run {run_id[:8]} failed"
        in logged
    )


@pytest.mark.integration
def test_a_blocking_check_that_stopped_the_graph_is_named_in_the_alert(golden_state, defs, pg):
    from sales_assets.alerts import alert_payload

    with pg.connect() as conn:
        conn.execute("update sales.cleaned_sales set amount = amount * 2")  # every row now invalid
    with instance_for_test() as instance:
        result = materialize(
            [*defs.assets, *C.ALL_CHECKS],
            selection=AssetSelection.assets("sales_aggregates") | AssetSelection.checks(C.cleaned_rows_valid),
            resources=defs.resources,
            instance=instance,
            tags={RUN_DATE_TAG: GOLDEN_DATE},
            raise_on_error=False,
        )
        assert not result.success
        payload = alert_payload(instance, instance.get_run_by_id(result.run_id), "http://localhost:3000")
    assert C.CLEANED_VALID in payload["step"] + payload["error"], payload
    assert payload["status"] == "failed"
    assert query(pg, "select count(*) from sales.cleaned_sales")[0][0] > 0
