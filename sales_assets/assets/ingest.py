"""Where the lines come from: `raw_sales`, generated or read from a file, stored as Parquet."""

# No `from __future__ import annotations`: Dagster reads the run config's class from the
# annotation of `config`, and that class is made per Settings.

from datetime import timedelta
from typing import Optional

from dagster import AssetExecutionContext, AssetsDefinition, Config, Output, asset
from pydantic import Field
from pyspark.sql import DataFrame

from sales_assets.io_managers.parquet import SOURCE_PATH
from sales_assets.policies import bad_data_fails_at_once, lost_spark_server_fails_at_once, transient_retries
from sales_assets.prerequisites import PrerequisiteError, require_free_disk
from sales_assets.resources.run_date import RunDateResource
from sales_assets.resources.spark import SparkResource
from sales_assets.settings import Settings
from sales_assets.transforms.clean import delivered_on
from sales_assets.transforms.generate import CYCLE_DAYS, generate_raw_sales
from sales_assets.transforms.ingest import read_raw_file

INGEST_GROUP = "ingest"

# Ids, prices, amounts and timestamps are nearly unique per line: a Parquet dictionary for them is
# built, then dropped as too big. Plain from the start (docs/performance.md).
PLAIN_RAW_COLUMNS = ("sale_id", "order_id", "customer_id", "unit_price", "amount", "sale_ts")


def raw_sales_config(settings: Settings) -> type[Config]:
    """The run config of `raw_sales`, its defaults from SALES_ROWS, SALES_SEED, SALES_SOURCE_PATH."""

    class RawSalesConfig(Config):
        rows: int = Field(
            default=settings.rows,
            ge=CYCLE_DAYS,
            description="raw lines to generate over the 365 import dates up to the run's date, "
            "each date's delivery holding the sales of the day before (ignored when source_path is set)",
        )
        seed: int = Field(default=settings.seed, description="same seed, same lines")
        dirty_fraction: float = Field(default=0.02, ge=0, le=1, description="share of dirty lines")
        source_path: Optional[str] = Field(
            default=settings.source_path,
            description="a CSV/Parquet file with the raw columns to ingest instead of generating",
        )

    return RawSalesConfig


def build_raw_sales(settings: Settings) -> AssetsDefinition:
    RawSalesConfig = raw_sales_config(settings)

    @asset(
        io_manager_key="parquet_io_manager",
        kinds={"spark", "parquet"},
        group_name=INGEST_GROUP,
        metadata={"parquet_options": {f"parquet.enable.dictionary#{c}": "false" for c in PLAIN_RAW_COLUMNS}},
        retry_policy=transient_retries(settings.retry_delay_s),
        description="Raw sales lines, all columns as text, each with its import_date: the deliveries "
        "of the 365 dates up to the run's date, generated (seeded, Spark-native), or `source_path` "
        "read as one delivery of the run's date. Stored as Parquet.",
    )
    def raw_sales(
        context: AssetExecutionContext, config: RawSalesConfig, spark: SparkResource, run_date: RunDateResource
    ) -> Output[DataFrame]:
        day = run_date.for_run(context)
        # SourceFileError, missing columns, bad parameters, too little disk; a server gone
        with bad_data_fails_at_once(ValueError, PrerequisiteError), lost_spark_server_fails_at_once(spark):
            if not config.source_path:  # before anything is written; a file's size is its own answer
                require_free_disk(settings.data_dir, config.rows, embedded_postgres=not settings.pg_url)
            if config.source_path:  # one delivery, imported on the run's date
                frame = delivered_on(read_raw_file(spark.spark_session, config.source_path), day)
                source = config.source_path
            else:
                frame = generate_raw_sales(
                    spark.spark_session,
                    rows=config.rows,
                    seed=config.seed,
                    first_date=day - timedelta(days=CYCLE_DAYS - 1),
                    last_date=day,
                    dirty_fraction=config.dirty_fraction,
                )
                source = f"generated (seed {config.seed})"
        metadata = {
            "source": source,
            "run_date": day.isoformat(),
            "requested_rows": config.rows if not config.source_path else -1,
        }
        if config.source_path:  # the I/O manager's write reads the files: their errors are final
            metadata[SOURCE_PATH] = config.source_path
        return Output(frame, metadata=metadata)

    return raw_sales
