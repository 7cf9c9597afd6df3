from sales_assets.resources.clickhouse import ClickHouseResource
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.spark import SparkResource

__all__ = ["ClickHouseResource", "PostgresResource", "SparkResource"]
