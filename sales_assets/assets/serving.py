"""The serving side: the PostgreSQL aggregates as one ClickHouse snapshot per import date."""

from datetime import UTC, date, datetime

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, AssetsDefinition, Output, asset

from sales_assets.contract import CLICKHOUSE_AGGREGATES
from sales_assets.io_managers.clickhouse import Snapshot
from sales_assets.policies import transient_retries
from sales_assets.resources.run_date import RunDateResource

SERVING_GROUP = "serving"


def snapshot_for(aggregates: pa.Table, import_date: date, loaded_at: datetime) -> pa.Table:
    """The aggregates typed for ClickHouse, stamped with the import date and load time."""
    n = aggregates.num_rows
    columns = {name: aggregates[name] for name in aggregates.column_names}
    for name in ("orders", "sales", "units"):
        columns[name] = pc.cast(aggregates[name], pa.uint64())
    columns["import_date"] = pa.array([import_date] * n, pa.date32())
    columns["loaded_at"] = pa.array([loaded_at.replace(tzinfo=None)] * n, pa.timestamp("s"))
    return pa.table(columns)


def build_clickhouse_sales_aggregates(retry_delay_s: float) -> AssetsDefinition:
    @asset(
        io_manager_key="clickhouse_io_manager",
        kinds={"clickhouse"},
        group_name=SERVING_GROUP,
        retry_policy=transient_retries(retry_delay_s),
        description=f"ClickHouse {CLICKHOUSE_AGGREGATES.qualified}: the aggregates with import_date and "
        "loaded_at; re-loading a date replaces that date's snapshot atomically.",
        metadata={
            "dagster/table_name": CLICKHOUSE_AGGREGATES.qualified,
            "dagster/column_schema": CLICKHOUSE_AGGREGATES.dagster_schema,
        },
    )
    def clickhouse_sales_aggregates(
        context: AssetExecutionContext, sales_aggregates: pa.Table, run_date: RunDateResource
    ) -> Output[Snapshot]:
        import_date = run_date.for_run(context)
        rows = snapshot_for(sales_aggregates, import_date, datetime.now(UTC))
        region_revenue = pc.sum(pc.filter(rows["revenue"], pc.equal(rows["grain"], "region"))).as_py()
        return Output(
            Snapshot(rows, import_date),
            metadata={
                "import_date": import_date.isoformat(),
                "revenue_total": float(region_revenue or 0),
            },
        )

    return clickhouse_sales_aggregates
