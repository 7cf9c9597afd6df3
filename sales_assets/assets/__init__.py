from sales_assets.assets.clickhouse import clickhouse_sales_aggregates
from sales_assets.assets.sales import clean_sales, raw_sales, sales_aggregates

ALL_ASSETS = [raw_sales, clean_sales, sales_aggregates, clickhouse_sales_aggregates]

__all__ = ["ALL_ASSETS", "clean_sales", "clickhouse_sales_aggregates", "raw_sales", "sales_aggregates"]
