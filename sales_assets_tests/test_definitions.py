"""The code location loads, every job and schedule resolves, the schedule stamps its tick's date."""

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, build_schedule_context

from sales_assets import connections
from sales_assets.definitions import build_definitions
from sales_assets.jobs import DAILY_SCHEDULE, SALES_JOB
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.settings import Settings

ASSET_KEYS = {"raw_sales", "cleaned_sales", "rejected_sales", "sales_aggregates", "clickhouse_sales_aggregates"}


def test_module_definitions_load_and_resolve():
    from sales_assets.definitions import defs as load_defs

    defs = load_defs()  # what Dagster calls when it loads the code location
    assert {k.to_user_string() for k in defs.resolve_all_asset_keys()} == ASSET_KEYS
    # one job of ours (Dagster adds its implicit asset job), and it materializes every asset
    assert {job.name for job in defs.resolve_all_job_defs()} - {"__ASSET_JOB"} == {SALES_JOB}
    job = defs.resolve_job_def(SALES_JOB)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == ASSET_KEYS
    assert job.executor_def.name == "in_process"
    assert [s.name for s in defs.schedules] == [DAILY_SCHEDULE]
    assert defs.resolve_schedule_def(DAILY_SCHEDULE).job_name == SALES_JOB


def test_importing_the_code_location_reads_no_environment():
    """Settings are read when the definitions are built, never at import: a bad value fails the
    load with its own message, and tests need not clean the environment before importing."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "SALES_ROWS": "lots"}
    probe = "import sales_assets.definitions, sales_assets.cli, sales_assets.summary; print('imported')"
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == "imported", done.stderr
    load = subprocess.run(
        [sys.executable, "-c", "from sales_assets.definitions import defs; defs()"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert load.returncode != 0 and "SALES_ROWS must be an integer, got 'lots'" in load.stderr


def test_the_raw_sales_config_defaults_come_from_the_settings(tmp_path):
    settings = Settings.from_env({"SALES_ROWS": "1234", "SALES_SEED": "7", "SALES_DATA_DIR": str(tmp_path)})
    fields = build_definitions(settings).get_assets_def("raw_sales").op.config_schema.config_type.fields
    assert (fields["rows"].default_value, fields["seed"].default_value) == (1234, 7)


def test_lineage_is_the_contract_graph():
    from sales_assets.definitions import defs as load_defs

    graph = load_defs().resolve_asset_graph()
    parents = {
        k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()
    }
    assert parents == {
        "raw_sales": set(),
        "cleaned_sales": {"raw_sales"},
        "rejected_sales": {"raw_sales"},
        "sales_aggregates": {"cleaned_sales"},
        "clickhouse_sales_aggregates": {"sales_aggregates"},
    }
    assert graph.get(AssetKey("sales_aggregates")).kinds == {"spark", "postgres"}


def test_schedule_uses_env_cron_and_timezone_and_stamps_the_tick_date():
    settings = Settings.from_env({"SALES_SCHEDULE_CRON": "30 3 * * *", "SALES_TIMEZONE": "Europe/Moscow"})
    schedule = build_definitions(settings).resolve_schedule_def(DAILY_SCHEDULE)
    assert schedule.cron_schedule == "30 3 * * *"
    assert schedule.execution_timezone == "Europe/Moscow"
    tick = datetime(2026, 3, 9, 3, 30, tzinfo=ZoneInfo("Europe/Moscow"))
    requests = schedule.evaluate_tick(build_schedule_context(scheduled_execution_time=tick)).run_requests
    assert len(requests) == 1
    assert requests[0].tags[RUN_DATE_TAG] == "2026-03-09"
    assert requests[0].run_key == "2026-03-09"


def test_default_settings_match_the_contract():
    s = Settings.from_env({})
    assert (s.rows, s.seed, s.spark_master, s.schedule_cron, s.timezone) == (
        1_000_000,
        42,
        "local[*]",
        "0 2 * * *",
        "UTC",
    )
    assert s.pg_url is None and s.ch_url is None and s.source_path is None and s.spark_remote is None
    assert str(s.data_dir).endswith(".data")


def test_every_step_retries_transient_faults_after_the_delay_the_settings_give():
    for env, delay in (({}, 2.0), ({"SALES_RETRY_DELAY_SECONDS": "0.25"}, 0.25)):
        job = build_definitions(Settings.from_env(env)).resolve_job_def("sales_job")
        steps = {"raw_sales", "clean_sales", "sales_aggregates", "clickhouse_sales_aggregates"}  # the checks: never
        policies = {node.name: node.retry_policy for node in job.graph.node_defs if node.name in steps}
        assert set(policies) == steps
        assert {(p.max_retries, p.delay, p.backoff.value) for p in policies.values()} == {(2, delay, "EXPONENTIAL")}
    with pytest.raises(ValueError, match="SALES_RETRY_DELAY_SECONDS must be a number of seconds"):
        Settings.from_env({"SALES_RETRY_DELAY_SECONDS": "soon"})
    with pytest.raises(ValueError, match="0 or more"):
        Settings.from_env({"SALES_RETRY_DELAY_SECONDS": "-1"})


def test_an_asset_without_a_tier_fails_when_the_definitions_are_built(monkeypatch):
    from sales_assets import definitions

    monkeypatch.delitem(definitions.TIERS, "rejected_sales")
    with pytest.raises(ValueError, match="rejected_sales"):
        build_definitions(Settings.from_env({}))


def test_spark_settings_from_the_environment_go_over_the_defaults():
    default = connections.spark(Settings.from_env({})).spark_config
    assert default["spark.ui.enabled"] == "true"  # the server starts once: its UI costs no run anything
    settings = Settings.from_env(
        {"SALES_SPARK_CONF": "spark.ui.enabled=false spark.driver.extraJavaOptions='-Xss4m -Dsales=1'"}
    )
    config = connections.spark(settings).spark_config
    assert config["spark.ui.enabled"] == "false"
    assert config["spark.driver.extraJavaOptions"] == "-Xss4m -Dsales=1"
    assert config["spark.master"] == default["spark.master"]
    with pytest.raises(ValueError, match="spark.key=value"):
        Settings.from_env({"SALES_SPARK_CONF": "executor.memory=4g"})


@pytest.mark.integration
def test_parquet_assets_go_to_sales_parquet_uri_apart_from_the_data_dir(settings, spark_resource, pg, tmp_path):
    from dagster import AssetSelection, instance_for_test, materialize

    from sales_assets.checks import ALL_CHECKS, RAW_ROW_COUNT
    from sales_assets_tests.helpers import TEST_ENV, run_config

    lake = f"file://{tmp_path}/lake"  # a URI, as hdfs:// or s3a:// would be, not a local path
    uri_settings = Settings.from_env({**TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir), "SALES_PARQUET_URI": lake})
    defs = build_definitions(uri_settings, spark=spark_resource)
    with instance_for_test() as instance:
        result = materialize(
            [*defs.assets, *ALL_CHECKS],
            selection=AssetSelection.assets("raw_sales"),
            resources=defs.resources,
            instance=instance,
            run_config=run_config(rows=400, seed=5),
            tags={RUN_DATE_TAG: "2026-11-01"},
        )
    assert result.success
    [materialization] = result.asset_materializations_for_node("raw_sales")
    assert materialization.metadata["dagster/uri"].value == f"{lake}/raw_sales"
    assert list((tmp_path / "lake" / "raw_sales").glob("part-*.parquet"))
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == RAW_ROW_COUNT and check.passed and check.metadata["stored_rows"].value == 400
