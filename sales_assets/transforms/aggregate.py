"""Sales metrics at three grains, computed from the base lines at each grain."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sales_assets.contract import MONEY_TOTAL, spark_type

AGG_MONEY = spark_type(MONEY_TOTAL)
# a fourth grain, never stored: all kept lines as one group (its `orders` counts distinct orders,
# which summing the region grain overcounts when an ingested order spans regions)
TOTAL_GRAIN = "total"
# the cleaned columns the metrics need
AGGREGATE_INPUT_COLUMNS: tuple[str, ...] = ("order_id", "product", "region", "quantity", "amount", "sale_ts")


def aggregate_sales(cleaned: DataFrame, with_total: bool = False) -> DataFrame:
    """One row per region, per product and per (region, product); with `with_total`, one more row
    of grain `total` over all lines, computed in the same pass.

    avg_check = round(revenue / orders, 2) with orders = distinct order_id of the group: the
    average check of the group's orders, never an average of per-line or per-group averages.

    How: the lines are shuffled once by order_id; then every line is counted once at each grain
    (three rows: its region, its product, both) and summed per (order, grain, group), with no
    further shuffle; after that one row is one distinct order of its group, so `orders` is a plain
    count. Faster than count(DISTINCT order_id) over GROUPING SETS (which aggregates twice on
    (group, order)) and than expanding to three rows before the shuffle (docs/performance.md).
    """
    # written as SQL expressions: as Column objects the plan costs a round trip per expression node
    no_key = "CAST(NULL AS STRING)"
    grains = (
        "array("
        f"named_struct('grain', 'region', 'region', region, 'product', {no_key}), "
        f"named_struct('grain', 'product', 'region', {no_key}, 'product', product), "
        "named_struct('grain', 'region_product', 'region', region, 'product', product)"
        + (f", named_struct('grain', '{TOTAL_GRAIN}', 'region', {no_key}, 'product', {no_key})" if with_total else "")
        + ")"
    )
    by_order = cleaned.select(*AGGREGATE_INPUT_COLUMNS).repartition("order_id")
    # the expanded rows keep the lines' partitioning: grouping by (order_id, ...) shuffles nothing
    lines = by_order.selectExpr("order_id", "quantity", "amount", "sale_ts", f"inline({grains})")
    per_order = lines.groupBy("order_id", "grain", "region", "product").agg(
        *_exprs(
            "count(1) AS sales",
            "sum(quantity) AS units",
            "sum(amount) AS revenue",
            "min(sale_ts) AS first_ts",
            "max(sale_ts) AS last_ts",
        )
    )
    groups = per_order.groupBy("grain", "region", "product").agg(
        *_exprs(
            "count(1) AS orders",
            "sum(sales) AS sales",
            "CAST(sum(units) AS BIGINT) AS units",
            f"CAST(sum(revenue) AS {AGG_MONEY}) AS revenue",
            "min(first_ts) AS first_ts",
            "max(last_ts) AS last_ts",
        )
    )
    return groups.selectExpr(
        "grain",
        "region",
        "product",
        "orders",
        "sales",
        "units",
        "revenue",
        f"CAST(round(revenue / orders, 2) AS {AGG_MONEY}) AS avg_check",
        "to_date(first_ts) AS first_sale",
        "to_date(last_ts) AS last_sale",
    )


def _exprs(*sql: str) -> list:
    return [F.expr(e) for e in sql]
