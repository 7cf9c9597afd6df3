"""Moving data between Spark and PostgreSQL without the driver in the data path.

Writes: every Spark task streams its partition as Arrow batches into one binary COPY (ADBC's
`adbc_ingest`) into a staging table; the driver then swaps the staging table in, in one
transaction. Reads: every task runs one range query on the primary key and returns Arrow batches.
No JDBC jar, no row ever collected to the driver, and the same code runs on a Spark cluster.
"""

from __future__ import annotations

import itertools
import time
import uuid
from dataclasses import dataclass

import psycopg
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.tables import PgTable, checked_identifier


@dataclass(frozen=True)
class LoadStats:
    rows: int
    seconds: float


def _copy_schema(table: PgTable) -> pa.Schema:
    # nullability is the table's business (NOT NULL), Arrow batches from Spark are all nullable
    return pa.schema([pa.field(c.name, c.arrow_type) for c in table.columns])


def _copy_partition_fn(dsn: str, schema_name: str, stage: str, copy_schema: pa.Schema):
    def copy_partition(batches):
        import adbc_driver_postgresql.dbapi as adbc

        first = next(batches, None)
        if first is None:  # an empty partition needs no connection
            yield pa.RecordBatch.from_pydict({"rows": [0]})
            return
        counted = [0]

        def typed():
            for batch in itertools.chain([first], batches):
                counted[0] += batch.num_rows
                yield batch.cast(copy_schema)

        reader = pa.RecordBatchReader.from_batches(copy_schema, typed())
        with adbc.connect(dsn) as conn:
            with conn.cursor() as cur:
                cur.adbc_ingest(stage, reader, mode="append", db_schema_name=schema_name)
            conn.commit()
        yield pa.RecordBatch.from_pydict({"rows": [counted[0]]})

    return copy_partition


def replace_table(df: DataFrame, dsn: str, table: PgTable) -> LoadStats:
    """Replaces `table` with the rows of `df`, atomically: readers see the old table until the
    new one is complete, keyed and analyzed; a failure leaves the old table untouched."""
    started = time.perf_counter()
    stage = checked_identifier(f"_stage_{table.name}_{uuid.uuid4().hex[:8]}")
    staged = f"{table.schema}.{stage}"
    frame = df.select(*[F.col(c.name).cast(c.spark_type) for c in table.columns])
    with psycopg.connect(dsn, autocommit=True) as conn:
        # one load of a table at a time; a crashed run's staging tables are dropped here
        conn.execute("select pg_advisory_lock(hashtext(%s))", (table.qualified,))
        try:
            conn.execute(f"create schema if not exists {table.schema}")
            for (leftover,) in conn.execute(
                "select tablename from pg_tables where schemaname = %s and tablename like %s",
                (table.schema, f"\\_stage\\_{table.name}\\_%"),
            ).fetchall():
                conn.execute(f"drop table if exists {table.schema}.{checked_identifier(leftover)}")
            conn.execute(table.create_sql(stage))
            try:
                copy = _copy_partition_fn(dsn, table.schema, stage, _copy_schema(table))
                rows = frame.mapInArrow(copy, "rows long").agg(F.sum("rows")).first()[0] or 0
                for stmt in table.key_sql(stage):
                    conn.execute(stmt)
                with conn.transaction():
                    conn.execute(f"drop table if exists {table.qualified}")
                    conn.execute(f"alter table {staged} rename to {table.name}")
                    for suffix in ("pkey", "key"):
                        for (name,) in conn.execute(
                            "select conname from pg_constraint where conrelid = %s::regclass and conname like %s",
                            (table.qualified, f"{stage}%{suffix}"),
                        ).fetchall():
                            conn.execute(f"alter table {table.qualified} rename constraint "
                                         f"{checked_identifier(name)} to {table.name}_{suffix}")
            except BaseException:
                conn.execute(f"drop table if exists {staged}")
                raise
            conn.execute(f"analyze {table.qualified}")
        finally:
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (table.qualified,))
    return LoadStats(rows=int(rows), seconds=time.perf_counter() - started)


def _select_sql(table: PgTable) -> str:
    # numeric arrives from ADBC as an opaque extension type: fetch it as text, cast in Arrow
    cols = [f"{c.name}::text as {c.name}" if c.pg_type.startswith("numeric") else c.name
            for c in table.columns]
    return f"select {', '.join(cols)} from {table.qualified}"


def _typed_batches(reader, schema: pa.Schema):
    for batch in reader:
        yield pa.RecordBatch.from_arrays(
            [col.cast(field.type) for col, field in zip(batch.columns, schema)], schema=schema
        )


def read_arrow(dsn: str, table: PgTable) -> pa.Table:
    """The whole (small) table as Arrow, typed as the contract says."""
    import adbc_driver_postgresql.dbapi as adbc

    schema = _copy_schema(table)
    with adbc.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(_select_sql(table))
        return pa.Table.from_batches(list(_typed_batches(cur.fetch_record_batch(), schema)), schema=schema)


def read_frame(spark: SparkSession, dsn: str, table: PgTable, partitions: int) -> DataFrame:
    """The table as a Spark DataFrame, read in `partitions` parallel range scans of its primary
    key (one scan when the table has no single integer key)."""
    key = table.primary_key[0] if len(table.primary_key) == 1 else None
    ranges: list[tuple[int | None, int | None]] = [(None, None)]
    if key and partitions > 1:
        with psycopg.connect(dsn) as conn:
            low, high = conn.execute(f"select min({key}), max({key}) from {table.qualified}").fetchone()
        if low is not None:
            step = (high - low) // partitions + 1
            ranges = [(low + i * step, low + (i + 1) * step) for i in range(partitions)]
    select = _select_sql(table)
    schema = _copy_schema(table)

    def read_ranges(batches):
        import adbc_driver_postgresql.dbapi as adbc

        for batch in batches:
            for low, high in zip(batch.column("low").to_pylist(), batch.column("high").to_pylist()):
                sql = select if low is None else f"{select} where {key} >= {int(low)} and {key} < {int(high)}"
                with adbc.connect(dsn) as conn, conn.cursor() as cur:
                    cur.execute(sql)
                    yield from _typed_batches(cur.fetch_record_batch(), schema)

    bounds = spark.createDataFrame(ranges, "low long, high long").repartition(len(ranges))
    return bounds.mapInArrow(read_ranges, table.spark_schema)
