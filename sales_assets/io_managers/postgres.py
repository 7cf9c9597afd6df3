"""Stores Spark DataFrames as PostgreSQL tables and loads them back as Spark or Arrow."""


import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency
from pyspark.sql import DataFrame

from sales_assets.io_managers.pg_transfer import read_arrow, read_frame, replace_table
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.spark import SparkResource
from sales_assets.tables import PG_TABLES, PgTable


def table_for(asset_key) -> PgTable:
    name = asset_key.path[-1]
    if name not in PG_TABLES:
        raise KeyError(f"no PostgreSQL table is defined for asset {name!r}; known: {', '.join(PG_TABLES)}")
    return PG_TABLES[name]


class PostgresIOManager(ConfigurableIOManager):
    """Asset `x` <-> table `sales.x` (see `sales_assets.tables`). Each write replaces the table
    atomically; inputs load as a Spark DataFrame (parallel range reads) or, when the input is
    annotated `pyarrow.Table`, as Arrow without Spark."""

    postgres: ResourceDependency[PostgresResource]
    spark: ResourceDependency[SparkResource]
    read_partitions: int = 4

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        table = table_for(context.asset_key)
        stats = replace_table(obj, self.postgres.dsn, table)
        context.add_output_metadata({
            "dagster/table_name": table.qualified,
            "dagster/row_count": stats.rows,
            "dagster/column_schema": table.dagster_schema,
            "postgres": self.postgres.location,
            "load_seconds": round(stats.seconds, 3),
            "load_rows_per_s": round(stats.rows / stats.seconds) if stats.seconds else 0,
        })

    def load_input(self, context: InputContext):
        table = table_for(context.asset_key)
        if context.dagster_type.typing_type is pa.Table:
            return read_arrow(self.postgres.dsn, table)
        return read_frame(self.spark.spark_session, self.postgres.dsn, table, self.read_partitions)
