"""The suite's shared state: one embedded Spark Connect server and one Spark session, one real
embedded PostgreSQL server, one ClickHouse engine (chdb) and one golden materialization of the real
graph per test session. A test that changes what is stored starts from a copy of the golden state
(`golden_state`), not from a run of its own. No database is mocked."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from dagster import AssetMaterialization, instance_for_test
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from pyspark.sql import SparkSession

from sales_assets import connections
from sales_assets.contract import PG_TABLES
from sales_assets.definitions import build_definitions
from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.resources.spark import SparkResource
from sales_assets.settings import Settings
from sales_assets_tests.helpers import (
    GOLDEN_CONFIG,
    GOLDEN_DATE,
    TEST_ENV,
    cached_rdds,
    ch_rows,
    run_config,
    stored_state,
    table_digest,
)

# A property test draws its examples as one batch of 30 and checks them in one Spark job. Two
# batches: Hypothesis's first is its simplest (every example minimal), the second is random.
hypothesis_settings.register_profile(
    "spark_batches",
    max_examples=2,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
hypothesis_settings.load_profile("spark_batches")


@pytest.fixture(scope="session")
def data_dir():
    # Not pytest's tmp_path: its root is private to root, and the embedded server runs as an
    # unprivileged user when the tests run as root.
    root = Path(tempfile.mkdtemp(prefix="sales_assets_test_"))
    root.chmod(0o755)
    yield root
    EmbeddedPostgres(root / "postgres").stop()
    EmbeddedSparkConnect(root / "spark-connect", {}).stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(data_dir) -> Settings:
    env = {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(data_dir)}
    return Settings.from_env(env)


_SESSIONS: dict[str, SparkSession] = {}


class SuiteSparkResource(SparkResource):
    """The suite's Spark: every run of the test session shares one Spark Connect session, as a new
    session starts new Python workers on the server. A run still clears the
    server's cache at its end, as every run does; its session is kept for the next run."""

    def _connect(self, url: str) -> SparkSession:
        session = _SESSIONS.get(url)
        if session is None or session.is_stopped:
            session = _SESSIONS[url] = super()._connect(url)
        return session

    def _release(self, session: SparkSession) -> None:
        self._spark_session = None  # the next run's copy of this resource connects to the same session


@pytest.fixture(scope="session")
def spark_resource(settings) -> SparkResource:
    """The path users take: a Spark Connect session to the embedded server (the suite's own, under
    its data directory), one session for the whole test session."""
    resource = SuiteSparkResource(**connections.spark_fields(settings))
    resource.spark_session  # noqa: B018 - connects now: the server runs before any test asks for it
    yield resource
    resource.spark_session.stop()


@pytest.fixture(scope="session")
def spark(spark_resource):
    return spark_resource.spark_session


@pytest.fixture(scope="session")
def pg(settings):
    """The embedded PostgreSQL resource the definitions use (started here, stopped at the end)."""
    resource = connections.postgres(settings)
    resource.start()
    return resource


@pytest.fixture
def ch(settings):
    """The ClickHouse engine the definitions use; its client is closed after each test (chdb: one
    process per data path, and some tests start other processes)."""
    resource = connections.clickhouse(settings)
    yield resource
    resource.close()


@pytest.fixture(scope="session")
def defs(settings, spark_resource, pg):
    return build_definitions(settings, spark=spark_resource)


@pytest.fixture(scope="session")
def instance():
    with instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session")
def run_job(defs, instance):
    """Materializes the real job; returns the ExecuteInProcessResult."""

    def run(tags: dict | None = None, raise_on_error: bool = True, **raw_sales_config):
        job = defs.resolve_job_def("sales_job")
        return job.execute_in_process(
            instance=instance, run_config=run_config(**raw_sales_config), tags=tags or {}, raise_on_error=raise_on_error
        )

    return run


# --- the golden materialization ------------------------------------------------------------------

GOLDEN_DB = "sales_golden"


@dataclass
class Golden:
    """The golden run: its result, what it left cached on the server, and its stored state."""

    result: object
    cached_after: set[int]
    digests: dict[str, tuple[int, str]]
    clickhouse: list[tuple]
    raw_rows: int


def _maintenance_dsn(dsn: str) -> str:
    return urlsplit(dsn)._replace(path="/postgres").geturl()


def _copy_database(dsn: str, source: str, target: str) -> None:
    """`target` becomes a copy of `source` (CREATE DATABASE ... TEMPLATE: a file copy, tables,
    keys, comments and all), whatever held either open."""
    with psycopg.connect(_maintenance_dsn(dsn), autocommit=True) as conn:
        conn.execute(f'drop database if exists "{target}" with (force)')
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where datname = %s and pid <> pg_backend_pid()",
            (source,),
        )
        conn.execute(f'create database "{target}" template "{source}"')


def _copy_clickhouse(client, source: str, target: str) -> None:
    client.command(f"drop database if exists {target} sync")
    client.command(f"create database {target}")
    for (name,) in client.query(f"select name from system.tables where database = '{source}'").result_rows:
        client.command(f"create table {target}.`{name}` as {source}.`{name}`")
        client.command(f"insert into {target}.`{name}` select * from {source}.`{name}`")


@pytest.fixture(scope="session")
def golden(run_job, pg, settings, spark_resource, data_dir) -> Golden:
    """One materialization of the real graph for the whole session, kept as copies: a PostgreSQL
    database made from it as a template, its Parquet directory, its ClickHouse tables."""
    before = cached_rdds(spark_resource)
    result = run_job(tags={RUN_DATE_TAG: GOLDEN_DATE}, **GOLDEN_CONFIG)
    assert result.success
    cached_after = cached_rdds(spark_resource) - before
    dbname = urlsplit(pg.dsn).path.lstrip("/")
    _copy_database(pg.dsn, dbname, GOLDEN_DB)
    shutil.copytree(settings.parquet_uri, data_dir / "golden-parquet")
    ch = connections.clickhouse(settings)
    try:
        _copy_clickhouse(ch.get_client(), "sales", "golden")
        snapshot = ch_rows(ch, GOLDEN_DATE)
    finally:
        ch.close()
    return Golden(
        result=result,
        cached_after=cached_after,
        digests={t: table_digest(pg, f"sales.{t}") for t in PG_TABLES},
        clickhouse=snapshot,
        raw_rows=GOLDEN_CONFIG["rows"],
    )


@pytest.fixture
def golden_state(golden, pg, settings, instance, data_dir) -> Golden:
    """What the golden run stored, restored from its copies: both databases, the Parquet and the
    golden run's materializations as the latest ones (the checks read their metadata)."""
    dbname = urlsplit(pg.dsn).path.lstrip("/")
    _copy_database(pg.dsn, GOLDEN_DB, dbname)
    shutil.rmtree(settings.parquet_uri, ignore_errors=True)
    shutil.copytree(data_dir / "golden-parquet", settings.parquet_uri)
    ch = connections.clickhouse(settings)
    try:
        _copy_clickhouse(ch.get_client(), "golden", "sales")
    finally:
        ch.close()
    for event in golden.result.get_asset_materialization_events():
        m = event.materialization
        instance.report_runless_asset_event(AssetMaterialization(asset_key=m.asset_key, metadata=m.metadata))
    return golden


@pytest.fixture
def snapshot_of_everything(golden_state, pg, ch, spark, settings):
    """The golden state, and a function telling whether anything changed since."""
    before = stored_state(pg, ch, spark, settings)
    return lambda: stored_state(pg, ch, spark, settings) == before
