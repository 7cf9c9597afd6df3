from sales_assets.io_managers.parquet import SparkParquetIOManager
from sales_assets.io_managers.postgres import PostgresIOManager

__all__ = ["PostgresIOManager", "SparkParquetIOManager"]
