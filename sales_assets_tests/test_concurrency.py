"""Two materializations at the same time: the second one queues behind the run lock (or, past its
timeout, fails before touching anything); tables never mix data from two runs."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest
from dagster import DagsterRunStatus

from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets.resources.run_lock import APPLICATION_NAME, LOCK_NAME
from sales_assets_tests.helpers import query, run_config

pytestmark = pytest.mark.integration

DIGEST = "select count(*), coalesce(sum(hashtext(t::text)::bigint), 0) from sales.{} t"


def _digests(pg) -> dict:
    return {t: query(pg, DIGEST.format(t))[0] for t in ("cleaned_sales", "rejected_sales", "sales_aggregates")}


def _hold_lock(pg) -> psycopg.Connection:
    """Another materialization, as far as the lock can tell."""
    conn = pg.connect()
    conn.execute("set application_name = 'the other run'")
    conn.execute("select pg_advisory_lock(hashtext(%s), 0)", (LOCK_NAME,))
    return conn


def _execute(defs, instance, lock_config: dict, **raw_sales_config):
    job = defs.resolve_job_def("sales_job")
    config = {**run_config(**raw_sales_config), "resources": {"run_lock": {"config": lock_config}}}
    return job.execute_in_process(instance=instance, run_config=config, raise_on_error=False)


def test_a_run_that_cannot_get_the_lock_in_time_fails_before_touching_anything(defs, instance, golden_state, pg):
    before = _digests(pg)
    holder = _hold_lock(pg)
    try:
        started = time.monotonic()
        result = _execute(defs, instance, {"wait_timeout_s": 2, "poll_s": 0.2}, rows=900, seed=4)
        waited = time.monotonic() - started
    finally:
        holder.close()
    assert not result.success
    errors = [
        e.event_specific_data.error.to_string()
        for e in result.all_events
        if e.event_type_value == "RESOURCE_INIT_FAILURE"
    ]
    assert errors and "another materialization (the other run, PostgreSQL backend" in errors[0], errors
    assert "run lock for over 2 s" in errors[0]
    assert 2 <= waited < 60
    run = instance.get_runs(limit=1)[0]
    assert run.status == DagsterRunStatus.FAILURE
    assert not [e for e in instance.all_logs(run.run_id) if e.is_dagster_event and e.dagster_event.is_step_start], (
        "a step ran without the lock"
    )
    assert _digests(pg) == before


def test_a_second_run_queues_until_the_first_releases_the_lock(defs, instance, golden_state, pg):
    before = _digests(pg)
    holder = _hold_lock(pg)
    outcome: dict = {}

    def second_run():
        outcome["result"] = _execute(defs, instance, {"wait_timeout_s": 120, "poll_s": 0.2}, rows=1200, seed=8)

    thread = threading.Thread(target=second_run)
    try:
        thread.start()
        deadline = time.monotonic() + 60
        waiting = []
        while not waiting and time.monotonic() < deadline:
            waiting = query(
                pg, "select pid from pg_stat_activity where application_name like %s", (f"{APPLICATION_NAME} %",)
            )
            time.sleep(0.2)
        assert waiting, "the second run never asked for the lock"
        time.sleep(2)
        assert thread.is_alive(), "the second run did not wait for the lock"
        assert _digests(pg) == before  # and wrote nothing while it waited
    finally:
        released_at = time.time()
        holder.close()  # the first run ends
    thread.join(timeout=600)
    result = outcome["result"]
    assert result.success
    step_starts = [
        e.timestamp for e in instance.all_logs(result.run_id) if e.is_dagster_event and e.dagster_event.is_step_start
    ]
    assert step_starts and min(step_starts) >= released_at  # no step before the lock was released
    messages = " ".join(e.user_message for e in instance.all_logs(result.run_id))
    assert "waiting for another materialization to finish (the other run" in messages
    assert (
        query(pg, "select count(*) from sales.cleaned_sales")[0][0]
        + query(pg, "select count(*) from sales.rejected_sales")[0][0]
        == 1200
    )
    # the lock went with the run: nothing holds it now
    assert not query(
        pg,
        "select 1 from pg_locks where locktype = 'advisory' and objsubid = 2 and classid = hashtext(%s)::oid",
        (LOCK_NAME,),
    )


def _env(data_dir: Path, rows: int, seed: int) -> dict:
    return {
        **os.environ,
        "SALES_DATA_DIR": str(data_dir),
        "SALES_SPARK_MASTER": "local[2]",
        "SALES_ROWS": str(rows),
        "SALES_SEED": str(seed),
        "SALES_PG_URL": "",
        "SALES_CH_URL": "",
        "SALES_SOURCE_PATH": "",
        "SALES_SPARK_REMOTE": "",
    }


@pytest.mark.system
def test_two_processes_started_together_both_succeed_one_after_the_other_without_mixing():
    """Two `python -m sales_assets run` at once on the same embedded PostgreSQL and the same
    embedded ClickHouse path (chdb: one process at a time): the run lock serializes them."""
    data_dir = Path(tempfile.mkdtemp(prefix="sales_concurrency_test_"))
    data_dir.chmod(0o755)
    EmbeddedPostgres(data_dir / "postgres").url()  # one server for both, already up (Spark's is not)
    run = [sys.executable, "-m", "sales_assets", "run"]
    try:
        procs = {
            rows: subprocess.Popen(
                run, env=_env(data_dir, rows, seed), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for rows, seed in ((1700, 11), (2300, 12))
        }
        outputs = {rows: proc.communicate(timeout=900)[0] for rows, proc in procs.items()}
        for rows, proc in procs.items():
            assert proc.returncode == 0, outputs[rows][-3000:]
        assert any("waiting for another materialization to finish" in out for out in outputs.values())
        # both started the embedded Spark Connect server at the same moment, and got the same one
        spark_lines = {
            line.split("(")[0].strip()
            for out in outputs.values()
            for line in out.splitlines()
            if line.strip().startswith("Spark Connect ")
        }
        assert len(spark_lines) == 1, spark_lines
        servers = subprocess.run(["pgrep", "-f", str(data_dir / "spark-connect")], capture_output=True, text=True)
        assert len(servers.stdout.split()) == 1
        with psycopg.connect(EmbeddedPostgres(data_dir / "postgres").url()) as conn:
            cleaned, rejected = (
                conn.execute(f"select count(*) from sales.{t}").fetchone()[0]
                for t in ("cleaned_sales", "rejected_sales")
            )
            agg_lines, agg_revenue = conn.execute(
                "select sum(sales), sum(revenue) from sales.sales_aggregates where grain = 'region'"
            ).fetchone()
            revenue = conn.execute("select sum(amount) from sales.cleaned_sales").fetchone()[0]
        assert cleaned + rejected in (1700, 2300)  # the whole of one run, not a mix
        assert (agg_lines, agg_revenue) == (cleaned, revenue)  # aggregates of those very lines
        import clickhouse_connect

        client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir / 'clickhouse'}")
        try:
            ch_lines, ch_revenue = client.query(
                "select sum(sales), sum(revenue) from sales.sales_aggregates where grain = 'region'"
            ).result_rows[0]
        finally:
            client.close()
        assert (ch_lines, ch_revenue) == (cleaned, revenue)
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        EmbeddedSparkConnect(data_dir / "spark-connect", {}).stop()
