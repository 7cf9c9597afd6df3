"""The embedded Spark Connect server: one per data directory, ours alone, current, and a run that
cannot reach Spark fails at once with a sentence that names where it looked."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from dagster import asset, materialize

from sales_assets import connections
from sales_assets.definitions import build_definitions
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets.resources.spark import SparkConnectUnavailable, SparkResource, server_settings
from sales_assets.settings import Settings
from sales_assets_tests.helpers import TEST_ENV, cached_rdds, free_port

pytestmark = pytest.mark.integration

SMALL_SERVER = {"spark.master": "local[1]", "spark.driver.memory": "512m", "spark.ui.enabled": "false"}


def _settings(data_dir: Path, **env) -> Settings:
    return Settings.from_env({**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(data_dir), **env})


def _remote_session(url: str):
    from pyspark.sql import SparkSession
    from pyspark.sql.connect.client.retries import DefaultPolicy

    session = SparkSession.builder.remote(url).create()
    session.client.set_retry_policies([DefaultPolicy(max_retries=1, max_backoff=200)])
    return session


def test_a_client_without_the_token_or_with_a_wrong_one_is_refused(spark_resource):
    server = spark_resource.embedded.running()
    for url in (f"sc://localhost:{server.port}", f"sc://localhost:{server.port}/;token=not-the-token"):
        session = _remote_session(url)
        with pytest.raises(Exception, match="(?i)unauthenticated|token|auth"):
            session.range(3).count()
        session.client.close()


def test_the_token_is_owner_only_and_never_in_logs_metadata_or_the_command_line(spark_resource, golden, instance):
    server = spark_resource.embedded.running()
    token = spark_resource.embedded.token_file.read_text().strip()
    assert len(token) >= 24
    assert spark_resource.embedded.token_file.stat().st_mode & 0o777 == 0o600
    result = golden.result  # a whole run through the server
    records = instance.all_logs(result.run_id)
    assert records and not [r for r in records if token in str(r)]
    assert token not in str(instance.get_run_by_id(result.run_id).run_config)
    assert token not in Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
    for path in spark_resource.embedded.root.iterdir():
        if path != spark_resource.embedded.token_file and path.is_file():
            assert token not in path.read_text(errors="replace"), path


@pytest.mark.system
def test_two_processes_starting_the_server_at_once_get_one_server(tmp_path):
    script = textwrap.dedent(
        f"""
        from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
        server = EmbeddedSparkConnect({str(tmp_path)!r}, {SMALL_SERVER!r})
        server.url()
        state = server.running()
        print(state.pid, state.port)
        """
    )
    try:
        procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = {p.communicate(timeout=300)[0].strip() for p in procs}
        assert all(p.returncode == 0 for p in procs)
        assert len(outputs) == 1, outputs  # the same pid and port for both
        pid = int(outputs.pop().split()[0])
        java = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout.split()
        assert [int(p) for p in java] == [pid]
    finally:
        EmbeddedSparkConnect(tmp_path, SMALL_SERVER).stop()


@pytest.mark.system
def test_a_server_of_another_data_directory_on_the_recorded_port_is_not_used(spark_resource, tmp_path):
    theirs = spark_resource.embedded.running()
    mine = EmbeddedSparkConnect(tmp_path, SMALL_SERVER)
    tmp_path.mkdir(exist_ok=True)
    # as if our last server had had that port and pid: they are alive and listening, but not ours
    mine.state_file.write_text(json.dumps({**theirs.__dict__, "started_with": mine.described()}))
    assert mine.running() is None
    try:
        url = mine.url()
        assert f":{theirs.port}/" not in url and mine.running().pid != theirs.pid
    finally:
        mine.stop()
    assert spark_resource.embedded.running() == theirs  # theirs untouched


@pytest.mark.system
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a listener as another user")
def test_a_server_of_another_user_on_the_recorded_port_is_not_used(tmp_path):
    import pwd

    from sales_assets.embedded.postgres import SYSTEM_USER

    pwd.getpwnam(SYSTEM_USER)  # created by the embedded PostgreSQL when the suite runs as root
    port = free_port()
    listener = subprocess.Popen(
        [
            "/usr/bin/python3",  # the other user may not enter this venv
            "-c",
            f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); time.sleep(120)",
        ],
        user=SYSTEM_USER,
    )
    try:
        mine = EmbeddedSparkConnect(tmp_path, SMALL_SERVER)
        tmp_path.mkdir(exist_ok=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        mine.state_file.write_text(
            json.dumps({"pid": listener.pid, "port": port, "ui_port": 0, "started_with": mine.described()})
        )
        assert mine.running() is None
    finally:
        listener.kill()


@pytest.mark.system
def test_a_code_change_reaches_the_next_run(tmp_path):
    """Python workers outlive a run and keep what they imported: a changed package restarts the
    server, so the next session runs the new code. Shown with a package of the test's own (the
    project's source is watched the same way: `PACKAGE_DIR`)."""
    package = tmp_path / "pkg"
    (package / "probe_mod").mkdir(parents=True)
    module = package / "probe_mod" / "__init__.py"

    def answer(server: EmbeddedSparkConnect) -> int:
        import pyarrow as pa

        def ask(batches):
            import probe_mod

            for _ in batches:
                pass
            yield pa.RecordBatch.from_pydict({"v": [probe_mod.VALUE]})

        session = _remote_session(server.url())
        try:
            return session.range(0, 1, numPartitions=1).mapInArrow(ask, "v long").first()[0]
        finally:
            session.stop()

    server = EmbeddedSparkConnect(tmp_path / "server", SMALL_SERVER, python_path=(str(package),))
    try:
        module.write_text("VALUE = 1\n")
        assert answer(server) == 1
        first = server.running().pid
        module.write_text("VALUE = 2\n")
        assert answer(server) == 2
        assert server.running().pid != first
        assert "changed since its start: python_path_source" in (server.root / "events.log").read_text()
    finally:
        server.stop()


@pytest.fixture
def silent_endpoint():
    """A TCP port that accepts connections and never says a word."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


@pytest.mark.parametrize("endpoint", ["closed", "silent"])
def test_an_endpoint_that_does_not_answer_fails_the_run_at_start(endpoint, silent_endpoint, data_dir, instance):
    port = silent_endpoint if endpoint == "silent" else free_port()
    remote = f"sc://localhost:{port}/;token=do-not-show-me"
    settings = _settings(data_dir, SALES_SPARK_REMOTE=remote)
    os.environ["SALES_SPARK_REMOTE"] = remote  # Definitions name it as an EnvVar
    try:
        started = time.monotonic()
        result = (
            build_definitions(settings)
            .resolve_job_def("sales_job")
            .execute_in_process(instance=instance, raise_on_error=False)
        )
        seconds = time.monotonic() - started
    finally:
        del os.environ["SALES_SPARK_REMOTE"]
    assert not result.success
    assert seconds <= 30, f"took {seconds:.1f} s"
    assert not [e for e in result.all_events if e.event_type_value == "STEP_START"]  # before any step
    failure = next(e for e in result.all_events if e.event_type_value in ("RUN_FAILURE", "ENGINE_EVENT") and e.message)
    text = "\n".join(str(e.event_specific_data) + (e.message or "") for e in result.all_events)
    assert f"localhost:{port}" in text, failure
    assert "do-not-show-me" not in text


def online_sessions(server) -> int:
    """Sessions the server holds open, from its web UI's Connect page (no REST API has them)."""
    import re
    import urllib.request

    with urllib.request.urlopen(f"{server.ui_url}/connect/", timeout=10) as page:
        return int(re.search(r"(\d+)\s+session\(s\) are online", page.read().decode()).group(1))


def test_a_failed_run_leaves_nothing_cached_and_releases_its_session(settings, spark_resource, instance):
    before = cached_rdds(spark_resource)
    sessions_before = online_sessions(spark_resource.embedded.running())
    run_resource = connections.spark(settings)  # a run's own: released at the end of the run
    sessions = []

    @asset
    def leaky(spark: SparkResource) -> None:
        session = spark.spark_session
        sessions.append(session)
        session.range(5000).cache().count()
        session.range(3).createOrReplaceTempView("left_behind")
        raise RuntimeError("this asset fails after caching a frame")

    result = materialize([leaky], resources={"spark": run_resource}, instance=instance, raise_on_error=False)
    assert not result.success
    assert cached_rdds(spark_resource) - before == set()
    assert sessions and sessions[0].is_stopped
    assert online_sessions(spark_resource.embedded.running()) == sessions_before
    # the temp view went with the released session: the suite's session never sees it
    assert not spark_resource.spark_session.catalog.tableExists("left_behind")


def test_endpoint_location_hides_the_token():
    remote = "sc://spark.example:15002/;token=s3cret;user_id=etl"
    assert SparkResource(spark_config={}, remote=remote).location == "spark.example:15002"
    port = free_port()
    with pytest.raises(SparkConnectUnavailable, match=f"localhost:{port}") as err:
        SparkResource(spark_config={}, remote=f"sc://localhost:{port}/;token=s3cret")._init_session()
    assert "s3cret" not in str(err.value)


def test_static_settings_go_to_the_server_and_sql_settings_to_the_session(settings):
    resource = connections.spark(settings)
    static = server_settings(resource.spark_config)
    assert static["spark.master"] == "local[2]" and "spark.driver.extraJavaOptions" in static
    assert not [k for k in static if k.startswith("spark.sql.")]
    session = resource.spark_config
    assert session["spark.sql.shuffle.partitions"] == "2"


@pytest.mark.system
def test_the_graph_runs_against_a_spark_connect_service_named_by_sales_spark_remote(data_dir, instance, pg):
    """The compose `spark` service's entry point (`python -m sales_assets spark-connect-server`),
    started here on a loopback port with a token, is an endpoint like any other: the graph runs
    against it through SALES_SPARK_REMOTE alone."""
    port, token = free_port(), "service-token-for-this-test"
    service_dir = data_dir / "service"
    env = {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(service_dir), "SPARK_CONNECT_AUTHENTICATE_TOKEN": token}
    log = data_dir / "spark-service.log"
    with open(log, "wb") as out:
        service = subprocess.Popen(
            [sys.executable, "-m", "sales_assets", "spark-connect-server", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    remote = f"sc://localhost:{port}/;token={token}"
    try:
        deadline = time.monotonic() + 180
        while b"Spark Connect server started" not in log.read_bytes():
            assert service.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        settings = _settings(data_dir, SALES_SPARK_REMOTE=remote)
        os.environ["SALES_SPARK_REMOTE"] = remote
        try:
            result = (
                build_definitions(settings)
                .resolve_job_def("sales_job")
                .execute_in_process(
                    instance=instance, run_config={"ops": {"raw_sales": {"config": {"rows": 800, "seed": 8}}}}
                )
            )
        finally:
            del os.environ["SALES_SPARK_REMOTE"]
        assert result.success
        with pg.connect() as conn:
            assert conn.execute("select count(*) from sales.cleaned_sales").fetchone()[0] > 700
        text = "\n".join(str(e) for e in instance.all_logs(result.run_id))
        assert f"at localhost:{port}" in text and token not in text
    finally:
        os.killpg(service.pid, signal.SIGTERM)
        try:
            service.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a loaded machine: the test is done, the service must go
            os.killpg(service.pid, signal.SIGKILL)
            service.wait(timeout=30)


def test_a_run_opens_one_spark_session_for_all_its_steps(settings, instance):
    """The assets, the checks and the I/O managers share the run's one Spark Connect session, and
    the run releases it: no session is left open on the long-lived server."""
    server = connections.spark(settings).embedded.running()
    before = online_sessions(server)
    defs = build_definitions(settings)  # the resources as `make run` gets them, not the suite's shared one
    result = defs.resolve_job_def("sales_job").execute_in_process(
        instance=instance, run_config={"ops": {"raw_sales": {"config": {"rows": 400, "seed": 4}}}}
    )
    assert result.success
    opened = [e for e in instance.all_logs(result.run_id) if "Spark Connect session" in (e.user_message or "")]
    assert len(opened) == 1
    assert online_sessions(server) == before
