"""The code location: assets, checks, resources per environment, the job and its schedule.

Start reading here. `build_definitions(settings)` wires everything from one `Settings`; `defs` is
what Dagster loads, built when Dagster asks for it (nothing reads the environment at import).
"""

from __future__ import annotations

import warnings

import dagster as dg
from dagster import Definitions, in_process_executor

from sales_assets import connections
from sales_assets.alerts import build_alert_sensor
from sales_assets.assets import build_clickhouse_sales_aggregates, build_raw_sales, build_warehouse_assets
from sales_assets.checks import ALL_CHECKS
from sales_assets.connections import CH_URL, PG_URL, SPARK_REMOTE, named_by_env
from sales_assets.io_managers.clickhouse import ClickHouseIOManager
from sales_assets.io_managers.parquet import SparkParquetIOManager
from sales_assets.io_managers.postgres import PostgresIOManager
from sales_assets.jobs import build_freshness_policy, build_job, build_schedule
from sales_assets.resources.run_date import RunDateResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource
from sales_assets.settings import Settings


def build_resources(settings: Settings, spark: SparkResource | None = None) -> dict:
    """Resources for `settings`: embedded services unless the environment names servers."""
    # One Spark Connect session per run, for the assets and the I/O managers alike: configured at
    # launch, the resource is the one top-level instance they share (like the run lock below);
    # fully configured copies nested in the I/O managers would each open a session of their own.
    spark = spark or SparkResource.configure_at_launch(
        **connections.spark_fields(settings, remote=named_by_env(settings.spark_remote, SPARK_REMOTE))
    )
    postgres = connections.postgres(settings, url=named_by_env(settings.pg_url, PG_URL))
    # One run at a time: the I/O managers and the ClickHouse resource require the lock. Configured
    # at launch, it is one resource that they all share (a fully configured one nested in another
    # resource is set up anew inside it), and its wait is settable in the run config.
    run_lock = RunLockResource.configure_at_launch(postgres=postgres)
    clickhouse = connections.clickhouse(settings, url=named_by_env(settings.ch_url, CH_URL), run_lock=run_lock)
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

    assets = [
        build_raw_sales(settings),
        *build_warehouse_assets(settings.retry_delay_s),
        build_clickhouse_sales_aggregates(settings.retry_delay_s),
    ]
    names = {key.to_user_string() for a in assets for key in a.keys}
    if names != set(TIERS) or not DUE_DAILY <= names:  # a renamed or added asset fails here, not in a run
        raise ValueError(f"TIERS / DUE_DAILY name {sorted(set(TIERS) ^ names | DUE_DAILY - names)}: not the assets'")

    def operated(spec: dg.AssetSpec) -> dg.AssetSpec:
        name = spec.key.to_user_string()
        return spec.replace_attributes(
            owners=OWNERS,
            tags={**spec.tags, "domain": "sales", "tier": TIERS[name]},
            freshness_policy=freshness if name in DUE_DAILY else spec.freshness_policy,
        )

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
