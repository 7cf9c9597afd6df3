"""The driver side of a write: staging tables, the checks, and the swap, all in one transaction."""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sales_assets.contract import PgTable
from sales_assets.pg_transfer.errors import RefusedByPostgres, refusal, refusal_in_task
from sales_assets.pg_transfer.feed import RESULT_SCHEMA, CopyTarget, copy_partition_fn

_STAGE_PREFIX = "_stage_"


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


def replace_tables(frame: DataFrame, dsn: str, tables: Sequence[PgTable], tally: Sequence[str] = ()) -> LoadStats:
    """Replaces every table of `tables` in one pass over `frame` and one transaction.

    `frame` has one struct column per table, named after it, holding that table's columns; a row
    goes to each table whose struct is set on it (e.g. kept lines to one, rejected to another).
    `tally` names columns whose value counts come back with the load, so no second pass is needed
    to count them. Readers see the old tables until all new ones are complete and keyed; a failure,
    or staged rows that do not add up to what the tasks reported, leaves the old tables untouched."""
    lap, tally = _Laps(), tuple(tally)
    if missing := [name for name in (*(t.name for t in tables), *tally) if name not in frame.columns]:
        raise ValueError(f"frame has no column(s) {', '.join(missing)} to route or tally")
    stages = {t.name: f"{_STAGE_PREFIX}{t.name}_{uuid.uuid4().hex[:8]}" for t in tables}
    with psycopg.connect(dsn, autocommit=True) as conn, _locked(conn, tables):
        lap("lock")
        try:
            for table in tables:
                _prepare_stage(conn, table, stages[table.name])
            lap("prepare")
            targets = [CopyTarget(t.name, t.schema, stages[t.name], t.arrow_schema) for t in tables]
            rows, tallies = _copy(frame, dsn, targets, tally)
            lap("copy")
            for table in tables:
                _check_staged_rows(conn, table, stages[table.name], rows[table.name])
            lap("count")
            for table in tables:
                _add_keys(conn, table, stages[table.name])
            lap("keys")
            for table in tables:  # before the swap: readers never see the new table without statistics
                conn.execute(sql.SQL("analyze {}").format(sql.Identifier(table.schema, stages[table.name])))
            lap("analyze")
            with conn.transaction():
                for table in tables:
                    _swap_in(conn, table, stages[table.name])
            lap("swap")
        except BaseException:
            for table in tables:
                conn.execute(
                    sql.SQL("drop table if exists {}").format(sql.Identifier(table.schema, stages[table.name]))
                )
            raise
    return LoadStats(rows=rows, tallies=tallies, seconds=time.perf_counter() - lap.started, phases=lap.phases)


def replace_table(df: DataFrame, dsn: str, table: PgTable) -> LoadStats:
    """Replaces `table` with the rows of `df`, atomically (see `replace_tables`)."""
    columns = [F.col(c.name).cast(c.spark_type).alias(c.name) for c in table.columns]
    return replace_tables(df.select(F.struct(*columns).alias(table.name)), dsn, [table])


def create_table_sql(table: PgTable, name: str | None = None) -> sql.Composed:
    """`create table` for `table`'s columns, under its own name or another (a staging table)."""
    columns = [
        sql.SQL("{} {}{}").format(
            sql.Identifier(c.name), sql.SQL(c.pg_type), sql.SQL("" if c.nullable else " not null")
        )
        for c in table.columns
    ]
    return sql.SQL("create table {} ({})").format(
        sql.Identifier(table.schema, name or table.name), sql.SQL(", ").join(columns)
    )


@contextmanager
def _locked(conn: psycopg.Connection, tables: Sequence[PgTable]) -> Iterator[None]:
    """One load of a table at a time, across processes: a session advisory lock per table, taken
    in name order so that two loads of overlapping tables cannot deadlock."""
    names = sorted(t.qualified for t in tables)
    for name in names:
        conn.execute("select pg_advisory_lock(hashtext(%s))", (name,))
    try:
        yield
    finally:
        for name in reversed(names):
            conn.execute("select pg_advisory_unlock(hashtext(%s))", (name,))


def _prepare_stage(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    conn.execute(sql.SQL("create schema if not exists {}").format(sql.Identifier(table.schema)))
    for (leftover,) in conn.execute(  # a crashed run's
        "select tablename from pg_tables where schemaname = %s and tablename like %s",
        (table.schema, f"\\_stage\\_{table.name}\\_%"),
    ).fetchall():
        conn.execute(sql.SQL("drop table if exists {}").format(sql.Identifier(table.schema, leftover)))
    conn.execute(create_table_sql(table, stage))


def _copy(
    frame: DataFrame, dsn: str, targets: list[CopyTarget], tally: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Runs the tasks' COPYs; returns rows per table and the tallies, summed from a handful of
    counts per task (a groupBy would cost a shuffle stage)."""
    copy = copy_partition_fn(dsn, targets, tally)
    try:
        written = frame.select(*(t.column for t in targets), *tally).mapInArrow(copy, RESULT_SCHEMA).collect()
    except Exception as exc:
        if refused := refusal_in_task(exc):
            raise refused from exc
        raise
    rows = {t.column: 0 for t in targets}
    tallies: dict[str, collections.Counter] = {name: collections.Counter() for name in tally}
    for r in written:
        if r["kind"] == "rows":
            rows[r["name"]] += r["n"]
        else:
            tallies[r["name"]][r["value"]] += r["n"]
    return rows, {name: dict(counts) for name, counts in tallies.items()}


def _check_staged_rows(conn: psycopg.Connection, table: PgTable, stage: str, reported: int) -> None:
    # Only the attempts Spark counted as successful report rows; a retried task (on a cluster)
    # whose first attempt had committed would show up here as extra rows.
    staged = conn.execute(sql.SQL("select count(*) from {}").format(sql.Identifier(table.schema, stage))).fetchone()[0]
    if staged != reported:
        raise RuntimeError(
            f"{table.qualified}: the staging table holds {staged:,} rows but the successful tasks wrote "
            f"{reported:,} (a retried task's rows were committed twice); nothing was replaced"
        )


def _add_keys(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    """Keys added after the bulk load (building an index once is faster than per row)."""
    target = sql.Identifier(table.schema, stage)
    statements = []
    if table.primary_key:
        statements.append(
            sql.SQL("alter table {} add primary key ({})").format(
                target, sql.SQL(", ").join(map(sql.Identifier, table.primary_key))
            )
        )
    if table.unique_key:
        statements.append(
            sql.SQL("alter table {} add unique nulls not distinct ({})").format(
                target, sql.SQL(", ").join(map(sql.Identifier, table.unique_key))
            )
        )
    for statement in statements:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            if refused := refusal(exc, table.qualified):  # e.g. a key the rows repeat
                raise RefusedByPostgres(refused) from exc
            raise


def _swap_in(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    """Inside the caller's transaction: the staged table becomes `table`, with the grants the old
    one had (a reporting role keeps its SELECT across loads), and its constraints (the key, and
    NOT NULL on PostgreSQL 18+) are renamed from the staging name to the table's."""
    _carry_grants(conn, table, stage)
    target = sql.Identifier(table.schema, table.name)
    conn.execute(sql.SQL("drop table if exists {}").format(target))
    conn.execute(
        sql.SQL("alter table {} rename to {}").format(sql.Identifier(table.schema, stage), sql.Identifier(table.name))
    )
    for (name,) in conn.execute(
        "select conname from pg_constraint where conrelid = %s::regclass", (table.qualified,)
    ).fetchall():
        if name.startswith(stage):
            conn.execute(
                sql.SQL("alter table {} rename constraint {} to {}").format(
                    target, sql.Identifier(name), sql.Identifier(table.name + name[len(stage) :])
                )
            )


def _carry_grants(conn: psycopg.Connection, table: PgTable, stage: str) -> None:
    """Grants others hold on the current `table`, given on the staged one (the owner's own
    privileges come with owning it)."""
    grants = conn.execute(
        "select r.rolname, a.privilege_type, a.is_grantable "
        "from pg_class c cross join lateral aclexplode(c.relacl) a left join pg_roles r on r.oid = a.grantee "
        "where c.oid = to_regclass(%s) and a.grantee <> c.relowner",
        (table.qualified,),
    ).fetchall()
    for role, privilege, grantable in grants:
        conn.execute(
            sql.SQL("grant {} on {} to {}{}").format(
                sql.SQL(privilege),
                sql.Identifier(table.schema, stage),
                sql.Identifier(role) if role else sql.SQL("public"),  # grantee 0 is PUBLIC
                sql.SQL(" with grant option" if grantable else ""),
            )
        )
