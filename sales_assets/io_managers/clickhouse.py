"""Stores ClickHouse snapshots: one partition per import date, replaced atomically."""

import time
from dataclasses import dataclass
from datetime import date

import pyarrow as pa
from dagster import ConfigurableIOManager, InputContext, OutputContext, ResourceDependency

from sales_assets.contract import CLICKHOUSE_AGGREGATES, ClickHouseTable, checked_identifier
from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.run_lock import RunLockResource


@dataclass(frozen=True)
class Snapshot:
    """The whole content of one import date's partition (possibly empty)."""

    rows: pa.Table
    import_date: date


def create_table_sql(table: ClickHouseTable, name: str | None = None) -> str:
    columns = ", ".join(f"{column} {type_}" for column, type_ in table.columns)
    return (
        f"create table if not exists {table.schema}.{checked_identifier(name or table.name)} ({columns}) "
        f"engine = MergeTree partition by {table.partition_by} order by {table.order_by}"
    )


TABLE: ClickHouseTable = CLICKHOUSE_AGGREGATES


class ClickHouseIOManager(ConfigurableIOManager):
    """Asset `clickhouse_sales_aggregates` <-> ClickHouse `sales.sales_aggregates`. A stored
    `Snapshot` goes to a staging table first, then one `REPLACE PARTITION` swaps it in: readers
    see the date's old snapshot or the new one, and a re-run never adds rows twice. An input
    loads the newest date's snapshot as Arrow."""

    clickhouse: ResourceDependency[ClickHouseResource]
    # never called: requiring it makes every run that stores or reads through this hold the run lock
    # from its start to its end (Dagster sets it up before the first step; resources/run_lock.py)
    run_lock: ResourceDependency[RunLockResource]

    def handle_output(self, context: OutputContext, obj: Snapshot) -> None:
        started = time.perf_counter()
        rows = self.replace_snapshot(obj, token=context.run_id.replace("-", "")[:12])
        seconds = time.perf_counter() - started
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "load_seconds": round(seconds, 3),
                "load_rows_per_s": round(rows / seconds) if seconds else 0,
            }
        )

    def load_input(self, context: InputContext) -> pa.Table:
        client = self.clickhouse.get_client()
        return client.query_arrow(
            f"select * from {TABLE.qualified} where {TABLE.partition_by} = "
            f"(select max({TABLE.partition_by}) from {TABLE.qualified})"
        )

    def ensure_table(self) -> None:
        """Creates the table, or brings an existing one to today's column types (a table made
        before the dates became Date32 is altered in place, its snapshots kept)."""
        client, table = self.clickhouse.get_client(), TABLE
        client.command(f"create database if not exists {table.schema}")
        client.command(create_table_sql(table))
        existing = dict(
            client.query(
                "select name, type from system.columns where database = {db:String} and table = {t:String}",
                parameters={"db": table.schema, "t": table.name},
            ).result_rows
        )
        for name, type_ in table.columns:
            if existing.get(name) == "Date" and type_ == "Date32":
                # widening Date to Date32 keeps every value; ClickHouse rewrites the column's parts
                client.command(
                    f"alter table {table.qualified} modify column {name} {type_}", settings={"mutations_sync": 1}
                )

    def replace_snapshot(self, snapshot: Snapshot, token: str) -> int:
        """Makes `snapshot` the whole content of its date's partition, atomically."""
        client, table = self.clickhouse.get_client(), TABLE
        self.ensure_table()
        prefix = f"_stage_{table.name}_"
        stage = f"{table.schema}.{checked_identifier(prefix + token)}"
        # a killed run's stage outlives it; loads are serialized by the run lock, so any stage
        # here now is a leftover
        for (leftover,) in client.query(
            "select name from system.tables where database = {db:String} and startsWith(name, {prefix:String})",
            parameters={"db": table.schema, "prefix": prefix},
        ).result_rows:
            client.command(f"drop table if exists {table.schema}.{checked_identifier(leftover)}")
        client.command(create_table_sql(table, prefix + token))
        try:
            if snapshot.rows.num_rows:
                client.insert_arrow(stage, snapshot.rows)
            staged = client.command(f"select count() from {stage}")
            if int(staged) != snapshot.rows.num_rows:
                raise RuntimeError(f"staged {staged} rows into ClickHouse, expected {snapshot.rows.num_rows}")
            partition = f"partition id '{snapshot.import_date:%Y%m%d}'"
            if snapshot.rows.num_rows:
                client.command(f"alter table {table.qualified} replace {partition} from {stage}")
            else:  # an all-rejected run: the date's snapshot is empty (REPLACE refuses an empty source)
                client.command(f"alter table {table.qualified} drop {partition}")
        finally:
            client.command(f"drop table if exists {stage}")
        return snapshot.rows.num_rows
