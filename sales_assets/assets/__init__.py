from sales_assets.assets.ingest import build_raw_sales
from sales_assets.assets.serving import clickhouse_sales_aggregates
from sales_assets.assets.warehouse import clean_sales, sales_aggregates

__all__ = ["build_raw_sales", "clean_sales", "clickhouse_sales_aggregates", "sales_aggregates"]
