"""Reading raw sales from a CSV or Parquet file instead of generating them (docs/contract.md,
"Reading files")."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.clean import require_raw_columns

# RFC 4180: `"` quotes a field and `""` inside quotes is one `"`; a quoted field may hold commas and
# line breaks (so one raw line is one record, not one physical line); a backslash is an ordinary
# character. Spark's defaults differ (backslash escapes, one record per physical line). Every
# column is read as text: parsing is the cleaning step's job, with counted rejections.
CSV_OPTIONS = {
    "header": True,
    "inferSchema": False,
    "mode": "PERMISSIVE",
    "enforceSchema": False,
    "multiLine": True,
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
}
PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".csv.gz", ".txt")
BOM = "\ufeff"
# what a typed Parquet timestamp becomes: the text the `sale_ts` rule reads, offset included when
# the value is an instant
INSTANT_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSSXXX"
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"


class SourceFileError(ValueError):
    pass


def is_parquet(path: str) -> bool:
    return path.lower().rstrip("/").endswith(PARQUET_SUFFIXES)


def read_raw_file(spark: SparkSession, path: str) -> DataFrame:
    """The raw columns of a CSV (with a header) or Parquet file, every value as text; extra
    columns are ignored, missing ones are an error. Checked before anything is written."""
    _check_local_file(path)
    if is_parquet(path):
        frame = _read_parquet(spark, path)
    elif path.lower().rstrip("/").endswith(CSV_SUFFIXES):
        frame = _read_csv(spark, path)
    else:
        raise SourceFileError(f"source_path {path} must end in .csv, .csv.gz, .txt or .parquet")
    if frame.isEmpty():  # one tiny job: a file with a header and nothing else is a mistake
        raise SourceFileError(f"source_path {path} has no data lines")
    return frame


def count_source_records(spark: SparkSession, path: str) -> int:
    """Raw lines in the source file as the contract counts them: CSV records (a quoted line break
    does not start a new one), or Parquet rows."""
    if is_parquet(path):
        return spark.read.parquet(path).count()
    return spark.read.csv(path, **CSV_OPTIONS).count()


def _check_local_file(path: str) -> None:
    scheme = urlsplit(path).scheme
    if scheme not in ("", "file"):
        return
    local = urlsplit(path).path if scheme else path
    if not os.path.exists(local):
        raise SourceFileError(f"source_path {path} does not exist")
    if not os.access(local, os.R_OK):
        raise SourceFileError(f"source_path {path} is not readable")
    if os.path.isfile(local) and os.path.getsize(local) == 0:
        raise SourceFileError(f"source_path {path} is empty")


def _spark_error(path: str, exc: Exception) -> SourceFileError:
    return SourceFileError(f"cannot read source_path {path}: {str(exc).splitlines()[0]}")


def _read_csv(spark: SparkSession, path: str) -> DataFrame:
    try:
        _require_utf8(spark, path)
        header = spark.read.csv(path, **{**CSV_OPTIONS, "header": False}).first()
        frame = spark.read.csv(path, **CSV_OPTIONS)
    except SourceFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - Spark's analysis errors come in many classes
        raise _spark_error(path, exc) from None
    found = [str(v) if v is not None else "" for v in (header or [])]
    # Spark drops a UTF-8 byte order mark itself; the header we read raw may still carry it
    names = _checked_header(path, [found[0].lstrip(BOM)] + found[1:] if found else [])
    # Spark renames repeated header names, so the frame's columns are taken by position
    return frame.toDF(*names).select(*RAW_COLUMNS)


def _require_utf8(spark: SparkSession, path: str) -> None:
    """A file that is not valid UTF-8 fails, naming what was found: Spark's reader would turn the
    bytes into U+FFFD and carry on. Spark's text source keeps each line's bytes as they are."""
    bad = (
        spark.read.text(path)
        .filter("NOT is_valid_utf8(value)")
        .selectExpr("CAST(substr(value, 1, 40) AS BINARY) AS sample")
        .first()
    )
    if bad is None:
        return
    sample = bytes(bad["sample"])
    hint = ""
    if sample[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in sample:
        hint = "; it looks like UTF-16: save it as UTF-8"
    elif any(b >= 0x80 for b in sample):
        hint = "; it looks like a single-byte encoding (Latin-1, Windows-1252): save it as UTF-8"
    raise SourceFileError(f"source_path {path} is not valid UTF-8: found bytes {sample!r}{hint}")


def _checked_header(path: str, found: list[str]) -> list[str]:
    """The header's names, trimmed and lower-cased; an error when one appears twice or when the
    raw columns are not all there (saying what was found when none of them is)."""
    names = [n.strip().lower() for n in found]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise SourceFileError(
            f"source_path {path}: the header has column(s) {', '.join(repeated)} more than once "
            f"(names are case-insensitive); header found: {','.join(found)!r}"
        )
    if not set(RAW_COLUMNS) & set(names):
        raise SourceFileError(
            f"source_path {path} lacks column(s) {', '.join(RAW_COLUMNS)}: the header found is "
            f"{','.join(found)[:200]!r}; the file must be comma-separated UTF-8 with a header line"
        )
    try:
        require_raw_columns(names)
    except ValueError as exc:
        raise SourceFileError(f"source_path {path}: {exc}") from None
    # Spark needs distinct names: blanks and extra columns get positional ones, and are dropped
    return [n if n in RAW_COLUMNS else f"_extra_{i}" for i, n in enumerate(names)]


def _read_parquet(spark: SparkSession, path: str) -> DataFrame:
    nanos = _nanosecond_columns(path)
    if nanos:
        # Spark refuses TIMESTAMP(NANOS) unless told to read it as the long it is stored as
        spark.conf.set(NANOS_AS_LONG, "true")
    try:
        frame = spark.read.parquet(path)
        columns = [c.strip().lower() for c in frame.columns]
        _checked_header(path, columns)
        frame = frame.toDF(*columns)
        return frame.select(*[_as_text(frame.schema[c], nanos.get(c)).alias(c) for c in RAW_COLUMNS])
    except SourceFileError:
        raise
    except Exception as exc:  # noqa: BLE001
        message = str(exc).splitlines()[0]
        if "NANOS" in message:
            message += " (nanosecond timestamps could not be located in this file's schema)"
        raise SourceFileError(f"cannot read source_path {path}: {message}") from None


def _nanosecond_columns(path: str) -> dict[str, bool]:
    """Columns stored as nanosecond timestamps (pandas' default), with whether each is an instant
    (adjusted to UTC) or a wall time; read from the Parquet footer with pyarrow."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        schema = ds.dataset(path, format="parquet").schema
    except Exception:  # noqa: BLE001 - a path pyarrow cannot open: Spark will say what is wrong
        return {}
    return {
        f.name.strip().lower(): f.type.tz is not None
        for f in schema
        if pa.types.is_timestamp(f.type) and f.type.unit == "ns"
    }


def _as_text(field: T.StructField, nanos_instant: bool | None):
    """A typed Parquet column as the text the cleaning rules read."""
    column = F.col(field.name)
    if nanos_instant is not None:  # read as a long of nanoseconds
        # exact: as a double, a long of nanoseconds near 2026 is off by up to 256 ns, which moved
        # about 4 in 10 values to the neighbouring microsecond
        instant = F.timestamp_micros(F.floor(column.cast("decimal(20,0)") / 1000).cast("long"))
        if nanos_instant:
            return F.date_format(instant, INSTANT_TEXT)
        # a wall time stored as if it were UTC: shown as it is, whatever the session's time zone
        return F.convert_timezone(F.current_timezone(), F.lit("UTC"), instant.cast("timestamp_ntz")).cast("string")
    if isinstance(field.dataType, T.TimestampType):  # an instant: keep its offset
        return F.date_format(column, INSTANT_TEXT)
    return column.cast("string")
