"""Asset checks: what the UI shows to decide whether today's numbers can be trusted.

Each check re-reads what was stored (Parquet, PostgreSQL, ClickHouse), so it catches a bad load
as well as a bad transform. The ones guarding data downstream are blocking: when they fail, the
aggregates and the ClickHouse load do not run, and the previous snapshot stays.
"""

from datetime import date

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    Config,
    MetadataValue,
    asset_check,
)
from psycopg import IsolationLevel
from pydantic import Field

from sales_assets.contract import CLEANED_SALES, CLICKHOUSE_AGGREGATES, REJECTED_SALES, SALES_AGGREGATES
from sales_assets.io_managers.parquet import parquet_row_count
from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.spark import SparkResource
from sales_assets.transforms.ingest import count_source_records

RAW_ROW_COUNT = "raw_row_count_as_requested"
CONSERVATION = "raw_equals_cleaned_plus_rejected"
CLEANED_VALID = "cleaned_rows_valid"
REJECTED_SHARE = "rejected_share_below_threshold"
AGGREGATES_RECONCILE = "aggregates_match_cleaned_totals"
CLICKHOUSE_RECONCILES = "clickhouse_snapshot_matches_postgres"

# the PostgreSQL columns, in the same order, in both databases
AGGREGATE_COLUMN_LIST = ", ".join(SALES_AGGREGATES.column_names)


def _latest_metadata(context: AssetCheckExecutionContext, asset: str) -> dict:
    event = context.instance.get_latest_materialization_event(AssetKey(asset))
    if event is None or event.asset_materialization is None:
        return {}
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _raw_rows(context, spark: SparkResource) -> int:
    return parquet_row_count(spark.spark_session, _latest_metadata(context, "raw_sales")["dagster/uri"])


@asset_check(
    name=RAW_ROW_COUNT,
    asset="raw_sales",
    description="Stored raw lines = the requested `rows` (generated) or the source file's records (ingested).",
)
def raw_row_count_as_requested(context: AssetCheckExecutionContext, spark: SparkResource) -> AssetCheckResult:
    meta = _latest_metadata(context, "raw_sales")
    stored = parquet_row_count(spark.spark_session, meta["dagster/uri"])
    source = meta.get("source", "")
    if meta.get("requested_rows", -1) >= 0:
        expected = meta["requested_rows"]
    else:  # ingested: CSV records (not physical lines) or Parquet rows, counted anew from the file
        expected = count_source_records(spark.spark_session, source)
    return AssetCheckResult(
        passed=stored == expected, metadata={"stored_rows": stored, "expected_rows": expected, "source": source}
    )


@asset_check(
    name=CONSERVATION,
    asset="cleaned_sales",
    blocking=True,
    additional_deps=["rejected_sales"],
    description="Every raw line is in exactly one of cleaned_sales / rejected_sales.",
)
def raw_equals_cleaned_plus_rejected(
    context: AssetCheckExecutionContext, spark: SparkResource, postgres: PostgresResource
) -> AssetCheckResult:
    raw = _raw_rows(context, spark)
    with postgres.connect() as conn:
        cleaned = conn.execute(f"select count(*) from {CLEANED_SALES.qualified}").fetchone()[0]
        rejected = conn.execute(f"select count(*) from {REJECTED_SALES.qualified}").fetchone()[0]
    return AssetCheckResult(
        passed=raw == cleaned + rejected,
        metadata={
            "raw_rows": raw,
            "cleaned_rows": cleaned,
            "rejected_rows": rejected,
            "difference": raw - cleaned - rejected,
        },
    )


@asset_check(
    name=CLEANED_VALID,
    asset="cleaned_sales",
    blocking=True,
    description="Re-checked in SQL on the stored table: no nulls in required columns, "
    "quantity > 0, price > 0, amount = quantity * unit_price to the cent, "
    "no sale on or after the day after its import date, unique sale_id.",
)
def cleaned_rows_valid(postgres: PostgresResource) -> AssetCheckResult:
    with postgres.connect(autocommit=False) as conn:
        conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True  # one snapshot, two queries
        row = conn.execute(
            f"""
            select count(*) filter (where sale_id is null or order_id is null or product is null or import_date is null
                                    or region is null or quantity is null or unit_price is null
                                    or amount is null or sale_ts is null),
                   count(*) filter (where quantity <= 0),
                   count(*) filter (where unit_price <= 0),
                   count(*) filter (where abs(amount - quantity * unit_price) > 0.01),
                   count(*) filter (where sale_ts >= import_date + 1)
            from {CLEANED_SALES.qualified}"""
        ).fetchone()
        # apart: alone it reads the primary key's index in order; inside the scan above, it
        # sorted every sale_id
        row += conn.execute(f"select count(*) - count(distinct sale_id) from {CLEANED_SALES.qualified}").fetchone()
    names = (
        "null_required",
        "non_positive_quantity",
        "non_positive_price",
        "amount_mismatch",
        "future_sale",
        "duplicate_sale_id",
    )
    metadata = dict(zip(names, row, strict=True))
    return AssetCheckResult(passed=not any(row), metadata=metadata)


class RejectedShareConfig(Config):
    max_rejected_pct: float = Field(
        default=5.0, ge=0, le=100, description="warn above this share of rejected lines (percent)"
    )


@asset_check(
    name=REJECTED_SHARE,
    asset="rejected_sales",
    description="Warns when the share of rejected lines exceeds a threshold (default 5%): the source got worse.",
)
def rejected_share_below_threshold(
    context: AssetCheckExecutionContext, config: RejectedShareConfig, postgres: PostgresResource
) -> AssetCheckResult:
    with postgres.connect() as conn:
        rejected = conn.execute(f"select count(*) from {REJECTED_SALES.qualified}").fetchone()[0]
        cleaned = conn.execute(f"select count(*) from {CLEANED_SALES.qualified}").fetchone()[0]
        per_reason = dict(
            conn.execute(f"select reason, count(*) from {REJECTED_SALES.qualified} group by reason").fetchall()
        )
    total = rejected + cleaned
    share = 100.0 * rejected / total if total else 0.0
    return AssetCheckResult(
        passed=share <= config.max_rejected_pct,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "rejected_pct": round(share, 3),
            "threshold_pct": config.max_rejected_pct,
            **{f"rejected_{k}": v for k, v in sorted(per_reason.items())},
        },
    )


@asset_check(
    name=AGGREGATES_RECONCILE,
    asset="sales_aggregates",
    blocking=True,
    description="At every grain, sums of sales, units and revenue equal the cleaned totals; "
    "avg_check * orders matches revenue within rounding.",
)
def aggregates_match_cleaned_totals(postgres: PostgresResource) -> AssetCheckResult:
    with postgres.connect() as conn:
        totals = conn.execute(
            f"select count(*), coalesce(sum(quantity), 0), coalesce(sum(amount), 0) from {CLEANED_SALES.qualified}"
        ).fetchone()
        grains = conn.execute(f"""
            select grain, sum(sales), sum(units), sum(revenue),
                   count(*) filter (where abs(avg_check * orders - revenue) > orders * 0.005)
            from {SALES_AGGREGATES.qualified} group by grain order by grain""").fetchall()
    mismatches = [g for g in grains if tuple(g[1:4]) != tuple(totals) or g[4]]
    metadata = {
        "cleaned_sales": totals[0],
        "cleaned_units": totals[1],
        "cleaned_revenue": float(totals[2]),
        "grains": len(grains),
        "mismatched_grains": len(mismatches),
        "detail": MetadataValue.md(
            "| grain | sales | units | revenue | avg_check off |\n|---|---:|---:|---:|---:|\n"
            + "\n".join(f"| {g[0]} | {g[1]} | {g[2]} | {g[3]} | {g[4]} |" for g in grains)
        ),
    }
    # no kept line, no group: an all-rejected run has an empty table at every grain
    expected_grains = 3 if totals[0] else 0
    return AssetCheckResult(passed=len(grains) == expected_grains and not mismatches, metadata=metadata)


@asset_check(
    name=CLICKHOUSE_RECONCILES,
    asset="clickhouse_sales_aggregates",
    description="The ClickHouse snapshot for the run's import_date equals the PostgreSQL aggregates row for row.",
)
def clickhouse_snapshot_matches_postgres(
    context: AssetCheckExecutionContext, postgres: PostgresResource, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    # the snapshot the latest load wrote: a check run alone on a later day compares that one, not
    # a date nothing was loaded for yet.
    loaded = _latest_metadata(context, "clickhouse_sales_aggregates").get("import_date")
    if loaded is None:
        return AssetCheckResult(passed=False, metadata={"problem": "no ClickHouse load recorded yet"})
    import_date = date.fromisoformat(loaded)
    with postgres.connect() as conn:
        pg_rows = {tuple(r) for r in conn.execute(f"select {AGGREGATE_COLUMN_LIST} from {SALES_AGGREGATES.qualified}")}
    ch_rows = {
        tuple(r)
        for r in clickhouse.get_client()
        .query(
            f"select {AGGREGATE_COLUMN_LIST} from {CLICKHOUSE_AGGREGATES.qualified} where import_date = {{d:Date}}",
            parameters={"d": import_date},
        )
        .result_rows
    }
    # equal sets, both empty included: an all-rejected run loads an empty snapshot for its date
    return AssetCheckResult(
        passed=pg_rows == ch_rows,
        metadata={
            "import_date": import_date.isoformat(),
            "postgres_rows": len(pg_rows),
            "clickhouse_rows": len(ch_rows),
            "only_in_postgres": len(pg_rows - ch_rows),
            "only_in_clickhouse": len(ch_rows - pg_rows),
        },
    )


ALL_CHECKS = [
    raw_row_count_as_requested,
    raw_equals_cleaned_plus_rejected,
    cleaned_rows_valid,
    rejected_share_below_threshold,
    aggregates_match_cleaned_totals,
    clickhouse_snapshot_matches_postgres,
]
CHECK_NAMES = tuple(spec.name for check in ALL_CHECKS for spec in check.check_specs)  # for the CLI's lines
