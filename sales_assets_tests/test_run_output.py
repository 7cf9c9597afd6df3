"""What `make run` prints, read from real runs: a line per step with its seconds and rows, a live
line on a terminal, the summary; Dagster's event stream only with V=1; on failure, the error in
full and where the log is."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sales_assets.checks import CHECK_NAMES
from sales_assets_tests.helpers import TEST_ENV, query

pytestmark = pytest.mark.system
PROJECT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"^  ([✓✗↻]) (\S+(?: \S+)?) +(\d+\.\d) s   (.*)$")
EVENT_STREAM = re.compile(r"- dagster - (DEBUG|INFO) - |STEP_START|RESOURCE_INIT_STARTED")


@pytest.fixture
def run_env(data_dir, pg, spark_resource, tmp_path):
    """The suite's servers (its data dir and Spark settings), a Dagster home of the test's own."""
    return {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(data_dir), "DAGSTER_HOME": str(tmp_path / "home")}


def make_run(env: dict, *make_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "run", *make_args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_make_run_prints_a_line_per_step_and_the_summary_not_the_event_stream(run_env, pg):
    done = make_run({**run_env, "SALES_ROWS": "2500", "SALES_SEED": "17"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = done.stdout + done.stderr
    assert not EVENT_STREAM.search(output), output
    lines = done.stdout.splitlines()
    assert lines[0] == "sales_job: 2,500 generated lines (seed 17)   (make run V=1: Dagster's event stream too)"
    steps = {m.group(2): m for m in map(STEP.match, lines) if m}
    assert set(steps) == {"raw_sales", "clean_sales", "sales_aggregates", "clickhouse_sales_aggregates"} | {
        f"check {name}" for name in CHECK_NAMES
    }
    assert all(m.group(1) == "✓" for m in steps.values())
    ((cleaned, rejected, aggregates),) = query(
        pg,
        "select (select count(*) from sales.cleaned_sales), (select count(*) from sales.rejected_sales), "
        "(select count(*) from sales.sales_aggregates)",
    )
    assert steps["raw_sales"].group(4) == "2,500 rows"
    assert steps["clean_sales"].group(4) == f"{cleaned:,} cleaned_sales · {rejected:,} rejected_sales"
    assert steps["sales_aggregates"].group(4) == steps["clickhouse_sales_aggregates"].group(4) == f"{aggregates:,} rows"
    assert steps[f"check {CHECK_NAMES[0]}"].group(4) == "passed"
    summary = done.stdout.split("\n\n", 1)[1]
    assert re.match(r"run [0-9a-f-]{36}: SUCCESS in \d+\.\d s\n", summary)
    assert len(lines) < 35, f"{len(lines)} lines"
    log = Path(re.search(r"full log +(\S+)", done.stdout).group(1))
    assert "STEP_START" in log.read_text() and "RUN_SUCCESS" in log.read_text()  # the stream went here


def test_v1_adds_dagsters_event_stream(run_env):
    done = make_run({**run_env, "SALES_ROWS": "1200"}, "V=1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert EVENT_STREAM.search(done.stdout + done.stderr)
    assert any(STEP.match(line) for line in done.stdout.splitlines())


def test_a_failed_run_shows_the_error_in_full_and_where_the_log_is(run_env, tmp_path):
    source = tmp_path / "sales.csv"
    source.write_bytes(b"sale_id,order_id\n1,\xff\xfe\n")  # not UTF-8: fails at once, never retried
    done = make_run({**run_env, "SALES_SOURCE_PATH": str(source)})
    assert done.returncode == 2  # make's code for a failed command (the run exits 1)
    output = done.stdout + done.stderr
    assert not EVENT_STREAM.search(output) and "Traceback" not in output
    (failed,) = [m for m in map(STEP.match, done.stdout.splitlines()) if m]
    assert failed.group(1) == "✗" and failed.group(2) == "raw_sales"
    assert "not run, as a step they depend on failed: clean_sales, sales_aggregates," in done.stdout
    error = re.search(r"^  failed step raw_sales: (.+)$", done.stdout, re.MULTILINE).group(1)
    assert "sales.csv" in error and "UTF-8" in error
    log = Path(re.search(r"full log +(\S+)", done.stdout).group(1))
    assert log.is_file() and "STEP_FAILURE" in log.read_text() and error in log.read_text()
    assert re.search(r"in the UI +make dev, then http://localhost:3000/runs/[0-9a-f-]{36}", done.stdout)


def test_on_a_terminal_a_live_line_shows_the_running_step(run_env):
    """On a real pseudo-terminal: the running step and its seconds redrawn in place."""
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sales_assets", "run"],
        cwd=PROJECT,
        env={**run_env, "SALES_ROWS": "1500"},
        stdin=child,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    chunks = []
    while True:
        try:
            chunk = os.read(parent, 65536)
        except OSError:  # the run ended and closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=600) == 0
    os.close(parent)
    screen = b"".join(chunks).decode()
    assert re.search(r"\r  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] clean_sales  \d+ s", screen), screen[-2000:]
    assert re.search(r"\r +\r  ✓ clean_sales ", screen)  # the live line is cleared for the step's own line
