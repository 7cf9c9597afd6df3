"""Shared fixtures: one Spark session, one real embedded PostgreSQL server and one ClickHouse
engine (chdb) for the whole test session. No database is mocked."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from dagster import instance_for_test
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from sales_assets.definitions import build_definitions, clickhouse_resource, postgres_resource
from sales_assets.definitions import spark_resource as spark_resource_for
from sales_assets.dev.embedded_postgres import EmbeddedPostgres
from sales_assets.dev.spark_connect import EmbeddedSparkConnect
from sales_assets.resources.spark import SparkResource
from sales_assets.settings import Settings

# What the tests' settings never take from a developer's environment: their own data directory and
# databases, and the run config's defaults (an exported SALES_SOURCE_PATH would make every run
# ingest that file instead of generating).
# Property tests run one small Spark job per example: `make test` tries 30 examples of each,
# `make test-fast` (--hypothesis-profile=fast) 8, to stay a quick tier.
_SPARK_EXAMPLES = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
hypothesis_settings.register_profile("full", max_examples=30, **_SPARK_EXAMPLES)
hypothesis_settings.register_profile("fast", max_examples=8, **_SPARK_EXAMPLES)
hypothesis_settings.load_profile("full")

TEST_ENV = {
    "SALES_DATA_DIR": "",
    "SALES_PARQUET_URI": "",
    "SALES_PG_URL": "",
    "SALES_CH_URL": "",
    "SALES_SOURCE_PATH": "",
    "SALES_ROWS": "",
    "SALES_SEED": "",
    "SALES_SPARK_REMOTE": "",  # the suite's own embedded Spark Connect server, under its data dir
    "SALES_SPARK_MASTER": "local[2]",
    "SALES_SPARK_CONF": "spark.sql.shuffle.partitions=2 spark.driver.memory=1g",
}


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


@pytest.fixture(scope="session")
def spark_resource(settings) -> SparkResource:
    """The path users take: a Spark Connect session to the embedded server (the suite's own, under
    its data directory), one session for the whole test session."""
    resource = spark_resource_for(settings, stop_on_teardown=False)
    resource.spark_session  # noqa: B018 - connects now: the server runs before any test asks for it
    yield resource
    resource.spark_session.stop()


@pytest.fixture(scope="session")
def spark(spark_resource):
    return spark_resource.spark_session


@pytest.fixture(scope="session")
def pg(settings):
    """The embedded PostgreSQL resource the definitions use (started here, stopped at the end)."""
    resource = postgres_resource(settings, in_definitions=False)
    resource.start()
    return resource


@pytest.fixture
def ch(settings):
    """The ClickHouse engine the definitions use; its client is closed after each test (chdb: one
    process per data path, and some tests start other processes)."""
    resource = clickhouse_resource(settings, in_definitions=False)
    yield resource
    resource.close()


@pytest.fixture(scope="session")
def defs(settings, spark_resource, pg):
    return build_definitions(settings, spark=spark_resource)


@pytest.fixture(scope="session")
def instance():
    with instance_for_test() as inst:
        yield inst


def run_config(**raw_sales_config) -> dict:
    return {"ops": {"raw_sales": {"config": raw_sales_config}}}


@pytest.fixture(scope="session")
def run_job(defs, instance):
    """Materializes the real job; returns the ExecuteInProcessResult."""

    def run(tags: dict | None = None, raise_on_error: bool = True, **raw_sales_config):
        job = defs.resolve_job_def("sales_job")
        return job.execute_in_process(
            instance=instance, run_config=run_config(**raw_sales_config), tags=tags or {}, raise_on_error=raise_on_error
        )

    return run


def query(pg, sql: str, params=()) -> list[tuple]:
    with pg.connect() as conn:
        return conn.execute(sql, params).fetchall()


def cleaning_counts(classified) -> dict[str, int]:
    """Rows per outcome of a classified frame: `kept`, `amount_repaired`, one key per reject reason
    (what the pipeline tallies while it writes the tables)."""
    from pyspark.sql import functions as F

    outcome = F.coalesce(F.col("reason"), F.lit("kept"))
    rows = (
        classified.groupBy(outcome.alias("outcome"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("amount_repaired").cast("long")).alias("repaired"))
        .collect()
    )  # one row per outcome: a handful
    counts = {r["outcome"]: r["n"] for r in rows}
    counts["amount_repaired"] = sum(r["repaired"] or 0 for r in rows)
    counts.setdefault("kept", 0)
    return counts
