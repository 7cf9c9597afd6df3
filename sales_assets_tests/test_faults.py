"""Faults mid-load: nothing partial is ever visible, and the next run recovers on its own."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import psycopg
import pytest

from sales_assets.contract import CLICKHOUSE_AGGREGATES, PG_TABLES
from sales_assets.io_managers.clickhouse import ClickHouseIOManager, create_table_sql
from sales_assets.pg_transfer import write
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import (
    GOLDEN_CONFIG,
    GOLDEN_DATE,
    ch_rows,
    clickhouse_staging_tables,
    events_of,
    failed_steps,
    query,
    staging_tables,
    table_digest,
)

pytestmark = pytest.mark.integration
RUN_DATE = GOLDEN_DATE
TAGS = {RUN_DATE_TAG: RUN_DATE}


@pytest.fixture
def good_state(golden_state):
    """The golden run's tables and ClickHouse snapshot, restored: what a failed run must leave."""
    return golden_state.digests, golden_state.clickhouse


class _CopyCutter(threading.Thread):
    """Another PostgreSQL session that terminates the backend of each COPY into a staging table of
    `table` (as a failover, an admin or a network cut would), up to `times` times."""

    def __init__(self, dsn: str, table: str, times: int):
        super().__init__(daemon=True)
        self.dsn, self.pattern, self.times = dsn, f"copy %_stage_{table}_%", times
        self.cut: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self.done.is_set() and len(self.cut) < self.times:
                for (pid,) in conn.execute(
                    "select pid from pg_stat_activity where query ilike %s and state = 'active'", (self.pattern,)
                ).fetchall():
                    if pid not in self.cut and conn.execute("select pg_terminate_backend(%s)", (pid,)).fetchone()[0]:
                        self.cut.append(pid)
                time.sleep(0.05)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join()


def _slow_copies(monkeypatch, seconds: float = 1.5) -> None:
    """Each task holds its COPYs open for `seconds` after their first batch, so the cutter meets them
    streaming (400 lines would otherwise be copied before anyone could look)."""
    original = write.copy_partition_fn

    def slow(dsn, targets, tally):
        copy = original(dsn, targets, tally)

        def copy_slowly(batches):
            def first_then_wait():
                import time

                for i, batch in enumerate(batches):
                    yield batch
                    if i == 0:
                        time.sleep(seconds)

            yield from copy(first_then_wait())

        return copy_slowly

    monkeypatch.setattr(write, "copy_partition_fn", slow)


def _events(result, kind: str, step: str = "clean_sales") -> list:
    return events_of(result, kind, step)


def test_a_connection_cut_mid_copy_is_retried_twice_with_backoff_then_fails_keeping_the_tables(
    good_state, run_job, instance, pg, settings, monkeypatch
):
    _slow_copies(monkeypatch)
    with _CopyCutter(pg.dsn, "cleaned_sales", times=10) as cutter:
        result = run_job(tags=TAGS, rows=1500, seed=32, raise_on_error=False)  # other data than the good run
    assert not result.success
    assert len(cutter.cut) == 3, cutter.cut  # every try's COPY was cut on the server
    retries = _events(result, "STEP_UP_FOR_RETRY")
    delay = settings.retry_delay_s
    assert [e.event_specific_data.seconds_to_wait for e in retries] == [delay, 3 * delay]  # 2 more tries
    logged = {
        kind: [
            e.timestamp
            for e in instance.all_logs(result.run_id)
            if e.dagster_event
            and e.dagster_event.step_key == "clean_sales"
            and e.dagster_event.event_type_value == kind
        ]
        for kind in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")
    }
    waited = [b - a for a, b in zip(logged["STEP_UP_FOR_RETRY"], logged["STEP_RESTARTED"], strict=True)]
    assert len(waited) == 2 and waited[0] >= delay and waited[1] >= 3 * delay, waited
    error = _events(result, "STEP_FAILURE")[0].step_failure_data.error.to_string()
    assert "terminating connection due to administrator command" in error, error[-2000:]
    digests, _ = good_state
    assert {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES} == digests  # both tables, the previous ones
    assert staging_tables(pg) == []
    monkeypatch.undo()
    assert run_job(tags=TAGS, rows=1500, seed=32).success
    assert (
        query(pg, "select count(*) from sales.cleaned_sales")[0][0]
        + query(pg, "select count(*) from sales.rejected_sales")[0][0]
        == 1500
    )
    assert staging_tables(pg) == []


def _wrap_clickhouse_client(monkeypatch, method: str, wrap) -> None:
    """During each ClickHouse load, the client's `method` is `wrap(the real one)`."""
    original = ClickHouseIOManager.replace_snapshot

    def replace_snapshot(self, snapshot, token):
        client = self.clickhouse.get_client()
        real = getattr(client, method)
        monkeypatch.setattr(client, method, wrap(real))
        try:
            return original(self, snapshot, token)
        finally:
            monkeypatch.setattr(client, method, real)

    monkeypatch.setattr(ClickHouseIOManager, "replace_snapshot", replace_snapshot)


def test_clickhouse_load_failing_halfway_keeps_the_snapshot_and_a_retry_loads_it_once(
    good_state, run_job, ch, monkeypatch
):
    _, snapshot = good_state

    def failing_before_the_swap(command):
        def wrapped(sql, *args, **kwargs):
            if "replace partition" in sql:
                raise RuntimeError("injected failure before the partition swap")
            return command(sql, *args, **kwargs)

        return wrapped

    _wrap_clickhouse_client(monkeypatch, "command", failing_before_the_swap)
    result = run_job(tags=TAGS, rows=1500, seed=33, raise_on_error=False)
    assert not result.success
    assert ch_rows(ch, RUN_DATE) == snapshot  # the old snapshot, whole
    assert clickhouse_staging_tables(ch) == 0
    monkeypatch.undo()
    assert run_job(tags=TAGS, rows=1500, seed=33).success
    after = ch_rows(ch, RUN_DATE)
    assert after != snapshot and len(after) == len(set(after))  # the new snapshot, loaded once


def test_a_clickhouse_stage_holding_other_than_the_snapshots_rows_is_never_swapped_in(
    good_state, run_job, ch, monkeypatch
):
    _, snapshot = good_state

    def inserting_twice(insert_arrow):  # as an insert retried after a lost acknowledgement would
        def wrapped(table, rows, *args, **kwargs):
            insert_arrow(table, rows, *args, **kwargs)
            return insert_arrow(table, rows, *args, **kwargs)

        return wrapped

    _wrap_clickhouse_client(monkeypatch, "insert_arrow", inserting_twice)
    result = run_job(tags=TAGS, rows=1500, seed=33, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failed_steps(result) == ["clickhouse_sales_aggregates"]
    error = failures[0].step_failure_data.error.to_string()
    found = re.search(r"staged (\d+) rows into ClickHouse, expected (\d+)", error)
    assert found, error[-2000:]
    staged, expected = map(int, found.groups())
    assert staged == 2 * expected > 0
    assert ch_rows(ch, RUN_DATE) == snapshot  # the old snapshot, whole
    assert clickhouse_staging_tables(ch) == 0


def test_a_raw_sales_write_failing_midway_leaves_the_previous_parquet(
    good_state, run_job, spark, settings, monkeypatch
):
    from pyspark.sql import functions as F

    from sales_assets.assets import ingest

    def raw():
        frame = spark.read.parquet(f"{settings.parquet_uri}/raw_sales")
        return frame.count(), frame.agg(F.sum(F.crc32(F.concat_ws("|", *frame.columns)))).first()[0]

    before = raw()
    generate = ingest.generate_raw_sales

    def failing_in_the_write(*args, **kwargs):  # some dates' lines fail as the files are being written
        frame = generate(*args, **kwargs)
        fails = F.dayofmonth("import_date") == 15
        return frame.withColumn(
            "product", F.when(fails, F.raise_error(F.lit("injected: disk full"))).otherwise(F.col("product"))
        )

    monkeypatch.setattr(ingest, "generate_raw_sales", failing_in_the_write)
    result = run_job(tags=TAGS, rows=1500, seed=32, raise_on_error=False)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert [e.step_key for e in failures] == ["raw_sales"]
    assert "injected: disk full" in failures[0].step_failure_data.error.to_string()
    assert raw() == before  # the previous dataset, whole: the write went to a sibling directory
    monkeypatch.undo()
    assert run_job(tags=TAGS, rows=1500, seed=32).success
    assert raw()[0] == 1500
    aside = [p.name for p in Path(settings.parquet_uri).iterdir() if p.name.startswith("raw_sales.__")]
    assert aside == []  # the write's staging and previous directories are gone


def test_a_killed_runs_clickhouse_stage_is_dropped_by_the_next_load(good_state, run_job, ch):
    ch.get_client().command(
        create_table_sql(CLICKHOUSE_AGGREGATES, "_stage_sales_aggregates_0badc0ffee00")
    )  # as a SIGKILL leaves it
    assert run_job(tags=TAGS, rows=1500, seed=33).success
    assert clickhouse_staging_tables(ch) == 0


def test_a_connection_cut_once_is_retried_and_the_run_succeeds(good_state, run_job, pg, monkeypatch):
    _slow_copies(monkeypatch)
    with _CopyCutter(pg.dsn, "cleaned_sales", times=1) as cutter:
        result = run_job(tags=TAGS, **GOLDEN_CONFIG)
    assert result.success
    assert len(cutter.cut) == 1
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 1
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


def _aggregates_with_a_group_twice(cleaned, **options):
    from sales_assets.transforms.aggregate import aggregate_sales

    aggregates = aggregate_sales(cleaned, **options)
    # a product-grain row, whose region is NULL: only a key with NULLS NOT DISTINCT refuses it twice
    return aggregates.unionByName(aggregates.filter("grain = 'product'").limit(1))


@pytest.mark.parametrize(
    "step, target, spoiled, sqlstate, its_tables",
    [
        # refused by a task's COPY
        ("clean_sales", "routed_lines", _nul_in_cleaned_products, "22021", ["cleaned_sales", "rejected_sales"]),
        # refused in the I/O manager's load
        ("sales_aggregates", "aggregate_sales", _aggregates_without_grain, "23502", ["sales_aggregates"]),
        # refused by the unique key (grain, region, product) when the load adds it
        ("sales_aggregates", "aggregate_sales", _aggregates_with_a_group_twice, "23505", ["sales_aggregates"]),
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
