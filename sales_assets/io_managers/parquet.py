"""Stores Spark DataFrames as Parquet directories under a base path (local, HDFS or object store)."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pyarrow as pa
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext, ResourceDependency
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from sales_assets.policies import lost_spark_server_fails_at_once
from sales_assets.resources.run_lock import RunLockResource
from sales_assets.resources.spark import SparkResource
from sales_assets.transforms.ingest import is_transient, read_error_cause


class SparkParquetIOManager(ConfigurableIOManager):
    """Asset `x` <-> `{base_path}/x`. A write goes to a sibling directory first and is renamed
    into place, so a failed write never leaves a half-written dataset behind. The asset's
    `metadata={"parquet_options": {...}}` are passed to the Parquet writer."""

    base_path: str
    spark: ResourceDependency[SparkResource]
    # never called: requiring it makes every run that stores or reads through this hold the run lock
    # from its start to its end (Dagster sets it up before the first step; resources/run_lock.py)
    run_lock: ResourceDependency[RunLockResource]

    def _path(self, asset_key) -> str:
        return f"{self.base_path.rstrip('/')}/{'/'.join(asset_key.path)}"

    def handle_output(self, context: OutputContext, obj: DataFrame) -> None:
        path = self._path(context.asset_key)
        staging, previous = f"{path}.__staging", f"{path}.__previous"
        started = time.perf_counter()
        options = (context.definition_metadata or {}).get("parquet_options", {})
        written = Observation("written")  # counted by the write itself: no second job to count
        with lost_spark_server_fails_at_once(self.spark):
            counted = obj.observe(written, F.count(F.lit(1)).alias("rows"))
            with source_errors_fail_at_once(context, self.spark):
                counted.write.mode("overwrite").options(**options).parquet(staging)
            swap_into_place(self.spark.spark_session, staging, path, previous)
        seconds = time.perf_counter() - started
        rows = written.get["rows"]
        context.add_output_metadata(
            {
                "dagster/uri": path,
                "dagster/row_count": rows,
                "write_seconds": round(seconds, 3),
                "write_rows_per_s": round(rows / seconds) if seconds else 0,
            }
        )

    def load_input(self, context: InputContext) -> DataFrame:
        with lost_spark_server_fails_at_once(self.spark):
            return self.spark.spark_session.read.parquet(self._path(context.asset_key))


SOURCE_PATH = "source_path"  # output metadata: the frame is read from these files


@contextmanager
def source_errors_fail_at_once(context: OutputContext, spark: SparkResource) -> Iterator[None]:
    """A frame read from source files (its output metadata names them) that fails while written,
    on a server that still answers and not for a transient cause (a lost executor, memory, the
    network), fails for good: a damaged file stays damaged, retrying cannot help. The headline names
    the source and the failed task's own error."""
    try:
        yield
    except PySparkException as exc:
        source = context.output_metadata.get(SOURCE_PATH)
        if source is None or is_transient(exc) or not spark.answers():
            raise
        source = getattr(source, "value", source)
        raise Failure(
            f"cannot read the source {source} while storing {context.asset_key.to_user_string()}: "
            f"{read_error_cause(exc)}",
            allow_retries=False,
        ) from None


def _on_an_executor(spark: SparkSession, task) -> None:
    """Runs `task()` once in a Python worker of the Spark server: there the paths mean what they
    meant to the writer. (A Spark Connect client may be another machine, and has no JVM to ask.)"""

    def run(batches):
        for _ in batches:
            pass
        task()
        yield pa.RecordBatch.from_pydict({"done": [True]})

    spark.range(0, 1, numPartitions=1).mapInArrow(run, "done boolean").collect()


def swap_into_place(spark: SparkSession, staging: str, path: str, previous: str) -> None:
    """`staging` becomes `path` by renames (the old `path` goes aside first, then away), through
    Arrow's filesystems: local paths and the object stores and HDFS Arrow knows."""

    def swap() -> None:
        from pyarrow import fs

        filesystem, target = fs.FileSystem.from_uri(path)
        _, new = fs.FileSystem.from_uri(staging)
        _, old = fs.FileSystem.from_uri(previous)

        def exists(p: str) -> bool:
            return filesystem.get_file_info(p).type != fs.FileType.NotFound

        if exists(old):
            filesystem.delete_dir(old)
        if exists(target):
            filesystem.move(target, old)
        filesystem.move(new, target)
        if exists(old):
            filesystem.delete_dir(old)

    _on_an_executor(spark, swap)


def parquet_row_count(spark: SparkSession, path: str) -> int:
    """Rows of a Parquet file or directory. Spark answers a bare count from the files' footers
    (no column is read): two small jobs on the warm server."""
    return spark.read.parquet(path).count()
