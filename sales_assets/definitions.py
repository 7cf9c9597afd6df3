"""The code location: assets, checks, resources per environment, the job and its schedule.

Start reading here. `build_definitions(settings)` wires everything from one `Settings`; `defs` is
what Dagster loads, built when Dagster asks for it (nothing reads the environment at import).
"""

from __future__ import annotations

import warnings

import dagster as dg
from dagster import Definitions, EnvVar, in_process_executor

from sales_assets.alerts import build_alert_sensor
from sales_assets.assets import build_raw_sales, clean_sales, clickhouse_sales_aggregates, sales_aggregates
from sales_assets.checks import ALL_CHECKS
from sales_assets.io_managers.clickhouse import ClickHouseIOManager
from sales_assets.io_managers.parquet import SparkParquetIOManager
from sales_assets.io_managers.postgres import PostgresIOManager
from sales_assets.jobs import build_freshness_policy, build_job, build_schedule
from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.run_date import RunDateResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource, spark_config
from sales_assets.settings import Settings


def postgres_resource(settings: Settings, in_definitions: bool = True) -> PostgresResource:
    # In Definitions the URL is an EnvVar, so the Dagster UI shows the variable's name, never
    # the password inside it; outside a run (CLI, tests) the plain value is used.
    url = settings.pg_url and (EnvVar("SALES_PG_URL") if in_definitions else settings.pg_url)
    return PostgresResource(url=url, embedded_dir=str(settings.embedded_pg_dir))


def clickhouse_resource(
    settings: Settings, in_definitions: bool = True, run_lock: RunLockResource | None = None
) -> ClickHouseResource:
    url = settings.ch_url and (EnvVar("SALES_CH_URL") if in_definitions else settings.ch_url)
    run_lock = run_lock or RunLockResource(postgres=postgres_resource(settings, in_definitions))
    return ClickHouseResource(url=url, embedded_path=str(settings.embedded_ch_path), run_lock=run_lock)


def spark_resource(settings: Settings, in_definitions: bool = True, **fields) -> SparkResource:
    return SparkResource(**spark_resource_fields(settings, in_definitions), **fields)


def spark_resource_fields(settings: Settings, in_definitions: bool = True) -> dict:
    # an endpoint URL may carry a token: an EnvVar in Definitions, like the database URLs
    remote = settings.spark_remote and (EnvVar("SALES_SPARK_REMOTE") if in_definitions else settings.spark_remote)
    return {
        "spark_config": spark_config(settings.spark_master, **settings.spark_conf),
        "remote": remote,
        "embedded_dir": str(settings.embedded_spark_dir),
    }


def build_resources(settings: Settings, spark: SparkResource | None = None) -> dict:
    """Resources for `settings`: embedded services unless the environment names servers."""
    # One Spark Connect session per run, for the assets and the I/O managers alike: configured at
    # launch, the resource is the one top-level instance they share (like the run lock below);
    # fully configured copies nested in the I/O managers would each open a session of their own.
    spark = spark or SparkResource.configure_at_launch(**spark_resource_fields(settings))
    postgres = postgres_resource(settings)
    # One run at a time: the I/O managers and the ClickHouse resource require the lock. Configured
    # at launch, it is one resource that they all share (a fully configured one nested in another
    # resource is set up anew inside it), and its wait is settable in the run config.
    run_lock = RunLockResource.configure_at_launch(postgres=postgres)
    clickhouse = clickhouse_resource(settings, run_lock=run_lock)
    return {
        "spark": spark,
        "postgres": postgres,
        "clickhouse": clickhouse,
        "run_date": RunDateResource(timezone=settings.timezone),
        "run_lock": run_lock,
        "parquet_io_manager": SparkParquetIOManager(base_path=settings.parquet_uri, spark=spark, run_lock=run_lock),
        "postgres_io_manager": PostgresIOManager(postgres=postgres, spark=spark, run_lock=run_lock),
        "clickhouse_io_manager": ClickHouseIOManager(clickhouse=clickhouse, run_lock=run_lock),
    }


OWNERS = ["team:sales-data"]
# tier: where an asset sits on the way from raw lines to what dashboards read
TIERS = {
    "raw_sales": "raw",
    "cleaned_sales": "clean",
    "rejected_sales": "quarantine",
    "sales_aggregates": "aggregate",
    "clickhouse_sales_aggregates": "serving",
}
DUE_DAILY = {"sales_aggregates", "clickhouse_sales_aggregates"}  # what readers of the day's numbers need


def build_assets(settings: Settings) -> list:
    """The assets with what operating them needs, set in one place: owners, tags, a freshness
    policy on what readers depend on, and links to their source code."""
    freshness = build_freshness_policy(settings)

    def operated(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        return spec.replace_attributes(
            owners=OWNERS,
            tags={**spec.tags, "domain": "sales", "tier": TIERS[name]},
            freshness_policy=freshness if name in DUE_DAILY else spec.freshness_policy,
        )

    assets = [build_raw_sales(settings), clean_sales, sales_aggregates, clickhouse_sales_aggregates]
    with warnings.catch_warnings():  # code references are beta in Dagster 1.13; the UI shows them fine
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.with_source_code_references(dg.map_asset_specs(operated, assets))


def build_definitions(settings: Settings | None = None, spark: SparkResource | None = None) -> Definitions:
    settings = settings or Settings.from_env()
    job = build_job(settings)
    return Definitions(
        assets=build_assets(settings),
        asset_checks=ALL_CHECKS,
        resources=build_resources(settings, spark),
        jobs=[job],
        schedules=[build_schedule(settings, job)],
        sensors=[build_alert_sensor(settings)],
        executor=in_process_executor,
    )


@dg.definitions
def defs() -> Definitions:
    return build_definitions()
