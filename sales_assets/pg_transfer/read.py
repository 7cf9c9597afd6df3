"""Reading tables as Arrow (small ones, on the driver) or as a Spark DataFrame (in the executors)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pyarrow as pa
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession

from sales_assets.contract import PgTable


def read_arrow(dsn: str, table: PgTable) -> pa.Table:
    """The whole (small) table as Arrow, typed as the contract says."""
    import adbc_driver_postgresql.dbapi as adbc

    schema = table.arrow_schema
    with adbc.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(_select(table).as_string())
        return pa.Table.from_batches(list(_typed_batches(cur.fetch_record_batch(), schema)), schema=schema)


def read_frame(spark: SparkSession, dsn: str, table: PgTable, partitions: int) -> DataFrame:
    """The table as a Spark DataFrame, read in `partitions` parallel range scans of its primary
    key (one scan when the table has no single integer key)."""
    # The comment makes every read's plan unique: two reads of a table that changed in between
    # must never look alike to Spark's cache manager, which would serve the rows cached by the first.
    select = sql.SQL("{} /* read {} */").format(_select(table), sql.SQL(uuid.uuid4().hex))
    queries = [select.as_string()]
    key = table.primary_key[0] if len(table.primary_key) == 1 else None
    if key and partitions > 1:
        with psycopg.connect(dsn) as conn:
            low, high = conn.execute(
                sql.SQL("select min({0}), max({0}) from {1}").format(
                    sql.Identifier(key), sql.Identifier(table.schema, table.name)
                )
            ).fetchone()
        if low is not None:
            step = (high - low) // partitions + 1
            in_range = sql.SQL("{} where {} >= {} and {} < {}")
            queries = [
                in_range.format(
                    select, sql.Identifier(key), low + i * step, sql.Identifier(key), low + (i + 1) * step
                ).as_string()
                for i in range(partitions)
            ]
    schema = table.arrow_schema

    def read_ranges(batches):
        import adbc_driver_postgresql.dbapi as adbc

        for batch in batches:
            for query in (queries[i] for i in batch.column("id").to_pylist()):
                with adbc.connect(dsn) as conn, conn.cursor() as cur:
                    cur.execute(query)
                    yield from _typed_batches(cur.fetch_record_batch(), schema)

    # one task per range, by index: no list of bounds to ship and shuffle
    bounds = spark.range(len(queries), numPartitions=len(queries))
    return bounds.mapInArrow(read_ranges, table.spark_schema)


def _select(table: PgTable) -> sql.Composed:
    # numeric arrives from ADBC as an opaque extension type: fetch it as text, cast in Arrow
    columns = [
        sql.SQL("{0}::text as {0}").format(sql.Identifier(c.name))
        if c.pg_type.startswith("numeric")
        else sql.Identifier(c.name)
        for c in table.columns
    ]
    return sql.SQL("select {} from {}").format(sql.SQL(", ").join(columns), sql.Identifier(table.schema, table.name))


def _typed_batches(reader, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    for batch in reader:
        yield pa.RecordBatch.from_arrays(
            [col.cast(field.type) for col, field in zip(batch.columns, schema, strict=True)], schema=schema
        )
