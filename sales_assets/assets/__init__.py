from sales_assets.assets.ingest import build_raw_sales
from sales_assets.assets.serving import build_clickhouse_sales_aggregates
from sales_assets.assets.warehouse import build_warehouse_assets

__all__ = ["build_clickhouse_sales_aggregates", "build_raw_sales", "build_warehouse_assets"]
