"""The serving side: the PostgreSQL aggregates as one ClickHouse snapshot per import date."""


import time
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.compute as pc
from dagster import AssetExecutionContext, MaterializeResult, TableColumn, TableSchema, asset

from sales_assets.policies import TRANSIENT_RETRIES
from sales_assets.resources.clickhouse import AGGREGATES_COLUMNS, AGGREGATES_TABLE, DATABASE, ClickHouseResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.run_date import RunDateResource

SERVING_GROUP = "serving"


CLICKHOUSE_SCHEMA = TableSchema(columns=[TableColumn(name, type_) for name, type_ in AGGREGATES_COLUMNS])


def snapshot_for(aggregates: pa.Table, import_date, loaded_at: datetime) -> pa.Table:
    """The aggregates typed for ClickHouse, stamped with the import date and load time."""
    n = aggregates.num_rows
    columns = {name: aggregates[name] for name in aggregates.column_names}
    for name in ("orders", "sales", "units"):
        columns[name] = pc.cast(aggregates[name], pa.uint64())
    columns["import_date"] = pa.array([import_date] * n, pa.date32())
    columns["loaded_at"] = pa.array([loaded_at.replace(tzinfo=None)] * n, pa.timestamp("s"))
    return pa.table(columns)


@asset(
    kinds={"clickhouse"},
    group_name=SERVING_GROUP,
    retry_policy=TRANSIENT_RETRIES,
    description=f"ClickHouse {DATABASE}.{AGGREGATES_TABLE}: the aggregates with import_date and "
                "loaded_at; re-loading a date replaces that date's snapshot atomically.",
    metadata={"dagster/table_name": f"{DATABASE}.{AGGREGATES_TABLE}", "dagster/column_schema": CLICKHOUSE_SCHEMA},
)
def clickhouse_sales_aggregates(context: AssetExecutionContext, sales_aggregates: pa.Table,
                                clickhouse: ClickHouseResource, run_date: RunDateResource,
                                run_lock: RunLockResource) -> MaterializeResult:
    started = time.perf_counter()
    import_date = run_date.for_run(context)
    snapshot = snapshot_for(sales_aggregates, import_date, datetime.now(timezone.utc))
    rows = clickhouse.replace_snapshot(snapshot, import_date, token=context.run_id.replace("-", "")[:12])
    seconds = time.perf_counter() - started
    return MaterializeResult(metadata={
        "dagster/row_count": rows,
        "import_date": import_date.isoformat(),
        "revenue_total": float(pc.sum(pc.filter(snapshot["revenue"], pc.equal(snapshot["grain"], "region"))).as_py() or 0),
        "load_seconds": round(seconds, 3),
        "load_rows_per_s": round(rows / seconds) if seconds else 0,
    })
