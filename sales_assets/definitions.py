"""The code location: assets, resources per environment, the job and its schedule."""

from __future__ import annotations

from dagster import Definitions, EnvVar, in_process_executor

from sales_assets.assets import ALL_ASSETS
from sales_assets.checks import ALL_CHECKS
from sales_assets.io_managers.parquet import SparkParquetIOManager
from sales_assets.io_managers.postgres import PostgresIOManager
from sales_assets.jobs import build_schedule, sales_job
from sales_assets.resources import ClickHouseResource, PostgresResource, SparkResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import spark_config
from sales_assets.run_date import RunDateResource
from sales_assets.settings import Settings


def postgres_resource(settings: Settings, in_definitions: bool = True) -> PostgresResource:
    # In Definitions the URL is an EnvVar, so the Dagster UI shows the variable's name, never
    # the password inside it; outside a run (CLI, tests) the plain value is used.
    url = settings.pg_url and (EnvVar("SALES_PG_URL") if in_definitions else settings.pg_url)
    return PostgresResource(url=url, embedded_dir=str(settings.embedded_pg_dir))


def clickhouse_resource(settings: Settings, in_definitions: bool = True) -> ClickHouseResource:
    url = settings.ch_url and (EnvVar("SALES_CH_URL") if in_definitions else settings.ch_url)
    return ClickHouseResource(url=url, embedded_path=str(settings.embedded_ch_path))


def build_resources(settings: Settings, spark: SparkResource | None = None) -> dict:
    """Resources for `settings`: embedded databases unless the environment names servers."""
    spark = spark or SparkResource(spark_config=spark_config(settings.spark_master, **settings.spark_conf))
    postgres = postgres_resource(settings)
    return {
        "spark": spark,
        "postgres": postgres,
        "clickhouse": clickhouse_resource(settings),
        "run_date": RunDateResource(timezone=settings.timezone),
        "run_lock": RunLockResource(postgres=postgres),  # every asset requires it: one run at a time
        "parquet_io_manager": SparkParquetIOManager(base_path=settings.parquet_uri, spark=spark),
        "postgres_io_manager": PostgresIOManager(postgres=postgres, spark=spark),
    }


def build_definitions(settings: Settings | None = None, spark: SparkResource | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    return Definitions(
        assets=ALL_ASSETS,
        asset_checks=ALL_CHECKS,
        resources=build_resources(settings, spark),
        jobs=[sales_job],
        schedules=[build_schedule(settings)],
        executor=in_process_executor,
    )


defs = build_definitions()
