"""SIGKILL of a run in the middle of its loads: afterwards every table is the old one or the new
one, never a mix, and the next run recovers on its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect

pytestmark = pytest.mark.system


def _env(data_dir: Path, rows: int) -> dict:
    return {
        **os.environ,
        "SALES_DATA_DIR": str(data_dir),
        "SALES_SPARK_MASTER": "local[2]",
        "SALES_ROWS": str(rows),
        "SALES_SEED": "5",
        "SALES_PG_URL": "",
        "SALES_CH_URL": "",
        "SALES_SOURCE_PATH": "",
        "SALES_SPARK_REMOTE": "",  # the data directory's own embedded Spark Connect server
    }


def _counts(data_dir: Path) -> tuple:
    with psycopg.connect(EmbeddedPostgres(data_dir / "postgres").url()) as conn:
        cleaned = conn.execute("select count(*) from sales.cleaned_sales").fetchone()[0]
        rejected = conn.execute("select count(*) from sales.rejected_sales").fetchone()[0]
        stages = conn.execute("select count(*) from pg_tables where tablename like '\\_stage%%'").fetchone()[0]
    return cleaned, rejected, stages


def _a_big_run_in_its_load(data_dir: Path, out) -> subprocess.Popen:
    """`make run` of 400,000 lines, returned once its COPYs into both staging tables stream."""
    run = [sys.executable, "-m", "sales_assets", "run"]
    proc = subprocess.Popen(run, env=_env(data_dir, 400_000), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while _counts(data_dir)[2] < 2 and time.monotonic() < deadline:  # both staging tables exist
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before its load began"
    time.sleep(1)  # the tasks' COPYs are streaming: 400,000 lines take several seconds
    return proc


def test_sigkill_during_the_load_leaves_old_or_new_tables_and_the_next_run_recovers():
    data_dir = Path(tempfile.mkdtemp(prefix="sales_kill_test_"))
    data_dir.chmod(0o755)
    run = [sys.executable, "-m", "sales_assets", "run"]
    try:
        subprocess.run(run, env=_env(data_dir, 2000), capture_output=True, timeout=600, check=True)
        old = _counts(data_dir)
        assert old[0] + old[1] == 2000
        log = data_dir / "killed.log"
        with open(log, "w") as out:
            proc = _a_big_run_in_its_load(data_dir, out)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        assert "✓ clean_sales" not in log.read_text(), "the kill came too late to test anything"
        cleaned, rejected, leftovers = _counts(data_dir)
        assert leftovers >= 1, "no staging table was left: the kill did not land in the load"
        assert (cleaned, rejected) == old[:2], "the old tables are not what remains"
        subprocess.run(run, env=_env(data_dir, 2000), capture_output=True, timeout=600, check=True)
        assert _counts(data_dir) == (old[0], old[1], 0)  # recovered, staging leftovers dropped
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        EmbeddedSparkConnect(data_dir / "spark-connect", {}).stop()


def test_sigkill_of_the_spark_server_mid_load_fails_the_run_clearly_and_the_next_run_starts_a_new_one():
    data_dir = Path(tempfile.mkdtemp(prefix="sales_server_kill_test_"))
    data_dir.chmod(0o755)
    run = [sys.executable, "-m", "sales_assets", "run"]
    server = EmbeddedSparkConnect(data_dir / "spark-connect", {})
    try:
        subprocess.run(run, env=_env(data_dir, 2000), capture_output=True, timeout=600, check=True)
        old = _counts(data_dir)
        killed = server.running()
        log = data_dir / "killed.log"
        with open(log, "w") as out:
            proc = _a_big_run_in_its_load(data_dir, out)
            os.kill(killed.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            assert proc.wait(timeout=120) == 1
            seconds_to_fail = time.monotonic() - killed_at
        text = log.read_text()
        assert "✓ clean_sales" not in text, "the kill came too late to test anything"
        assert "FAILURE" in text and "failed step clean_sales: " in text
        assert f"the Spark Connect server at {killed.location} stopped answering" in text
        assert seconds_to_fail < 60, seconds_to_fail  # fails at once: no retries against a dead server
        assert _counts(data_dir)[:2] == old[:2]  # the old tables, whole
        again = subprocess.run(run, env=_env(data_dir, 2000), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stdout[-3000:]
        assert server.running().pid != killed.pid  # a fresh server
        assert _counts(data_dir) == (old[0], old[1], 0)
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        server.stop()


# `python -m sales_assets run`, paused (until killed) at a point inside one load: after the staged
# aggregates are counted and before their swap, or before ClickHouse's partition swap. The pause
# is the only thing added; the kill and the recovery are real.
_PAUSED_RUN = """
import os, time
from pathlib import Path

def pause():
    Path(os.environ["SALES_TEST_PAUSED"]).write_text(str(os.getpid()))
    time.sleep(600)

if os.environ["SALES_TEST_PAUSE_IN"] == "sales_aggregates":
    from sales_assets.pg_transfer import write
    check = write._check_staged_rows

    def checked_then_paused(conn, table, stage, reported):
        check(conn, table, stage, reported)
        if table.name == "sales_aggregates":
            pause()

    write._check_staged_rows = checked_then_paused
else:
    from sales_assets.io_managers.clickhouse import ClickHouseIOManager
    replace = ClickHouseIOManager.replace_snapshot

    def staged_then_paused(self, snapshot, token):
        client = self.clickhouse.get_client()
        command = client.command

        def paused_before_the_swap(sql, *args, **kwargs):
            if "replace partition" in sql:
                pause()
            return command(sql, *args, **kwargs)

        client.command = paused_before_the_swap
        return replace(self, snapshot, token)

    ClickHouseIOManager.replace_snapshot = staged_then_paused

from sales_assets.cli import main
main(["run"])
"""
AGGREGATE_COLUMNS = "grain, region, product, orders, sales, units, revenue, avg_check, first_sale, last_sale"


def _pg_aggregates(data_dir: Path) -> tuple[set, int]:
    with psycopg.connect(EmbeddedPostgres(data_dir / "postgres").url()) as conn:
        rows = set(conn.execute(f"select {AGGREGATE_COLUMNS} from sales.sales_aggregates").fetchall())
        stages = conn.execute(
            "select count(*) from pg_tables where tablename like '\\_stage\\_sales\\_aggregates%%'"
        ).fetchone()[0]
    return rows, stages


def _ch_aggregates(data_dir: Path) -> tuple[list, int]:
    import clickhouse_connect

    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir / 'clickhouse'}")
    try:
        rows = client.query(f"select {AGGREGATE_COLUMNS} from sales.sales_aggregates").result_rows
        stages = client.command("select count() from system.tables where database = 'sales' and name like '\\_stage%'")
    finally:
        client.close()  # chdb: one process per data path; the next run needs it
    return rows, int(stages)


@pytest.mark.parametrize("paused_in", ["sales_aggregates", "clickhouse"])
def test_sigkill_in_the_aggregates_or_clickhouse_load_keeps_the_old_table_and_the_next_run_recovers(paused_in):
    data_dir = Path(tempfile.mkdtemp(prefix=f"sales_kill_{paused_in}_"))
    data_dir.chmod(0o755)
    run = [sys.executable, "-m", "sales_assets", "run"]
    other_lines = {"SALES_SEED": "6"}  # the killed run and the recovery: other data than the first run
    try:
        subprocess.run(run, env=_env(data_dir, 2000), capture_output=True, timeout=600, check=True)
        old_pg, _ = _pg_aggregates(data_dir)
        old_ch, _ = _ch_aggregates(data_dir)
        assert old_pg and set(old_ch) == old_pg
        paused = data_dir / "paused"
        env = {
            **_env(data_dir, 2000),
            **other_lines,
            "SALES_TEST_PAUSED": str(paused),
            "SALES_TEST_PAUSE_IN": paused_in,
        }
        with open(data_dir / "killed.log", "w") as out:
            proc = subprocess.Popen([sys.executable, "-c", _PAUSED_RUN], env=env, stdout=out, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 300
            while not paused.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert paused.exists(), (data_dir / "killed.log").read_text()[-3000:]
            if paused_in == "sales_aggregates":
                assert _pg_aggregates(data_dir)[1] == 1  # mid-load: the new aggregates are staged
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        pg_rows, pg_stages = _pg_aggregates(data_dir)
        ch_rows, ch_stages = _ch_aggregates(data_dir)
        assert set(ch_rows) == old_pg and len(ch_rows) == len(old_ch)  # ClickHouse: the old snapshot, whole
        if paused_in == "sales_aggregates":
            assert (pg_rows, pg_stages) == (old_pg, 1)  # the old table, and the killed load's leftover
        else:
            assert pg_rows != old_pg and ch_stages == 1  # PostgreSQL has the new aggregates; the stage is left
        again = subprocess.run(
            run, env={**_env(data_dir, 2000), **other_lines}, capture_output=True, text=True, timeout=600
        )
        assert again.returncode == 0, again.stdout[-3000:]
        new_pg, pg_stages = _pg_aggregates(data_dir)
        new_ch, ch_stages = _ch_aggregates(data_dir)
        assert new_pg != old_pg and set(new_ch) == new_pg and len(new_ch) == len(new_pg)  # loaded once
        assert (pg_stages, ch_stages) == (0, 0)  # leftovers dropped
    finally:
        EmbeddedPostgres(data_dir / "postgres").stop()
        EmbeddedSparkConnect(data_dir / "spark-connect", {}).stop()
