"""Spark's default parallelism, read the Spark Connect way (a client has no SparkContext)."""

from pyspark.sql import SparkSession
from pyspark.sql import functions as F


def default_parallelism(spark: SparkSession) -> int:
    """`spark.default.parallelism` when the server sets it (the embedded one does); else what a
    range without `numPartitions` is split into, which is the same number (one tiny job)."""
    configured = spark.conf.get("spark.default.parallelism", None)
    if configured:
        return int(configured)
    partition = spark.range(0, 1 << 16).select(F.spark_partition_id().alias("p"))
    return partition.agg(F.max("p")).first()[0] + 1
