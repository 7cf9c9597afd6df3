"""Moving data between Spark and PostgreSQL without the driver in the data path.

Writes (`write`): every Spark task streams its partition as Arrow batches into binary COPYs, one
per target table, into staging tables (`feed`); the driver checks the staged row counts and swaps
all staging tables in, in one transaction. Reads (`read`): every task runs one range query on the
primary key and returns Arrow batches. `errors` tells PostgreSQL refusing the data from a fault.
No JDBC jar, no row collected to the driver, the same code on a Spark cluster; no Dagster import,
as Spark's Python workers import this package.
"""

from sales_assets.pg_transfer.errors import RefusedByPostgres
from sales_assets.pg_transfer.read import read_arrow, read_frame
from sales_assets.pg_transfer.write import LoadStats, replace_table, replace_tables

__all__ = ["LoadStats", "RefusedByPostgres", "read_arrow", "read_frame", "replace_table", "replace_tables"]
