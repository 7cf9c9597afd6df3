"""The deployment as it runs unattended: `dagster dev` (webserver, daemon, code server) on a real
instance. A run stuck behind the run lock past its `dagster/max_runtime` is ended by run
monitoring, its process exits, and the daemon's alert sensor posts it to a loopback webhook."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from sales_assets.jobs import MAX_RUNTIME_TAG, SALES_JOB
from sales_assets.resources.run_lock import APPLICATION_NAME, LOCK_NAME
from sales_assets_tests.helpers import TEST_ENV, Webhook, free_port, run_config

pytestmark = pytest.mark.system
PROJECT = Path(__file__).resolve().parent.parent


def _wait(what: str, ready, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := ready():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


@pytest.fixture
def deployment(data_dir, settings, pg, spark_resource, tmp_path):
    """`dagster dev` with run monitoring checking every second, and a webhook on loopback."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((PROJECT / "dagster.yaml").read_text())  # the project's instance, but
    config["run_monitoring"]["poll_interval_seconds"] = 1  # checking every second, not every 30 s
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    hook, port = Webhook(), free_port()
    env = {
        **os.environ,
        **TEST_ENV,
        "SALES_DATA_DIR": str(data_dir),
        "DAGSTER_HOME": str(home),
        "SALES_ALERT_WEBHOOK": hook.url,
    }
    dagster = str(Path(sys.executable).with_name("dagster"))
    log = (tmp_path / "dagster-dev.log").open("w")
    proc = subprocess.Popen(
        [dagster, "dev", "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
        env=env,
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)

        def up():
            try:
                return client._execute("{ version }")  # the plainest liveness probe
            except Exception:  # noqa: BLE001 - not up yet
                return None

        _wait("dagster dev to answer", up, 120)
        yield client, hook, home, tmp_path / "dagster-dev.log"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # dagster dev stops its webserver, daemon and code server
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        hook.close()
        shutil.rmtree(home, ignore_errors=True)


def test_a_run_stuck_behind_the_lock_is_ended_at_its_max_runtime_and_alerted(deployment, pg):
    client, hook, home, log = deployment
    holder = psycopg.connect(pg.start(), autocommit=True)  # another materialization, as the lock sees it
    try:
        holder.execute("select pg_advisory_lock(hashtext(%s), 0)", (LOCK_NAME,))
        started = time.monotonic()
        run_id = client.submit_job_execution(
            SALES_JOB, run_config=run_config(rows=500, seed=2), tags={MAX_RUNTIME_TAG: "3"}
        )
        with DagsterInstance.from_config(str(home)) as instance:

            def ended():
                run = instance.get_run_by_id(run_id)
                return run if run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED) else None

            _wait("run monitoring to end the run", ended, 120)
            ended_after = time.monotonic() - started
            messages = [e.message for e in instance.all_logs(run_id)]
        assert any("maximum runtime of 3 seconds" in m for m in messages), messages
        # the waiting run's process is gone: its PostgreSQL session (the lock wait) ended with it
        waiting = f"{APPLICATION_NAME} {run_id}"
        _wait(
            "the run's session to end",
            lambda: (
                not holder.execute("select 1 from pg_stat_activity where application_name = %s", (waiting,)).fetchall()
            ),
            60,
        )
    finally:
        holder.close()
    # the daemon's sensor ticks every 30 s: the alert arrives within two ticks
    post = _wait("the alert on the webhook", lambda: next((p for p in hook.posts if p["run_id"] == run_id), None), 90)
    assert post["status"] in ("failed", "canceled") and post["job"] == SALES_JOB, post
    assert post["error"] == "Canceling due to exceeding maximum runtime of 3 seconds.", (post, log.read_text()[-3000:])
    assert ended_after < 60, ended_after
    print(f"run ended by monitoring after {ended_after:.1f} s; alert: {post['text']}")
