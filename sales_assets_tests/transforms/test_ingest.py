"""How a large CSV is read: split over every core unless a quoted field holds a line break."""

from __future__ import annotations

from contextlib import contextmanager

from pyspark.sql import functions as F

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.ingest import count_source_records, read_raw_file

LINE = "{i},{i},7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-01 10:00:00"


@contextmanager
def small_splits(spark):
    """Splits of 64 KiB, so a file of a few hundred KiB stands for a large one."""
    key = "spark.sql.files.maxPartitionBytes"
    before = spark.conf.get(key)
    spark.conf.set(key, str(64 * 1024))
    try:
        yield
    finally:
        spark.conf.set(key, before)


def partitions(frame) -> int:
    return frame.select(F.spark_partition_id().alias("p")).distinct().count()


def test_a_csv_without_quoted_line_breaks_is_read_on_every_core(spark, tmp_path):
    plain, quoted = tmp_path / "plain.csv", tmp_path / "quoted.csv"
    lines = [LINE.format(i=i) for i in range(1, 8001)]
    plain.write_text("\r\n".join([",".join(RAW_COLUMNS), *lines]) + "\n")  # CRLF, the last line LF
    quoted.write_text("\n".join([",".join(RAW_COLUMNS), '0,0,7,"Two\nLines",Tools,Kazan,1,2,2,2026-11-01', *lines]))
    with small_splits(spark):
        assert partitions(read_raw_file(spark, str(plain))) > 1
        assert partitions(read_raw_file(spark, str(quoted))) == 1  # one file, one Arrow task
        assert read_raw_file(spark, str(plain)).count() == count_source_records(spark, str(plain)) == 8000
        assert read_raw_file(spark, str(quoted)).count() == count_source_records(spark, str(quoted)) == 8001
