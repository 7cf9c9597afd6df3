"""Moving data between Spark and PostgreSQL without the driver in the data path.

Writes: every Spark task streams its partition as Arrow batches into binary COPYs (ADBC's
`adbc_ingest`), one per target table, into staging tables; the driver checks the staged row counts
and swaps all staging tables in, in one transaction. Reads: every task runs one range query on the
primary key and returns Arrow batches. No JDBC jar, no row ever collected to the driver, and the
same code runs on a Spark cluster.
"""

from __future__ import annotations

import collections
import queue
import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
from psycopg import sql as pgsql
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.tables import PgTable, checked_identifier


# SQLSTATE classes in which PostgreSQL refuses the data itself (22 data exception, 23 integrity
# violation): the same rows fail the same way on every try.
_REFUSED_CLASSES = ("22", "23")
# how a task words such an error: Spark hands the driver the worker's traceback as text only
_REFUSED_MARK = "PostgreSQL refused rows of "
_REFUSED = re.compile(re.escape(_REFUSED_MARK) + r"\S+ \(SQLSTATE \w{5}\): [^\n]*")


class RefusedByPostgres(ValueError):
    """PostgreSQL refused rows of a load (a data exception or an integrity violation): an error in
    the data, which no retry can fix. The previous tables stay."""


def _refusal(exc: BaseException, table: str) -> str | None:
    """One line naming the table, the SQLSTATE and PostgreSQL's message (with its DETAIL and
    CONTEXT: the column, the COPY line), when `exc` from psycopg or ADBC is PostgreSQL refusing the
    data; None for any other error."""
    state = str(getattr(exc, "sqlstate", None) or "")
    if state[:2] not in _REFUSED_CLASSES:
        return None
    message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{_REFUSED_MARK}{table} (SQLSTATE {state}): {message}"


@dataclass(frozen=True)
class LoadStats:
    """What a load wrote: rows per table, value counts of the tallied columns, seconds in all and
    per phase: lock (waiting for another load of the tables), prepare, copy (the tasks: computing
    the frame, the Arrow hop, the COPYs), count (staged rows checked), keys, analyze, swap."""
    rows: dict[str, int]
    tallies: dict[str, dict[str, int]]
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


class _Laps:
    """Seconds per phase, each timed from the end of the one before."""

    def __init__(self):
        self.started = self._last = time.perf_counter()
        self.phases: dict[str, float] = {}

    def __call__(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = now - self._last
        self._last = now


_ABORT = object()


class _CopyFeed:
    """One table's binary COPY (ADBC `adbc_ingest`) in its own thread, fed batch by batch, so a
    partition streams into several tables at once without buffering any of them. The connection
    opens with the first batch: a table no row of the partition goes to costs nothing."""

    def __init__(self, dsn: str, table: str, schema_name: str, stage: str, schema: pa.Schema):
        self._dsn, self._table, self._schema_name, self._stage, self.schema = dsn, table, schema_name, stage, schema
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.rows = 0

    def _batches(self):
        while (item := self._queue.get()) is not None:
            if item is _ABORT:  # fail the COPY, so its transaction rolls back and the connection closes
                raise RuntimeError("partition failed upstream")
            yield item

    def _copy(self) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            reader = pa.RecordBatchReader.from_batches(self.schema, self._batches())
            with adbc.connect(self._dsn) as conn:
                with conn.cursor() as cur:
                    cur.adbc_ingest(self._stage, reader, mode="append", db_schema_name=self._schema_name)
                conn.commit()
        except BaseException as exc:  # raised in the feeding thread at its next put or close
            try:
                refusal = _refusal(exc, self._table)
            except Exception:  # wording it must never cost the error itself
                refusal = None
            if refusal:
                self._error = RuntimeError(refusal)
                self._error.__cause__ = exc
            else:
                self._error = exc

    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def put(self, batch: pa.RecordBatch) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._copy, name=f"copy {self._stage}", daemon=True)
            self._thread.start()
        self.rows += batch.num_rows
        self._put(batch)

    def close(self) -> None:
        """Ends the COPY and waits for its commit; raises what the COPY raised."""
        if self._thread is None:
            return
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        if self._thread is None or self._error is not None:
            return
        try:
            self._put(_ABORT)
        except BaseException:  # the COPY failed on its own meanwhile: nothing left to stop
            pass
        self._thread.join()


_RESULT_SCHEMA = "kind string, name string, value string, n long"


def _copy_partition_fn(dsn: str, targets: list[tuple[str, str, str, pa.Schema]], tally: tuple[str, ...]):
    """Per partition: each row goes to the tables whose struct column is set on it."""

    def copy_partition(batches):
        import pyarrow.compute as pc

        feeds = {column: _CopyFeed(dsn, f"{schema_name}.{column}", schema_name, stage, schema)
                 for column, schema_name, stage, schema in targets}
        counts: collections.Counter = collections.Counter()
        try:
            for batch in batches:
                for column, feed in feeds.items():
                    routed = batch.column(column)
                    if routed.null_count == len(routed):
                        continue
                    if routed.null_count:
                        routed = routed.filter(routed.is_valid())
                    feed.put(pa.RecordBatch.from_struct_array(routed).cast(feed.schema))
                for name in tally:
                    for entry in pc.value_counts(batch.column(name).cast(pa.string())).to_pylist():
                        counts[(name, entry["values"])] += entry["counts"]
            for feed in feeds.values():
                feed.close()
        except BaseException:
            for feed in feeds.values():
                feed.abort()
            raise
        results = [("rows", column, None, feed.rows) for column, feed in feeds.items()]
        results += [("tally", name, value, n) for (name, value), n in counts.items()]
        yield pa.RecordBatch.from_pylist(
            [dict(zip(("kind", "name", "value", "n"), r)) for r in results],
            schema=pa.schema([("kind", pa.string()), ("name", pa.string()), ("value", pa.string()), ("n", pa.int64())]),
        )

    return copy_partition


def replace_tables(frame: DataFrame, dsn: str, tables: Sequence[PgTable], tally: Sequence[str] = ()) -> LoadStats:
    """Replaces every table of `tables` in one pass over `frame` and one transaction.

    `frame` has one struct column per table, named after it, holding that table's columns; a row
    goes to each table whose struct is set on it (e.g. kept lines to one, rejected to another).
    `tally` names columns whose value counts come back with the load, so no second pass is needed
    to count them. Readers see the old tables until all new ones are complete and keyed; a failure,
    or staged rows that do not add up to what the tasks reported, leaves the old tables untouched."""
    lap = _Laps()
    tally = tuple(tally)
    if missing := [name for name in (*(t.name for t in tables), *tally) if name not in frame.columns]:
        raise ValueError(f"frame has no column(s) {', '.join(missing)} to route or tally")
    stages = {t.name: checked_identifier(f"_stage_{t.name}_{uuid.uuid4().hex[:8]}") for t in tables}
    locked = sorted(tables, key=lambda t: t.qualified)  # always the same order: concurrent loads cannot deadlock
    with psycopg.connect(dsn, autocommit=True) as conn:
        for table in locked:  # one load of a table at a time
            conn.execute("select pg_advisory_lock(hashtext(%s))", (table.qualified,))
        lap("lock")
        try:
            for table in tables:
                conn.execute(f"create schema if not exists {table.schema}")
                _drop_leftover_stages(conn, table)  # a crashed run's
                conn.execute(table.create_sql(stages[table.name]))
            lap("prepare")
            try:
                copy = _copy_partition_fn(
                    dsn, [(t.name, t.schema, stages[t.name], t.arrow_schema) for t in tables], tally)
                # a handful of counts per task, summed here: a groupBy would cost a shuffle stage
                try:
                    written = frame.select(*(t.name for t in tables), *tally).mapInArrow(copy, _RESULT_SCHEMA).collect()
                except Exception as exc:
                    if refusal := _REFUSED.search(str(exc)):
                        raise RefusedByPostgres(refusal[0]) from exc
                    raise
                rows = {t.name: 0 for t in tables}
                tallies: dict[str, collections.Counter] = {name: collections.Counter() for name in tally}
                for r in written:
                    if r["kind"] == "rows":
                        rows[r["name"]] += r["n"]
                    else:
                        tallies[r["name"]][r["value"]] += r["n"]
                lap("copy")
                for table in tables:
                    # Only the attempts Spark counted as successful report rows; a retried task (on a
                    # cluster) whose first attempt had committed would show up here as extra rows.
                    staged = conn.execute(f"select count(*) from {table.schema}.{stages[table.name]}").fetchone()[0]
                    if staged != rows[table.name]:
                        raise RuntimeError(
                            f"{table.qualified}: the staging table holds {staged:,} rows but the successful "
                            f"tasks wrote {rows[table.name]:,} (a retried task's rows were committed twice); "
                            "nothing was replaced")
                lap("count")
                for table in tables:
                    for stmt in table.key_sql(stages[table.name]):
                        try:
                            conn.execute(stmt)
                        except psycopg.Error as exc:
                            if refusal := _refusal(exc, table.qualified):  # e.g. a key the rows repeat
                                raise RefusedByPostgres(refusal) from exc
                            raise
                lap("keys")
                for table in tables:  # before the swap: readers never see the new table without statistics
                    conn.execute(f"analyze {table.schema}.{stages[table.name]}")
                lap("analyze")
                with conn.transaction():
                    for table in tables:
                        _swap_in(conn, table, stages[table.name])
                lap("swap")
            except BaseException:
                for table in tables:
                    conn.execute(f"drop table if exists {table.schema}.{stages[table.name]}")
                raise
        finally:
            for table in reversed(locked):
                conn.execute("select pg_advisory_unlock(hashtext(%s))", (table.qualified,))
    return LoadStats(rows=rows, tallies={name: dict(counts) for name, counts in tallies.items()},
                     seconds=time.perf_counter() - lap.started, phases=lap.phases)


def replace_table(df: DataFrame, dsn: str, table: PgTable) -> LoadStats:
    """Replaces `table` with the rows of `df`, atomically (see `replace_tables`)."""
    columns = [F.col(c.name).cast(c.spark_type).alias(c.name) for c in table.columns]
    return replace_tables(df.select(F.struct(*columns).alias(table.name)), dsn, [table])


def _drop_leftover_stages(conn: psycopg.Connection, table: PgTable) -> None:
    for (leftover,) in conn.execute(
        "select tablename from pg_tables where schemaname = %s and tablename like %s",
        (table.schema, f"\\_stage\\_{table.name}\\_%"),
    ).fetchall():
        conn.execute(f"drop table if exists {table.schema}.{checked_identifier(leftover)}")


def _swap_in(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    """Inside the caller's transaction: the staged table becomes `table`, with the grants the old
    one had (a reporting role keeps its SELECT across loads), and its constraints (the key, and
    NOT NULL on PostgreSQL 18+) are renamed from the staging name to the table's."""
    _carry_grants(conn, table, stage)
    conn.execute(f"drop table if exists {table.qualified}")
    conn.execute(f"alter table {table.schema}.{stage} rename to {table.name}")
    for (name,) in conn.execute("select conname from pg_constraint where conrelid = %s::regclass",
                                (table.qualified,)).fetchall():
        if name.startswith(stage):
            conn.execute(f"alter table {table.qualified} rename constraint {checked_identifier(name)} "
                         f"to {checked_identifier(table.name + name[len(stage):])}")


def _carry_grants(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    """Grants others hold on the current `table`, given on the staged one (the owner's own
    privileges come with owning it)."""
    grants = conn.execute(
        "select r.rolname, a.privilege_type, a.is_grantable "
        "from pg_class c cross join lateral aclexplode(c.relacl) a left join pg_roles r on r.oid = a.grantee "
        "where c.oid = to_regclass(%s) and a.grantee <> c.relowner", (table.qualified,)).fetchall()
    for role, privilege, grantable in grants:
        conn.execute(pgsql.SQL("grant {} on {} to {}{}").format(
            pgsql.SQL(privilege), pgsql.Identifier(table.schema, stage),
            pgsql.Identifier(role) if role else pgsql.SQL("public"),  # grantee 0 is PUBLIC
            pgsql.SQL(" with grant option" if grantable else "")))


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

    schema = table.arrow_schema
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
    # The id makes every read's plan unique: two reads of a table that changed in between must
    # never look alike to Spark's cache manager, which would serve the rows cached by the first.
    select = f"{_select_sql(table)} /* read {uuid.uuid4().hex} */"
    schema = table.arrow_schema

    def read_ranges(batches):
        import adbc_driver_postgresql.dbapi as adbc

        for batch in batches:
            for low, high in (ranges[i] for i in batch.column("id").to_pylist()):
                sql = select if low is None else f"{select} where {key} >= {int(low)} and {key} < {int(high)}"
                with adbc.connect(dsn) as conn, conn.cursor() as cur:
                    cur.execute(sql)
                    yield from _typed_batches(cur.fetch_record_batch(), schema)

    # one task per range, by index (a shuffled list of bounds took ~1 s more of a cold run)
    bounds = spark.range(len(ranges), numPartitions=len(ranges))
    return bounds.mapInArrow(read_ranges, table.spark_schema)
