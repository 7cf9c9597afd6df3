"""Faults mid-load: nothing partial is ever visible, and the next run recovers on its own."""

from __future__ import annotations

import pytest

from sales_assets.contract import CLICKHOUSE_AGGREGATES, PG_TABLES
from sales_assets.io_managers.clickhouse import ClickHouseIOManager, create_table_sql
from sales_assets.pg_transfer import write
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.conftest import query
from sales_assets_tests.test_pipeline import ch_rows, table_digest

pytestmark = pytest.mark.integration
RUN_DATE = "2026-05-05"
TAGS = {RUN_DATE_TAG: RUN_DATE}


def staging_tables(pg) -> list:
    return query(pg, "select tablename from pg_tables where schemaname = 'sales' and tablename like '\\_stage%%'")


@pytest.fixture
def good_state(run_job, pg, ch):
    assert run_job(tags=TAGS, rows=1200, seed=31).success
    return {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES}, ch_rows(ch, RUN_DATE)


def test_postgres_load_failing_halfway_keeps_the_previous_table(good_state, run_job, pg, monkeypatch):
    original = write.copy_partition_fn

    def failing_after_first_batch(dsn, targets, tally):
        copy = original(dsn, targets, tally)

        def copy_then_fail(batches):
            def some_then_boom():
                yield next(batches)  # one batch reaches the COPY, then the executor dies
                raise RuntimeError("injected failure in the middle of the load")

            yield from copy(some_then_boom())

        return copy_then_fail

    monkeypatch.setattr(write, "copy_partition_fn", failing_after_first_batch)
    result = run_job(tags=TAGS, rows=1500, seed=32, raise_on_error=False)  # other data than the good run
    assert not result.success
    assert "injected failure" in str(
        [e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure]
    )
    digests, _ = good_state
    assert {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES} == digests
    assert staging_tables(pg) == []
    monkeypatch.undo()
    assert run_job(tags=TAGS, rows=1500, seed=32).success
    assert (
        query(pg, "select count(*) from sales.cleaned_sales")[0][0]
        + query(pg, "select count(*) from sales.rejected_sales")[0][0]
        == 1500
    )
    assert staging_tables(pg) == []


def test_clickhouse_load_failing_halfway_keeps_the_snapshot_and_a_retry_loads_it_once(
    good_state, run_job, ch, monkeypatch
):
    _, snapshot = good_state
    original = ClickHouseIOManager.replace_snapshot

    def insert_then_fail(self, snapshot, token):
        client = self.clickhouse.get_client()
        real_command = client.command

        def command(sql, *args, **kwargs):
            if "replace partition" in sql:
                raise RuntimeError("injected failure before the partition swap")
            return real_command(sql, *args, **kwargs)

        monkeypatch.setattr(client, "command", command)
        try:
            return original(self, snapshot, token)
        finally:
            monkeypatch.setattr(client, "command", real_command)

    monkeypatch.setattr(ClickHouseIOManager, "replace_snapshot", insert_then_fail)
    result = run_job(tags=TAGS, rows=1500, seed=33, raise_on_error=False)
    assert not result.success
    assert ch_rows(ch, RUN_DATE) == snapshot  # the old snapshot, whole
    assert (
        ch.get_client().command("select count() from system.tables where database = 'sales' and name like '\\_stage%'")
        == 0
    )
    monkeypatch.undo()
    assert run_job(tags=TAGS, rows=1500, seed=33).success
    after = ch_rows(ch, RUN_DATE)
    assert after != snapshot and len(after) == len(set(after))  # the new snapshot, loaded once


def test_a_killed_runs_clickhouse_stage_is_dropped_by_the_next_load(good_state, run_job, ch):
    ch.get_client().command(
        create_table_sql(CLICKHOUSE_AGGREGATES, "_stage_sales_aggregates_0badc0ffee00")
    )  # as a SIGKILL leaves it
    assert run_job(tags=TAGS, rows=1500, seed=33).success
    assert (
        ch.get_client().command("select count() from system.tables where database = 'sales' and name like '\\_stage%'")
        == 0
    )


def test_a_transient_load_failure_is_retried_and_the_run_succeeds(good_state, run_job, pg, monkeypatch, tmp_path):
    marker = str(tmp_path / "failed-once")
    original = write.copy_partition_fn

    def failing_once(dsn, targets, tally):
        copy = original(dsn, targets, tally)
        loads_cleaned_sales = any(t.stage.startswith("_stage_cleaned_sales") for t in targets)

        def copy_or_fail_first_time(batches):
            import os

            if loads_cleaned_sales and not os.path.exists(marker):
                open(marker, "w").close()
                raise ConnectionError("injected: connection reset by peer")
            yield from copy(batches)

        return copy_or_fail_first_time

    monkeypatch.setattr(write, "copy_partition_fn", failing_once)
    result = run_job(tags=TAGS, rows=1200, seed=31)
    assert result.success
    retried = [e.step_key for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert retried == ["clean_sales"]
    digests, _ = good_state
    assert {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES} == digests  # same input, same tables


def test_bad_input_is_not_retried(run_job, tmp_path):
    result = run_job(tags=TAGS, source_path=str(tmp_path / "missing.csv"), raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


def _nul_in_cleaned_products(classified):
    from pyspark.sql import functions as F

    from sales_assets.transforms.clean import routed_lines

    routed = routed_lines(classified)  # as if a cleaning rule let through what PostgreSQL text cannot hold
    return routed.withColumn("cleaned_sales", F.col("cleaned_sales").withField("product", F.lit("nul\x00byte")))


def _aggregates_without_grain(cleaned, **options):
    from pyspark.sql import functions as F

    from sales_assets.transforms.aggregate import aggregate_sales

    return aggregate_sales(cleaned, **options).withColumn("grain", F.lit(None).cast("string"))  # grain is NOT NULL


@pytest.mark.parametrize(
    "step, target, spoiled, sqlstate, its_tables",
    [
        # refused by a task's COPY
        ("clean_sales", "routed_lines", _nul_in_cleaned_products, "22021", ["cleaned_sales", "rejected_sales"]),
        # refused in the I/O manager's load
        ("sales_aggregates", "aggregate_sales", _aggregates_without_grain, "23502", ["sales_aggregates"]),
    ],
)
def test_rows_postgresql_refuses_fail_the_step_at_once_and_keep_its_tables(
    good_state, run_job, pg, monkeypatch, step, target, spoiled, sqlstate, its_tables
):
    from sales_assets.assets import warehouse

    monkeypatch.setattr(warehouse, target, spoiled)
    result = run_job(tags=TAGS, rows=1500, seed=32, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]  # an error in the data
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == [step]
    assert f"SQLSTATE {sqlstate})" in failures[0].step_failure_data.error.message
    digests, _ = good_state
    assert {t: table_digest(pg, f"sales.{t}") for t in its_tables} == {t: digests[t] for t in its_tables}
    assert staging_tables(pg) == []
