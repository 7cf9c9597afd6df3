"""Writing several PostgreSQL tables in one pass (`replace_tables`), against the real server, in a
schema of its own: rows routed by struct column, value counts on the way, one swap for all."""

import threading
import time
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from pyspark.sql import functions as F

from sales_assets.contract import CLEANED_SALES, RAW_COLUMNS, REJECTED_SALES
from sales_assets.pg_transfer import RefusedByPostgres, errors, replace_tables, write
from sales_assets_tests.helpers import query

pytestmark = pytest.mark.integration
SCHEMA = "transfer_test"
KEPT, REJECTED = replace(CLEANED_SALES, schema=SCHEMA), replace(REJECTED_SALES, schema=SCHEMA)


def lines(spark, n: int, reject_every: int):
    """`n` lines; every `reject_every`-th is rejected, alternately as 'bad_1' and 'bad_0'."""
    frame = spark.range(1, n + 1, numPartitions=3).selectExpr(
        "id",
        f"CASE WHEN id % {reject_every} = 0 THEN concat('bad_', CAST(id DIV {reject_every} % 2 AS STRING)) END "
        "AS reason",
    )
    kept = F.struct(
        F.col("id").alias("sale_id"),
        F.floor(F.col("id") / 2).cast("bigint").alias("order_id"),
        F.lit(7).cast("bigint").alias("customer_id"),
        F.lit("Lamp").alias("product"),
        F.lit("Home").alias("category"),
        F.lit("Moscow").alias("region"),
        F.lit(2).alias("quantity"),
        F.lit(Decimal("4.50")).cast("decimal(12,2)").alias("unit_price"),
        F.lit(Decimal("9.00")).cast("decimal(12,2)").alias("amount"),
        F.lit(datetime(2026, 11, 1, 12)).cast("timestamp_ntz").alias("sale_ts"),
        F.lit(date(2026, 11, 2)).alias("import_date"),
    )
    rejected = F.struct(
        *[
            F.col("id").cast("string").alias(c) if c == "sale_id" else F.lit(None).cast("string").alias(c)
            for c in RAW_COLUMNS
        ],
        F.col("reason"),
        F.lit(date(2026, 11, 2)).alias("import_date"),
    )
    return frame.select(
        F.when(F.col("reason").isNull(), kept).alias(KEPT.name),
        F.when(F.col("reason").isNotNull(), rejected).alias(REJECTED.name),
        "reason",
    )


@pytest.fixture
def tables(pg):
    yield
    with pg.connect() as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")


def snapshot(pg):
    return (
        query(pg, f"select sale_id, order_id, amount from {KEPT.qualified} order by sale_id"),
        query(pg, f"select sale_id, reason from {REJECTED.qualified} order by sale_id::bigint"),
    )


def test_one_pass_fills_every_table_with_its_rows_and_counts_values(tables, spark, pg):
    load = replace_tables(lines(spark, 1000, reject_every=10), pg.dsn, [KEPT, REJECTED], tally=["reason"])
    assert load.rows == {KEPT.name: 900, REJECTED.name: 100}
    assert load.tallies == {"reason": {None: 900, "bad_0": 50, "bad_1": 50}}
    assert list(load.phases) == ["lock", "prepare", "copy", "count", "keys", "analyze", "swap"]
    assert load.phases["copy"] > 0 and sum(load.phases.values()) <= load.seconds
    kept, rejected = snapshot(pg)
    assert [r[0] for r in kept] == [i for i in range(1, 1001) if i % 10]
    assert kept[0] == (1, 0, Decimal("9.00"))
    assert rejected[:2] == [("10", "bad_1"), ("20", "bad_0")] and len(rejected) == 100
    # keyed like the contract says, and no staging table left behind
    constraints = [
        name
        for (name,) in query(pg, f"select conname from pg_constraint where conrelid = '{KEPT.qualified}'::regclass")
    ]
    assert "cleaned_sales_pkey" in constraints
    assert [name for name in constraints if not name.startswith("cleaned_sales_")] == []
    assert query(pg, f"select tablename from pg_tables where schemaname = '{SCHEMA}' order by 1") == [
        ("cleaned_sales",),
        ("rejected_sales",),
    ]


def test_a_new_table_has_its_statistics_before_readers_see_it(tables, spark, pg, monkeypatch):
    # ANALYZE runs on the staging table before the swap: a query planned right after the swap
    # never sees a million-row table without statistics.
    seen = {}
    original = write._swap_in

    def swap_in(conn, table, stage):
        seen[table.name] = conn.execute(
            "select count(*) from pg_stats where schemaname = %s and tablename = %s", (table.schema, stage)
        ).fetchone()[0]
        original(conn, table, stage)

    monkeypatch.setattr(write, "_swap_in", swap_in)
    replace_tables(lines(spark, 200, reject_every=10), pg.dsn, [KEPT, REJECTED])
    assert seen == {KEPT.name: len(KEPT.columns), REJECTED.name: len(REJECTED.columns)}


def test_a_table_no_row_goes_to_is_replaced_by_an_empty_one(tables, spark, pg):
    replace_tables(lines(spark, 100, reject_every=10), pg.dsn, [KEPT, REJECTED])
    load = replace_tables(lines(spark, 50, reject_every=1000), pg.dsn, [KEPT, REJECTED])
    assert load.rows == {KEPT.name: 50, REJECTED.name: 0}
    assert snapshot(pg)[1] == []


def test_when_one_copy_fails_every_table_keeps_its_previous_rows(tables, spark, pg, monkeypatch):
    replace_tables(lines(spark, 600, reject_every=5), pg.dsn, [KEPT, REJECTED])
    before = snapshot(pg)
    original = write.copy_partition_fn

    def rejected_copy_fails(dsn, targets, tally):
        # the COPY of the rejected lines goes to a table that does not exist: it fails mid-pass,
        # while the kept lines stream into their staging table
        broken = [replace(t, stage="no_such_table") if t.column == REJECTED.name else t for t in targets]
        return original(dsn, broken, tally)

    monkeypatch.setattr(write, "copy_partition_fn", rejected_copy_fails)
    with pytest.raises(Exception, match="no_such_table"):
        replace_tables(lines(spark, 900, reject_every=3), pg.dsn, [KEPT, REJECTED])
    assert snapshot(pg) == before  # both old: never new kept lines next to old rejected ones
    assert query(
        pg, f"select count(*) from pg_tables where schemaname = '{SCHEMA}' and tablename like '\\_stage%%'"
    ) == [(0,)]


def test_a_frame_without_the_route_column_is_a_clear_error(tables, spark, pg):
    frame = lines(spark, 10, reject_every=2).drop(REJECTED.name)
    with pytest.raises(ValueError, match="no column.*rejected_sales"):
        replace_tables(frame, pg.dsn, [KEPT, REJECTED])


@pytest.mark.parametrize(
    "spoil, sqlstate",
    [
        # a value PostgreSQL text cannot hold: refused by a task's COPY
        (lambda kept: kept.withField("product", F.lit("nul\x00byte")), "22021"),
        # a repeated key: refused when the driver adds the primary key
        (lambda kept: kept.withField("sale_id", kept.getField("sale_id") % 7), "23505"),
    ],
    ids=["copy", "primary_key"],
)
def test_rows_postgresql_refuses_are_a_data_error_and_the_previous_tables_stay(tables, spark, pg, spoil, sqlstate):
    # An error in the data fails the same way on every try: a ValueError the assets do not retry
    # (a transient fault stays a plain exception, retried), naming the tables and PostgreSQL's reason.
    replace_tables(lines(spark, 300, reject_every=5), pg.dsn, [KEPT, REJECTED])
    before = snapshot(pg)
    spoiled = lines(spark, 900, reject_every=3).withColumn(KEPT.name, spoil(F.col(KEPT.name)))
    with pytest.raises(RefusedByPostgres, match=rf"{KEPT.qualified}.*SQLSTATE {sqlstate}\)") as refused:
        replace_tables(spoiled, pg.dsn, [KEPT, REJECTED])
    assert isinstance(refused.value, ValueError)
    assert snapshot(pg) == before
    assert query(
        pg, f"select count(*) from pg_tables where schemaname = '{SCHEMA}' and tablename like '\\_stage%%'"
    ) == [(0,)]


class _PgError(Exception):
    """Stands in for a psycopg or ADBC error: both carry PostgreSQL's SQLSTATE as `.sqlstate`."""

    def __init__(self, sqlstate, message="ERROR:  something\nDETAIL:  more\n"):
        super().__init__(message)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate, refused",
    [
        ("22021", True),
        ("22003", True),
        ("23502", True),
        ("23505", True),  # the data: no retry helps
        ("57P01", False),
        ("40P01", False),
        ("08006", False),
        ("53100", False),
        ("42P01", False),
        (None, False),
    ],
)
def test_only_data_exceptions_and_integrity_violations_count_as_refused_rows(sqlstate, refused):
    # Whatever else goes wrong (the server shutting down, a deadlock, a lost connection, a full
    # disk, a missing table) stays an ordinary error, which the step's retry policy retries.
    refusal = errors.refusal(_PgError(sqlstate), "sales.t")
    assert (refusal is not None) == refused
    if refused:  # one line the driver can find in Spark's error text, with PostgreSQL's detail kept
        assert errors._REFUSED.search(f"Traceback ...\nRuntimeError: {refusal}\n")[0] == refusal
        assert refusal == f"PostgreSQL refused rows of sales.t (SQLSTATE {sqlstate}): ERROR:  something | DETAIL:  more"
        # an error without a message is still worded (wording it must never raise in a COPY thread)
        assert errors.refusal(_PgError(sqlstate, message=""), "sales.t").endswith(f"{sqlstate}): ")


def test_rows_committed_by_an_attempt_spark_discarded_fail_the_load(tables, spark, pg, monkeypatch):
    # On a cluster Spark retries a failed task; if its first attempt had already committed its COPY,
    # its rows are in the staging table twice. Simulated: each partition is copied (and committed)
    # once more than the result Spark sees. The load must fail, not double count.
    replace_tables(lines(spark, 300, reject_every=5), pg.dsn, [KEPT, REJECTED])
    before = snapshot(pg)
    original = write.copy_partition_fn

    def committed_twice(dsn, targets, tally):
        copy = original(dsn, targets, tally)

        def copy_partition(batches):
            batches = list(batches)
            list(copy(iter(batches)))  # the "failed" attempt: committed, its result lost
            yield from copy(iter(batches))

        return copy_partition

    monkeypatch.setattr(write, "copy_partition_fn", committed_twice)
    with pytest.raises(RuntimeError) as failed:
        replace_tables(lines(spark, 900, reject_every=3), pg.dsn, [KEPT, REJECTED])
    assert str(failed.value) == (  # the table and both counts: 600 kept lines, each partition copied twice
        "transfer_test.cleaned_sales: the staging table holds 1,200 rows but the successful tasks wrote 600 "
        "(a retried task's rows were committed twice); nothing was replaced"
    )
    assert snapshot(pg) == before
    assert query(
        pg, "select count(*) from pg_tables where schemaname = %s and tablename like '\\_stage%%'", (SCHEMA,)
    ) == [(0,)]


def test_a_load_of_a_table_waits_for_the_load_holding_its_advisory_lock(tables, spark, pg):
    replace_tables(lines(spark, 300, reject_every=5), pg.dsn, [KEPT, REJECTED])
    before = snapshot(pg)
    second = lines(spark, 900, reject_every=3)
    loaded: dict = {}
    with pg.connect(autocommit=True) as holder:  # a load of cleaned_sales in progress holds this lock
        holder.execute("select pg_advisory_lock(hashtext(%s))", (KEPT.qualified,))
        thread = threading.Thread(target=lambda: loaded.update(stats=replace_tables(second, pg.dsn, [KEPT, REJECTED])))
        thread.start()
        waiting = "select count(*) from pg_locks where locktype = 'advisory' and not granted"
        deadline = time.monotonic() + 60
        while query(pg, waiting) != [(1,)] and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.1)
        assert query(pg, waiting) == [(1,)], "the second load did not wait for the table's lock"
        time.sleep(2)  # it keeps waiting: nothing staged, nothing replaced
        assert thread.is_alive() and "stats" not in loaded
        assert query(pg, "select count(*) from pg_tables where tablename like '\\_stage%%'") == [(0,)]
        assert snapshot(pg) == before
        holder.execute("select pg_advisory_unlock(hashtext(%s))", (KEPT.qualified,))
    thread.join(timeout=120)
    assert loaded["stats"].rows == {KEPT.name: 600, REJECTED.name: 300}
    assert loaded["stats"].phases["lock"] >= 2


def test_spark_python_workers_load_the_transfer_code_without_dagster():
    """Every Python worker imports this module to run a COPY or a range read; Dagster would add
    ~1.3 s of CPU to each of them (measured with `python -X importtime`)."""
    import subprocess
    import sys

    probe = (
        "import sys, sales_assets.pg_transfer; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_grants_on_a_table_survive_its_replacement(spark, pg, tables):
    reader = "transfer_test_reader"
    with pg.connect() as conn:
        conn.execute(f"drop role if exists {reader}")
        conn.execute(f"create role {reader} nologin")
    try:
        replace_tables(lines(spark, 30, reject_every=10), pg.dsn, [KEPT, REJECTED])
        with pg.connect() as conn:
            conn.execute(f"grant select on {KEPT.qualified} to {reader} with grant option")
            conn.execute(f"grant select, insert on {REJECTED.qualified} to public")
        replace_tables(lines(spark, 40, reject_every=10), pg.dsn, [KEPT, REJECTED])
        privileges = query(
            pg,
            "select has_table_privilege(%s, %s, 'select with grant option'), "
            "has_table_privilege(%s, %s, 'insert'), "
            "has_table_privilege('public', %s, 'select'), has_table_privilege('public', %s, 'insert')",
            (reader, KEPT.qualified, reader, KEPT.qualified, REJECTED.qualified, REJECTED.qualified),
        )
        assert privileges == [(True, False, True, True)]
        assert query(pg, f"select count(*) from {KEPT.qualified}") == [(36,)]  # the new rows
    finally:
        with pg.connect() as conn:
            conn.execute(f"drop schema if exists {SCHEMA} cascade")
            conn.execute(f"drop role if exists {reader}")


def test_a_view_on_a_loaded_table_fails_the_load_by_name_and_keeps_the_old_tables(spark, pg, tables):
    replace_tables(lines(spark, 30, reject_every=10), pg.dsn, [KEPT, REJECTED])
    before = snapshot(pg)
    with pg.connect() as conn:
        conn.execute(f"create view {SCHEMA}.kept_amounts as select sale_id, amount from {KEPT.qualified}")
    with pytest.raises(Exception, match="kept_amounts"):
        replace_tables(lines(spark, 40, reject_every=10), pg.dsn, [KEPT, REJECTED])
    assert snapshot(pg) == before
    assert query(
        pg, "select count(*) from pg_tables where schemaname = %s and tablename like '\\_stage%%'", (SCHEMA,)
    ) == [(0,)]
