"""Stores Spark DataFrames as PostgreSQL tables and loads them back as Spark or Arrow."""

from collections.abc import Sequence

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency
from pyspark.sql import DataFrame

from sales_assets.contract import PG_TABLES, PgTable
from sales_assets.pg_transfer import LoadStats, RefusedByPostgres, read_arrow, read_frame, replace_table, replace_tables
from sales_assets.policies import bad_data_fails_at_once, lost_spark_server_fails_at_once
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource
from sales_assets.transforms.parallelism import default_parallelism


def table_metadata(table: PgTable, load: LoadStats, location: str) -> dict:
    """What the UI shows for a loaded table. With several tables written in one pass, the
    seconds and rows/s are those of the whole pass."""
    total = sum(load.rows.values())
    return {
        "dagster/table_name": table.qualified,
        "dagster/row_count": load.rows[table.name],
        "dagster/column_schema": table.dagster_schema,
        "postgres": location,
        "load_seconds": round(load.seconds, 3),
        "load_rows_per_s": round(total / load.seconds) if load.seconds else 0,
        # where the load's time went: lock, prepare, copy, count, keys, analyze, swap
        "load_phase_seconds": {phase: round(seconds, 3) for phase, seconds in load.phases.items()},
    }


def write_tables(
    frame: DataFrame, tables: Sequence[PgTable], postgres: PostgresResource, spark: SparkResource, tally=()
) -> LoadStats:
    """Replaces `tables` from one frame with a struct column per table, in one pass and one
    transaction (`pg_transfer.replace_tables`; `tally` columns are counted on the way). Rows
    PostgreSQL refuses fail the step at once; a Spark server lost mid-write says so."""
    with bad_data_fails_at_once(RefusedByPostgres), lost_spark_server_fails_at_once(spark):
        return replace_tables(frame, postgres.dsn, tables, tally)


def table_for(asset_key) -> PgTable:
    name = asset_key.path[-1]
    if name not in PG_TABLES:
        raise KeyError(f"no PostgreSQL table is defined for asset {name!r}; known: {', '.join(PG_TABLES)}")
    return PG_TABLES[name]


class PostgresIOManager(ConfigurableIOManager):
    """Asset `x` <-> table `sales.x` (see `sales_assets.contract`). Each write replaces the table
    atomically (several tables written together: `write_tables`). Inputs load as a Spark
    DataFrame (parallel range reads) or, when the input is annotated `pyarrow.Table`, as Arrow
    without Spark; `AssetIn(metadata={"columns": [...]})` selects columns."""

    postgres: ResourceDependency[PostgresResource]
    spark: ResourceDependency[SparkResource]
    # never called: requiring it makes every run that stores or reads through this hold the run lock
    # from its start to its end (Dagster sets it up before the first step; resources/run_lock.py)
    run_lock: ResourceDependency[RunLockResource]
    read_partitions: int = 0  # 0 = Spark's default parallelism: one range scan per core

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        table = table_for(context.asset_key)
        with bad_data_fails_at_once(RefusedByPostgres), lost_spark_server_fails_at_once(self.spark):
            stats = replace_table(obj, self.postgres.dsn, table)
        context.add_output_metadata(table_metadata(table, stats, self.postgres.location))

    def load_input(self, context: InputContext) -> DataFrame | pa.Table:
        table = table_for(context.asset_key)
        # `AssetIn(metadata={"columns": [...]})` reads only those columns (less to move and parse)
        if columns := (context.definition_metadata or {}).get("columns"):
            table = table.project(columns)
        if context.dagster_type.typing_type is pa.Table:
            return read_arrow(self.postgres.dsn, table)
        with lost_spark_server_fails_at_once(self.spark):
            spark = self.spark.spark_session
            partitions = self.read_partitions or default_parallelism(spark)
            return read_frame(spark, self.postgres.dsn, table, partitions)
