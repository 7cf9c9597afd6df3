"""The PostgreSQL warehouse: cleaning into `cleaned_sales` / `rejected_sales`, then the aggregates.
Thin: the logic lives in `sales_assets.transforms`; the two cleaning tables are written together by
`write_tables`, the aggregates by the PostgreSQL I/O manager, which also reads them all back."""

import contextlib

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sales_assets.contract import CLEANED_SALES, IMPORT_DATE, REJECT_REASONS, REJECTED_SALES, SALES_AGGREGATES
from sales_assets.io_managers.postgres import table_metadata, write_tables
from sales_assets.pg_transfer import LoadStats
from sales_assets.policies import transient_retries
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.run_date import RunDateResource
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource
from sales_assets.transforms.aggregate import AGGREGATE_INPUT_COLUMNS, TOTAL_GRAIN, aggregate_sales
from sales_assets.transforms.clean import classify_sales, routed_lines

WAREHOUSE_GROUP = "warehouse"


def _table_spec(table) -> AssetSpec:
    # read back (by `sales_aggregates`, by a check) through the PostgreSQL I/O manager
    return AssetSpec(
        table.name,
        deps=["raw_sales"],
        kinds={"spark", "postgres"},
        group_name=WAREHOUSE_GROUP,
        description=table.description,
        metadata={"dagster/table_name": table.qualified, "dagster/column_schema": table.dagster_schema},
    ).with_io_manager_key("postgres_io_manager")


def _cleaning_metadata(table: str, load: LoadStats) -> dict:
    """What the write's tallies say about the cleaning, per table."""
    raw_rows = sum(load.rows.values())
    if table == CLEANED_SALES.name:
        return {"raw_rows": raw_rows, "amount_repaired": load.tallies["amount_repaired"].get("true", 0)}
    rejected, reasons = load.rows[REJECTED_SALES.name], load.tallies["reason"]
    return {
        "rejected_share_pct": round(100 * rejected / raw_rows, 3) if raw_rows else 0.0,
        **{f"rejected_{reason}": reasons.get(reason, 0) for reason in REJECT_REASONS},
    }


def build_warehouse_assets(retry_delay_s: float) -> list[AssetsDefinition]:
    """`cleaned_sales` + `rejected_sales` (one multi-asset) and `sales_aggregates`."""
    retries = transient_retries(retry_delay_s)

    @multi_asset(specs=[_table_spec(CLEANED_SALES), _table_spec(REJECTED_SALES)], retry_policy=retries)
    def clean_sales(
        context: AssetExecutionContext,
        raw_sales: DataFrame,
        run_date: RunDateResource,  # for SALES_TIMEZONE, what sale_ts is read in
        postgres: PostgresResource,
        spark: SparkResource,
        run_lock: RunLockResource,  # never called: requiring it makes the run hold the lock while this writes
    ):
        """Applies the cleaning rules and writes both tables in one pass over the raw lines and one
        transaction: every raw line lands in exactly one of them, and readers see both tables of
        the same run or of none."""
        classified = classify_sales(raw_sales, run_date.timezone)
        tables = (CLEANED_SALES, REJECTED_SALES)
        load = write_tables(routed_lines(classified), tables, postgres, spark, tally=("reason", "amount_repaired"))
        for table in tables:
            metadata = {**table_metadata(table, load, postgres.location), **_cleaning_metadata(table.name, load)}
            yield MaterializeResult(asset_key=table.name, metadata=metadata)

    @asset(
        io_manager_key="postgres_io_manager",
        kinds={"spark", "postgres"},
        group_name=WAREHOUSE_GROUP,
        retry_policy=retries,
        description=SALES_AGGREGATES.description + " Read from sales.cleaned_sales (the columns it needs), "
        "one pass; avg_check = revenue / distinct orders of the group.",
        ins={"cleaned_sales": AssetIn(metadata={"columns": list(AGGREGATE_INPUT_COLUMNS)})},
        metadata={
            "dagster/table_name": SALES_AGGREGATES.qualified,
            "dagster/column_schema": SALES_AGGREGATES.dagster_schema,
        },
    )
    def sales_aggregates(context: AssetExecutionContext, cleaned_sales: DataFrame, run_date: RunDateResource):
        # computed once, for the metadata and the load; the total row feeds the metadata only.
        # As of the run's date: every stored line was imported by then.
        as_of = run_date.for_run(context)
        aggregates = (
            aggregate_sales(cleaned_sales, with_total=True)
            .selectExpr(f"DATE'{as_of.isoformat()}' AS {IMPORT_DATE}", "*")
            .cache()
        )
        try:
            # a dozen rows, in one job: sorted here, as Spark's orderBy costs two more jobs
            rows = aggregates.filter(F.col("grain").isin("region", TOTAL_GRAIN)).collect()
            total = next((r for r in rows if r["grain"] == TOTAL_GRAIN), None)  # none when no line was kept
            by_region = sorted(
                (r for r in rows if r["grain"] == "region"), key=lambda row: (-row["revenue"], row["region"])
            )  # ties: by name, stable
            preview = "\n".join(
                ["| region | orders | revenue | avg check |", "|---|---:|---:|---:|"]
                + [
                    f"| {r['region']} | {r['orders']:,} | {r['revenue']:,} | {r['avg_check']:,} |"
                    for r in by_region[:10]
                ]
            )
            # Dagster stores a yielded output before the generator resumes: the load reads the cache
            # null-safe: a row without a grain must reach the table (and be refused there), not vanish
            yield Output(
                aggregates.filter(~F.col("grain").eqNullSafe(TOTAL_GRAIN)),
                metadata={
                    "revenue_total": float(total["revenue"]) if total else 0.0,
                    "orders_total": total["orders"] if total else 0,  # distinct orders, whatever their regions
                    "top_regions": MetadataValue.md(preview),
                },
            )
        finally:
            # nothing reads the frame after its load; a long-lived session keeps no copy. When the load
            # fails, Dagster leaves this generator suspended and this runs at garbage collection, maybe
            # after the session stopped: nothing is left to release then.
            with contextlib.suppress(Exception):
                aggregates.unpersist()

    return [clean_sales, sales_aggregates]
