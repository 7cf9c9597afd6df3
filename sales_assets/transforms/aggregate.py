"""Sales metrics at three grains, computed from the base lines at each grain."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

AGGREGATE_COLUMNS: tuple[str, ...] = (
    "grain", "region", "product", "orders", "sales", "units", "revenue", "avg_check",
    "first_sale", "last_sale",
)
AGG_MONEY = "decimal(18,2)"


def aggregate_sales(cleaned: DataFrame) -> DataFrame:
    """One row per region, per product and per (region, product), in one pass (GROUPING SETS).

    avg_check = round(revenue / orders, 2) with orders = distinct order_id of the group: the
    average check of the group's orders, never an average of per-line or per-group averages.
    """
    grouped = cleaned.groupingSets([["region"], ["product"], ["region", "product"]], "region", "product")
    revenue = F.sum("amount").cast(AGG_MONEY)
    orders = F.count_distinct("order_id")
    aggregated = grouped.agg(
        F.grouping_id().alias("gid"),
        orders.alias("orders"),
        F.count(F.lit(1)).alias("sales"),
        F.sum("quantity").cast("long").alias("units"),
        revenue.alias("revenue"),
        F.round(revenue / orders, 2).cast(AGG_MONEY).alias("avg_check"),
        F.to_date(F.min("sale_ts")).alias("first_sale"),
        F.to_date(F.max("sale_ts")).alias("last_sale"),
    )
    # grouping_id bits: region is the high bit, product the low bit (1 = rolled up)
    grain = F.when(F.col("gid") == 1, "region").when(F.col("gid") == 2, "product").otherwise("region_product")
    return aggregated.withColumn("grain", grain).select(*AGGREGATE_COLUMNS)
