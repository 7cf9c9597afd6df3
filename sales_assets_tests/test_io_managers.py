"""The PostgreSQL I/O manager's reads, against the real server, in a schema of their own."""

from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

import pytest
from dagster import AssetKey, PythonObjectDagsterType, build_input_context
from pyspark.sql import DataFrame

import sales_assets.io_managers.postgres as pg_io
from sales_assets.contract import CLEANED_SALES
from sales_assets.pg_transfer import replace_table

pytestmark = pytest.mark.integration
TEST_TABLE = replace(CLEANED_SALES, schema="io_manager_test")
ROWS = [
    (
        i,
        100 + i // 2,
        7,
        "Lamp",
        "Home",
        "Moscow",
        1 + i % 3,
        Decimal("9.99"),
        Decimal("9.99") * (1 + i % 3),
        datetime(2026, 11, 1 + i % 28, 12),
        date(2026, 11, 2 + i % 28),
    )
    for i in range(1, 41)
]


@pytest.fixture(scope="module")
def io_manager(spark, spark_resource, pg):
    replace_table(spark.createDataFrame(ROWS, CLEANED_SALES.spark_schema), pg.dsn, TEST_TABLE)
    yield pg_io.PostgresIOManager(postgres=pg, spark=spark_resource, read_partitions=3)
    with pg.connect() as conn:
        conn.execute(f"drop schema {TEST_TABLE.schema} cascade")


@pytest.fixture(autouse=True)
def reads_the_test_table(monkeypatch):
    """`cleaned_sales` means the test's own table, for each test only: no other test sees it."""
    monkeypatch.setitem(pg_io.PG_TABLES, "cleaned_sales", TEST_TABLE)


def load(io_manager, **metadata) -> DataFrame:
    context = build_input_context(
        asset_key=AssetKey("cleaned_sales"),
        definition_metadata=metadata,
        dagster_type=PythonObjectDagsterType(DataFrame),
    )
    return io_manager.load_input(context)


def test_reads_the_whole_table_typed(io_manager):
    frame = load(io_manager)
    assert frame.columns == CLEANED_SALES.column_names
    assert sorted(tuple(r) for r in frame.collect()) == sorted(ROWS)


def test_columns_metadata_reads_only_those_columns(io_manager):
    frame = load(io_manager, columns=["amount", "order_id"])
    assert frame.columns == ["order_id", "amount"]  # table order
    assert sorted(tuple(r) for r in frame.collect()) == sorted((r[1], r[8]) for r in ROWS)


def test_an_unknown_column_is_a_clear_error(io_manager):
    with pytest.raises(KeyError, match="no column.*amout"):
        load(io_manager, columns=["amout"])


def test_a_read_after_the_table_changed_never_gets_rows_cached_by_an_earlier_read(io_manager, spark, pg):
    """Two reads of an unchanged key range used to build the same Spark plan, so caching the
    first made the second return the old rows (found by a run reading aggregates of a re-load)."""
    before = load(io_manager).cache()
    try:
        assert before.count() == len(ROWS)
        with pg.connect() as conn:
            conn.execute(f"update {TEST_TABLE.qualified} set quantity = quantity + 1 where sale_id = 1")
        after = {r["sale_id"]: r["quantity"] for r in load(io_manager).collect()}
        assert after[1] == ROWS[0][6] + 1
    finally:
        before.unpersist()
        with pg.connect() as conn:
            conn.execute(f"update {TEST_TABLE.qualified} set quantity = quantity - 1 where sale_id = 1")


def test_parquet_row_count_reads_the_footers_of_every_data_file(spark, tmp_path):
    """Files Spark skips (_SUCCESS, .crc) are skipped; partition subdirectories are counted; a
    single file works as well as a directory; the figure equals Spark's own count."""
    from sales_assets.io_managers.parquet import parquet_row_count

    flat, nested = str(tmp_path / "flat"), str(tmp_path / "nested")
    frame = spark.range(0, 12_345, numPartitions=3).selectExpr("id", "id % 4 AS part")
    frame.write.parquet(flat)
    frame.write.partitionBy("part").parquet(nested)
    assert (tmp_path / "flat" / "_SUCCESS").exists() and list((tmp_path / "flat").glob(".*.crc"))
    assert parquet_row_count(spark, flat) == parquet_row_count(spark, nested) == 12_345
    assert parquet_row_count(spark, nested) == spark.read.parquet(nested).count()
    one_file = str(next((tmp_path / "flat").glob("part-*.parquet")))
    assert parquet_row_count(spark, one_file) == spark.read.parquet(one_file).count() > 0
