"""Reading raw sales from a CSV or Parquet file instead of generating them."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from sales_assets.transforms.clean import require_raw_columns
from sales_assets.transforms.schema import RAW_COLUMNS


class SourceFileError(ValueError):
    pass


def read_raw_file(spark: SparkSession, path: str) -> DataFrame:
    """The raw columns of a CSV (with a header) or Parquet file, every value as text; extra
    columns are ignored, missing ones are an error. Checked before anything is written."""
    scheme = urlsplit(path).scheme
    if scheme in ("", "file"):
        local = urlsplit(path).path if scheme else path
        if not os.path.exists(local):
            raise SourceFileError(f"source_path {path} does not exist")
        if not os.access(local, os.R_OK):
            raise SourceFileError(f"source_path {path} is not readable")
        if os.path.isfile(local) and os.path.getsize(local) == 0:
            raise SourceFileError(f"source_path {path} is empty")
    lower = path.lower().rstrip("/")
    try:
        if lower.endswith(".parquet") or lower.endswith(".pq"):
            frame = spark.read.parquet(path)
        elif lower.endswith(".csv") or lower.endswith(".csv.gz") or lower.endswith(".txt"):
            # every column as text: parsing is the cleaning step's job, with counted rejections
            frame = spark.read.csv(path, header=True, inferSchema=False, mode="PERMISSIVE",
                                   enforceSchema=False, multiLine=False)
        else:
            raise SourceFileError(f"source_path {path} must end in .csv, .csv.gz, .txt or .parquet")
    except SourceFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark's analysis errors come in many classes
        raise SourceFileError(f"cannot read source_path {path}: {str(exc).splitlines()[0]}") from None
    columns = [c.strip().lower() for c in frame.columns]
    try:
        require_raw_columns(columns)
    except ValueError as exc:
        raise SourceFileError(f"source_path {path}: {exc}") from None
    renamed = frame.toDF(*columns).select(*[F.col(c).cast("string").alias(c) for c in RAW_COLUMNS])
    if renamed.isEmpty():  # one tiny job: a file with a header and nothing else is a mistake
        raise SourceFileError(f"source_path {path} has no data lines")
    return renamed
