"""Where the project's servers are, resolved from `Settings` in one place: PostgreSQL, ClickHouse
and Spark as the project's resources, with the embedded defaults under SALES_DATA_DIR.

The CLI, the run summary, the bench and the tests call these as they are (plain URLs). The
Definitions pass each URL set in the environment as an `EnvVar` instead (`named_by_env`), so the
Dagster UI shows the variable's name, never the password inside it.
"""

from __future__ import annotations

from typing import Any

from dagster import EnvVar

from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource, spark_config
from sales_assets.settings import Settings

PG_URL, CH_URL, SPARK_REMOTE = "SALES_PG_URL", "SALES_CH_URL", "SALES_SPARK_REMOTE"


def named_by_env(value: str | None, variable: str) -> EnvVar | None:
    """A URL as Definitions hold it: the variable that sets it, or None for the embedded default."""
    return EnvVar(variable) if value else None


def postgres(settings: Settings, url: str | EnvVar | None = None) -> PostgresResource:
    return PostgresResource(url=url or settings.pg_url, embedded_dir=str(settings.embedded_pg_dir))


def clickhouse(
    settings: Settings, url: str | EnvVar | None = None, run_lock: RunLockResource | None = None
) -> ClickHouseResource:
    return ClickHouseResource(
        url=url or settings.ch_url,
        embedded_path=str(settings.embedded_ch_path),
        run_lock=run_lock or RunLockResource(postgres=postgres(settings)),
    )


def spark_fields(settings: Settings, remote: str | EnvVar | None = None) -> dict[str, Any]:
    return {
        "spark_config": spark_config(settings.spark_master, **settings.spark_conf),
        "remote": remote or settings.spark_remote,
        "embedded_dir": str(settings.embedded_spark_dir),
    }


def spark(settings: Settings) -> SparkResource:
    return SparkResource(**spark_fields(settings))
