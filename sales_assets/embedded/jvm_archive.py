"""A class-data-sharing archive (JDK AppCDS) of the classes a Spark Connect server loads.

A cold Spark JVM parses and verifies thousands of classes before it does any work; with the
archive the JVM maps them ready-made: seconds off every server start and its first jobs
(docs/performance.md). Built once per Python environment (`make` does it on install:
`python -m sales_assets jvm-archive`); a JVM that cannot use it (another JDK, other jars)
ignores it and starts the slow way, so it is an optimization only, never a requirement.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pyspark

ARCHIVE = Path(sys.prefix) / "share" / "sales_assets" / f"spark-{pyspark.__version__}.jsa"
_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"  # classes CDS cannot store are expected, not news


def java_options(archive: Path | None = None) -> str:
    """Driver JVM options that use the archive, or "" while there is none."""
    archive = archive or ARCHIVE
    return f"-XX:SharedArchiveFile={archive} -Xshare:auto {_QUIET}" if archive.is_file() else ""


def build(spark_config: dict[str, str], archive: Path | None = None) -> Path:
    """Records the classes a Spark Connect server loads while it serves a small but complete
    pipeline run (a JVM writes its archive as it exits), then moves the archive into place
    atomically. `spark_config` is the runs' own configuration, without an archive option: the
    classes a run loads are recorded."""
    from pyspark.sql import SparkSession

    from sales_assets.embedded.spark_connect import EmbeddedSparkConnect

    archive = archive or ARCHIVE
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f"{archive.name}.{os.getpid()}.partial")
    java = spark_config.get("spark.driver.extraJavaOptions", "")
    static = {k: v for k, v in spark_config.items() if not k.startswith("spark.sql.")}
    static["spark.driver.extraJavaOptions"] = f"{java} -XX:ArchiveClassesAtExit={partial} {_QUIET}"
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedSparkConnect(Path(tmp) / "server", static)
            spark = SparkSession.builder.remote(server.url()).create()
            try:
                _training_run(spark, Path(tmp))
            finally:
                spark.stop()
                server.stop(grace_s=300)  # the JVM writes the archive on its way out
        if not partial.is_file():
            raise RuntimeError(f"the JVM wrote no class archive at {partial}")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive


def _training_run(spark, tmp: Path) -> None:
    """Exercises what a real run loads: generation, Parquet, cleaning with its shuffle,
    aggregation, and the Arrow hop to Python workers."""
    from datetime import date

    import pyarrow as pa
    from pyspark.sql import functions as F

    from sales_assets.transforms.aggregate import aggregate_sales
    from sales_assets.transforms.clean import classify_sales, cleaned_lines, routed_lines
    from sales_assets.transforms.generate import generate_raw_sales

    def count_batches(batches):
        yield pa.RecordBatch.from_pydict({"rows": [sum(b.num_rows for b in batches)]})

    generate_raw_sales(
        spark, rows=2000, seed=1, first_date=date(2025, 12, 1), last_date=date(2026, 1, 1)
    ).write.parquet(f"{tmp}/raw")
    classified = classify_sales(spark.read.parquet(f"{tmp}/raw")).cache()
    routed_lines(classified).mapInArrow(count_batches, "rows long").agg(F.sum("rows")).collect()
    aggregate_sales(cleaned_lines(classified)).write.format("noop").mode("overwrite").save()
    classified.unpersist()
