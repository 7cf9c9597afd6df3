"""`make bench` end to end at a tiny size, in its own process and data directory: it runs, the
baseline produces the very tables ours did, and the JSON carries every figure the README quotes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets_tests.helpers import TEST_ENV

pytestmark = pytest.mark.system
PROJECT = Path(__file__).resolve().parent.parent


def test_bench_runs_and_the_baseline_builds_the_same_tables():
    data_dir = Path(tempfile.mkdtemp(prefix="sales_bench_test_"))
    data_dir.chmod(0o755)  # the embedded server may run as an unprivileged user
    out = data_dir / "results.json"
    env = {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(data_dir), "SALES_SPARK_MASTER": "local[2]"}
    try:
        done = subprocess.run(
            [sys.executable, str(PROJECT / "bench" / "bench.py"), "--rows", "3000", "--out", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        results = json.loads(out.read_text())
        assert "speedup of ours vs baseline" in done.stdout
        # quiet, like `make run`: each run's steps as lines, no Dagster event stream
        assert "- dagster - DEBUG -" not in done.stdout + done.stderr and "STEP_START" not in done.stdout
        # (a cold start may print a heartbeat line before the first step's)
        assert re.search(r"cold run \(no Spark server up\):\n(  … .*\n)*  ✓ raw_sales ", done.stdout), done.stdout
        assert re.search(r"warm run 1:\n(  … .*\n)*  ✓ raw_sales ", done.stdout), done.stdout
    finally:
        EmbeddedPostgres(data_dir / "bench" / "postgres").stop()
        assert EmbeddedSparkConnect(data_dir / "bench" / "spark-connect", {}).running() is None  # bench stops it
        shutil.rmtree(data_dir, ignore_errors=True)
    assert results["rows"] == 3000
    assert set(results["stages"]) == {"raw_sales", "clean_sales", "sales_aggregates", "clickhouse_sales_aggregates"}
    for key in (
        "e2e_s",
        "cold_e2e_s",
        "warm_e2e_s",
        "warm_vs_cold",
        "baseline_e2e_s",
        "speedup_vs_baseline",
        "pg_load_rows_per_s",
        "copy_floor_rows_per_s",
        "peak_rss_mb",
    ):
        assert results[key] > 0, key
    assert results["e2e_s"] == results["warm_e2e_s"] == results["warm_runs"][0]["e2e_s"]
    assert results["warm_runs"][0]["cached"] == 0  # a run leaves nothing cached on the long-lived server
    assert results["warm_runs"][0]["server_rss_mb"] > 100
    # our load and the floor are timed in turns, three runs each
    assert len(results["pg_load_runs_s"]) == len(results["copy_floor_runs_s"]) == 3
    # and where our load's time goes, which the bare COPY of the floor does not spend
    phases = results["pg_load_phases_s"]
    assert list(phases) == ["lock", "prepare", "copy", "count", "keys", "analyze", "swap"]
    assert 0 < sum(phases.values()) <= results["pg_load_s"] + 0.005  # each rounded to the ms
    assert "our load's phases: lock" in done.stdout
    # a fair comparison: the per-row baseline wrote exactly our tables
    assert results["baseline_stages"]["cleaned_sales_rows_differing_from_ours"] == 0
    assert results["baseline_stages"]["sales_aggregates_rows_differing_from_ours"] == 0


def test_a_failed_bench_run_names_the_step_and_its_error_without_a_traceback():
    tmp_path = Path(tempfile.mkdtemp(prefix="sales_bench_fail_"))  # not pytest's: private to root
    tmp_path.chmod(0o755)
    env = {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(tmp_path), "SALES_SPARK_MASTER": "local[2]"}
    try:
        done = subprocess.run(
            [sys.executable, str(PROJECT / "bench" / "bench.py"), "--rows", "0", "--out", str(tmp_path / "r.json")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        assert EmbeddedSparkConnect(tmp_path / "bench" / "spark-connect", {}).running() is None  # stopped
        EmbeddedPostgres(tmp_path / "bench" / "postgres").stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "- dagster - DEBUG -" not in done.stdout + done.stderr
    assert "bench stopped: cold run (no Spark server up) failed at step raw_sales: " in done.stderr
    assert "ValidationError: 1 validation error for RawSalesConfig\nrows" in done.stderr  # the cause, in full
    assert "full log: " in done.stderr and "results.json" not in done.stdout
