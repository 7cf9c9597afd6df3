"""URL handling, the embedded server, and secrets kept out of what users see."""

import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from sales_assets.definitions import build_definitions
from sales_assets.embedded import jvm_archive
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.postgres import PostgresConnectionError, PostgresResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import DRIVER_JAVA_OPTIONS, server_settings, spark_config
from sales_assets.settings import Settings
from sales_assets.urls import BadUrlError, check_url, location, redact
from sales_assets_tests.helpers import TEST_ENV

NO_LOCK = RunLockResource(postgres=PostgresResource())  # taken only when a run sets it up


def test_redact_hides_only_the_password():
    assert redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("http://h:8123/db") == "http://h:8123/db"
    assert location("https://u:p@ch.example:8443/sales") == "ch.example:8443/sales"


@pytest.mark.parametrize(
    "url, problem",
    [
        ("mysql://u:p@h/db", "must start with"),
        ("postgresql://u:secretpw@h:notaport/db", "malformed"),
        ("postgresql:///db", "names no host"),
    ],
)
def test_bad_urls_are_named_without_password(url, problem):
    with pytest.raises(BadUrlError, match=problem) as err:
        check_url(url, ("postgresql",), "SALES_PG_URL")
    assert "secretpw" not in str(err.value)


def test_unreachable_postgres_is_one_clear_error(pg):
    resource = PostgresResource(url="postgresql://sales:topsecret@127.0.0.1:1/sales", connect_timeout_s=2)
    with pytest.raises(PostgresConnectionError) as err:
        resource.connect()
    assert "127.0.0.1:1/sales" in str(err.value) and "topsecret" not in str(err.value)


def test_reading_the_url_never_starts_a_server(tmp_path):
    resource = PostgresResource(embedded_dir=str(tmp_path / "pg"))
    with pytest.raises(RuntimeError, match="not started"):
        _ = resource.dsn
    assert not (tmp_path / "pg").exists()  # nothing initialized, nothing started


def test_embedded_server_is_real_postgres_on_loopback_tcp(pg):
    url = pg.dsn
    assert url.startswith("postgresql://sales:") and "@127.0.0.1:" in url
    with psycopg.connect(url) as conn:
        version = conn.execute("show server_version").fetchone()[0]
        address = conn.execute("select inet_server_addr()::text").fetchone()[0]
    assert int(version.split(".")[0]) >= 15
    assert address.startswith("127.0.0.1")


def test_definitions_show_env_var_names_not_urls(settings):
    secret = "postgresql://u:leakme@db.example:5432/sales"
    defs = build_definitions(Settings.from_env({"SALES_PG_URL": secret, "SALES_DATA_DIR": str(settings.data_dir)}))
    resource = defs.resources["postgres"]
    assert "leakme" not in repr(resource)


def test_clickhouse_dsn_defaults_to_the_in_process_engine(tmp_path):
    assert ClickHouseResource(embedded_path=str(tmp_path / "ch"), run_lock=NO_LOCK).dsn == f"chdb://{tmp_path / 'ch'}"
    assert ClickHouseResource(url="https://u:p@h:8443/db", run_lock=NO_LOCK).dsn == "https://u:p@h:8443/db"
    with pytest.raises(BadUrlError):
        _ = ClickHouseResource(url="ftp://h/db", run_lock=NO_LOCK).dsn


@pytest.mark.system
def test_make_env_prints_effective_urls(settings, pg, spark_resource):
    env = {**TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-m", "sales_assets", "env"], env=env, capture_output=True, text=True, timeout=120, check=True
    ).stdout.splitlines()
    spark_url = spark_resource.embedded.url()  # the suite's running server: same settings, same URL
    assert spark_url.startswith("sc://localhost:") and ";token=" in spark_url
    assert out == [
        f"SALES_PG_URL={pg.dsn}",
        f"SALES_CH_URL=chdb://{settings.embedded_ch_path}",
        f"SALES_SPARK_REMOTE={shlex.quote(spark_url)}",
    ]


@pytest.mark.system
def test_make_env_output_survives_eval_with_query_strings(settings):
    pg_url = "postgresql://u:p@db.example:5432/sales?sslmode=require&application_name=sales assets"
    ch_url = "https://u:p@ch.example:8443/sales?verify=false&compress=true"
    spark_url = "sc://spark.example:15002/;token=s3cret;user_id=etl"
    env = {
        "SALES_DATA_DIR": str(settings.data_dir),
        "SALES_PG_URL": pg_url,
        "SALES_CH_URL": ch_url,
        "SALES_SPARK_REMOTE": spark_url,
        "PATH": "/usr/bin:/bin",
    }
    script = (
        f'out="$({sys.executable} -m sales_assets env)"; unset SALES_PG_URL SALES_CH_URL SALES_SPARK_REMOTE; '
        'eval "$out"; printf "%s\\n%s\\n%s" "$SALES_PG_URL" "$SALES_CH_URL" "$SALES_SPARK_REMOTE"'
    )
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.splitlines() == [pg_url, ch_url, spark_url], out.stderr


def test_wrong_password_is_one_clear_error_without_the_password(pg):
    from urllib.parse import urlsplit

    url = urlsplit(pg.dsn)
    wrong = f"postgresql://{url.username}:not-the-password@{url.hostname}:{url.port}/sales"
    with pytest.raises(PostgresConnectionError) as err:
        PostgresResource(url=wrong).connect()
    message = str(err.value)
    assert f"{url.hostname}:{url.port}/sales" in message and "password authentication failed" in message
    assert "not-the-password" not in message


def test_spark_config_uses_the_class_archive_only_when_it_exists(tmp_path):
    assert jvm_archive.java_options(tmp_path / "missing.jsa") == ""
    archive = tmp_path / "spark.jsa"
    archive.write_bytes(b"x")
    assert f"-XX:SharedArchiveFile={archive}" in jvm_archive.java_options(archive)


def test_the_spark_server_jvm_runs_with_the_projects_gc_and_jit_settings(spark_resource):
    """The embedded Spark Connect server (the tests' is configured like a run's) runs with the
    parallel collector and the smaller inlining limits, not the JVM's defaults: together ~15% of a
    whole run on 2 cores (see DRIVER_JAVA_OPTIONS)."""
    server = spark_resource.embedded.running()
    java_args = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode().split("\0")
    assert Path(java_args[0]).name == "java"
    assert set(DRIVER_JAVA_OPTIONS.split()) <= set(java_args)


def test_arrow_batches_to_python_are_not_sized_row_by_row(spark):
    """At Int.MaxValue Spark skips its per-row size check of every batch sent to a Python task (a
    walk over every child vector of our struct columns, 20-25% of the JVM's CPU in a load);
    batches stay bounded by the record count."""
    assert spark.conf.get("spark.sql.execution.arrow.maxBytesPerBatch") == str(2**31 - 1)
    assert int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")) == 10_000


@pytest.mark.system
def test_a_spark_server_maps_the_class_archive(tmp_path):
    """The archive `make` builds on install (built here when missing) really serves the Spark
    Connect server: with -Xshare:on a JVM refuses to start, rather than fall back, if it cannot
    map it; and the running JVM has it mapped."""
    config = spark_config("local[1]", **{"spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS})
    archive = (
        jvm_archive.ARCHIVE if jvm_archive.ARCHIVE.is_file() else jvm_archive.build(config, tmp_path / "spark.jsa")
    )
    config["spark.driver.extraJavaOptions"] = f"{DRIVER_JAVA_OPTIONS} -XX:SharedArchiveFile={archive} -Xshare:on"
    server = EmbeddedSparkConnect(tmp_path / "server", server_settings(config))
    try:
        server.url()
        state = server.running()
        assert str(archive) in Path(f"/proc/{state.pid}/maps").read_text()
    finally:
        server.stop()
