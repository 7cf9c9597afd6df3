"""Reading raw sales from CSV or Parquet files instead of generating them (docs/contract.md,
"Reading files"): every raw column as the text the cleaning rules read."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from functools import reduce

from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.clean import require_raw_columns
from sales_assets.transforms.csv_records import count_file_records, parse_records, positional_names
from sales_assets.transforms.source_files import (
    HIVE_NULL,
    PARQUET_SUFFIXES,
    SourceFileError,
    SourceFiles,
    csv_header,
    list_source,
)
from sales_assets.transforms.sql import sql_literal

__all__ = [
    "PARQUET_SUFFIXES",
    "SourceFileError",
    "count_source_records",
    "is_transient",
    "read_error_cause",
    "read_raw_file",
]

# RFC 4180: `"` quotes a field and `""` inside quotes is one `"`; a backslash is an ordinary
# character (Spark's default escapes with it). Spark's line reader ends a line at CR, LF or CRLF,
# mixed in one file, and splits a large file over every core; it is used for every file in which no
# quoted field holds a line break (no physical line has an odd number of quotes). The others are
# parsed by Arrow, a file per task (transforms/csv_records.py). Columns are taken by position from
# each file's own header, so files of one folder may order them differently.
CSV_OPTIONS = {
    "header": True,  # the first line of each file is skipped; its names are read separately
    "enforceSchema": True,
    "mode": "PERMISSIVE",
    "multiLine": False,
    "quote": '"',
    "escape": '"',
    "encoding": "UTF-8",
}
# what a typed Parquet timestamp becomes: the text the `sale_ts` rule reads, offset included when
# the value is an instant
INSTANT_TEXT = "yyyy-MM-dd HH:mm:ss.SSSSSSXXX"
NANOS_AS_LONG = "spark.sql.legacy.parquet.nanosAsLong"
# Dates before 1582 in INT96 or DATE columns are read as written (pre-1900 is unparseable anyway)
REBASE_CONFS = ("spark.sql.parquet.int96RebaseModeInRead", "spark.sql.parquet.datetimeRebaseModeInRead")
FILE_COLUMN = "_source_file"


def read_raw_file(spark: SparkSession, path: str) -> DataFrame:
    """The raw columns of the CSV or Parquet files `path` names (a file, a folder, a glob), every
    value as text; extra columns are ignored, missing ones are an error. Checked before anything is
    written."""
    source = list_source(path)
    try:
        frame = _read_parquet(spark, source) if source.format == "parquet" else _read_csv(spark, source)
        empty = frame.isEmpty()  # one tiny job: a file with a header and nothing else is a mistake
    except PySparkException as exc:
        if is_transient(exc):
            raise
        raise SourceFileError(f"cannot read source_path {path}: {read_error_cause(exc)}") from None
    if empty:
        raise SourceFileError(f"source_path {path} has no data lines")
    return frame


# A task lost to its machine, its memory or its network: worth another try. Anything else in reading
# a file is the file's, and fails the run at once.
TRANSIENT = re.compile(
    r"ExecutorLost|OutOfMemory|No space left|Connection (reset|refused)|SocketTimeout|timed out|"
    r"Python worker exited unexpectedly|UNAVAILABLE|Service Unavailable|503",
    re.IGNORECASE,
)


def is_transient(exc: Exception) -> bool:
    return bool(TRANSIENT.search(str(exc)))


def read_error_cause(exc: Exception) -> str:
    """What went wrong reading a source, in one line: the failed task's own error (and the file,
    when Spark names it), not the stage failure around it nor the JVM's stack."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    cause = re.search(r"most recent failure: .*?\): (.+)", first)
    cause = cause.group(1) if cause else re.sub(r"^\[[A-Z_.]+\] ", "", first)
    file = re.search(r"reading file (\S+?)\.?(\s|$)", text)
    cause = re.sub(r"\s*SQLSTATE: \w+\s*$", "", cause)
    return f"{cause} (in {file.group(1)})" if file and file.group(1) not in cause else cause


def count_source_records(spark: SparkSession, path: str) -> int:
    """Raw lines in the source as the contract counts them, without Spark's or Arrow's CSV readers:
    CSV records counted from the files' bytes in the workers, Parquet rows from the footers."""
    source = list_source(path)
    if source.format == "parquet":
        import pyarrow.parquet as pq

        return sum(pq.ParquetFile(f).metadata.num_rows for f in source.files)

    def count(batches):
        import pyarrow as pa

        for batch in batches:
            counts = [count_file_records(f) for f in batch.column("file").to_pylist()]  # a file each
            yield pa.RecordBatch.from_pydict({"records": counts}, schema=pa.schema([("records", pa.int64())]))

    files = _files_frame(spark, source.files)
    return files.mapInArrow(count, "records long").agg(F.sum("records")).first()[0] or 0


def _files_frame(spark: SparkSession, files) -> DataFrame:
    """One row per file, hashed over as many partitions as files (at most 64), so files are read in
    parallel tasks; a large file is still one task."""
    frame = spark.createDataFrame([(f,) for f in files], "file string")
    return frame.repartition(min(len(files), 64), "file") if len(files) > 1 else frame


# ---- CSV ----------------------------------------------------------------------------------------


def _read_csv(spark: SparkSession, source: SourceFiles) -> DataFrame:
    multiline = _scan_csv_text(spark, source)
    by_header: dict[tuple[str, ...], list[str]] = defaultdict(list)
    hive = source.hive_columns()
    for file in source.files:
        by_header[tuple(_checked_header(file, csv_header(file), hive))].append(file)
    parts = []
    for names, files in by_header.items():
        lines = [f for f in files if f not in multiline]
        quoted_breaks = [f for f in files if f in multiline]
        width = len(names)
        schema = T.StructType([T.StructField(n, T.StringType()) for n in positional_names(width)])
        if lines:
            frame = spark.read.csv(lines, schema=schema, **CSV_OPTIONS)
            parts.append(_raw_by_position(frame.selectExpr("*", f"{LOCAL_FILE} AS {FILE_COLUMN}"), names))
        if quoted_breaks:
            parts.append(_raw_by_position(_parsed_by_arrow(spark, quoted_breaks, schema), names))
    return reduce(DataFrame.unionByName, parts)


def _scan_csv_text(spark: SparkSession, source: SourceFiles) -> set[str]:
    """One pass over every line of the files: a file that is not UTF-8 fails, naming what was
    found (Spark's reader would turn the bytes into U+FFFD and carry on); returns the files in
    which a quoted field holds a line break (a physical line with an odd number of quotes)."""
    found = (
        spark.read.text(list(source.files))
        .selectExpr(
            f"{LOCAL_FILE} AS file",
            "NOT is_valid_utf8(value) AS invalid",
            "CAST(substr(value, 1, 40) AS BINARY) AS sample",
            "(length(value) - length(replace(value, '\"', ''))) % 2 = 1 AS odd",
        )
        .where("invalid OR odd")
        .groupBy("file")
        .agg(F.expr("max_by(sample, invalid) AS sample"), F.expr("bool_or(invalid) AS invalid"))
        .collect()  # a row per file that is not plain: a handful
    )
    listed = {os.path.realpath(f): f for f in source.files}
    scanned = {}
    for row in found:
        file = listed.get(os.path.realpath(row["file"]))
        if file is None:  # never guess: a file taken for another would lose its quoted line breaks
            raise SourceFileError(f"source_path {source.root}: Spark read {row['file']}, which was not listed")
        if row["invalid"]:
            _raise_not_utf8(file, bytes(row["sample"]))
        scanned[file] = row
    return set(scanned)


def _raise_not_utf8(file: str, sample: bytes) -> None:
    hint = ""
    if sample[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in sample:
        hint = "; it looks like UTF-16: save it as UTF-8"
    elif any(b >= 0x80 for b in sample):
        hint = "; it looks like a single-byte encoding (Latin-1, Windows-1252): save it as UTF-8"
    raise SourceFileError(f"source_path {file} is not valid UTF-8: found bytes {sample!r}{hint}")


def _parsed_by_arrow(spark: SparkSession, files: list[str], schema: T.StructType) -> DataFrame:
    width = len(schema)
    out = T.StructType([*schema.fields, T.StructField(FILE_COLUMN, T.StringType())])

    def parse(batches):
        import pyarrow as pa

        for batch in batches:
            for file in batch.column("file").to_pylist():
                table = parse_records(file, width)
                table = table.append_column(FILE_COLUMN, pa.array([file] * table.num_rows, pa.string()))
                yield from table.to_batches()

    return _files_frame(spark, files).mapInArrow(parse, out)


def _checked_header(file: str, found: list[str], hive: list[str]) -> list[str]:
    """The header's names, trimmed and lower-cased; an error when one appears twice or when the
    raw columns are not all there (saying what was found when none of them is). An untitled
    column (a trailing comma, an empty cell) is an extra column."""
    names = [n.strip().lower() for n in found]
    repeated = sorted({n for n in names if n and names.count(n) > 1})
    if repeated:
        raise SourceFileError(
            f"source_path {file}: the header has column(s) {', '.join(repeated)} more than once "
            f"(names are case-insensitive); header found: {','.join(found)!r}"
        )
    if not set(RAW_COLUMNS) & set(names):
        raise SourceFileError(
            f"source_path {file} lacks column(s) {', '.join(RAW_COLUMNS)}: the header found is "
            f"{','.join(found)[:200]!r}; the file must be comma-separated UTF-8 with a header line"
        )
    try:
        require_raw_columns(names + hive)
    except ValueError as exc:
        raise SourceFileError(f"source_path {file}: {exc}") from None
    return names


def _raw_by_position(frame: DataFrame, names: tuple[str, ...]) -> DataFrame:
    """The raw columns of a frame whose columns are `c0, c1, …` in header order; a raw column that
    only hive-style folder names give is taken from the file's path (`FILE_COLUMN`)."""
    columns = [f"c{names.index(c)} AS {c}" if c in names else f"{_hive_value(c)} AS {c}" for c in RAW_COLUMNS]
    return frame.selectExpr(*columns)


def _decoded(text: str) -> str:
    """Percent-decoded as UTF-8, a `+` kept as a plus; left as it is when it is no valid escape."""
    return f"coalesce(try_url_decode(replace({text}, '+', '%2B')), {text})"


# the local path of the file a row comes from, out of the URI Spark gives (`file:/data/x%20y.csv`)
LOCAL_FILE = _decoded("regexp_replace(_metadata.file_path, '^file:(//)?', '')")


def _hive_value(name: str) -> str:
    """The value a `name=…` folder (name in any case) in the row's file path gives, percent-decoded
    as UTF-8 (Spark's own partition discovery decodes each %XX as one character: `Zürich` became
    `ZÃ¼rich`); empty and Hive's null marker are null."""
    segment = f"regexp_extract({FILE_COLUMN}, {sql_literal('(?i)/' + re.escape(name) + '=([^/]*)/')}, 1)"
    return f"CASE WHEN {segment} NOT IN ('', {sql_literal(HIVE_NULL)}) THEN {_decoded(segment)} END"


# ---- Parquet ------------------------------------------------------------------------------------


def _read_parquet(spark: SparkSession, source: SourceFiles) -> DataFrame:
    """Files grouped by schema, each group read with its own: types may drift between files
    (int32/int64, decimal/double)."""
    import pyarrow.parquet as pq

    groups: dict[tuple, list[str]] = defaultdict(list)
    kinds: dict[tuple, dict[str, str]] = {}
    hive = source.hive_columns()
    for file in source.files:
        try:
            parquet = pq.ParquetFile(file)
        except Exception as exc:  # noqa: BLE001 - pyarrow's errors for a broken file vary
            raise SourceFileError(f"cannot read source_path {file}: {str(exc).splitlines()[0]}") from None
        _checked_header(file, parquet.schema_arrow.names, hive)
        column_kinds = _column_kinds(parquet)
        # files of one schema (names, exact types, INT96 or not) are read together, each on its own
        key = tuple((f.name, str(f.type), column_kinds[f.name]) for f in parquet.schema_arrow)
        groups[key].append(file)
        kinds[key] = {name.strip().lower(): kind for name, kind in column_kinds.items()}
    if any("nanos" in k.values() for k in kinds.values()):
        # Spark refuses TIMESTAMP(NANOS) unless told to read it as the long it is stored as
        spark.conf.set(NANOS_AS_LONG, "true")
    for conf in REBASE_CONFS:
        spark.conf.set(conf, "CORRECTED")
    parts = []
    for key, files in groups.items():
        frame = spark.read.parquet(*files)
        frame = frame.select(
            *[F.col(f"`{c}`").alias(c.strip().lower()) for c in frame.columns],
            F.expr(LOCAL_FILE).alias(FILE_COLUMN),
        )
        parts.append(frame.selectExpr(*[_parquet_text(c, frame.schema, kinds[key]) for c in RAW_COLUMNS]))
    return reduce(DataFrame.unionByName, parts)


def _column_kinds(parquet) -> dict[str, str]:
    """Each top-level column's name -> how it becomes text: `int96`, `nanos` / `nanos_instant`
    (pandas' default timestamps), `float`, or `plain`."""
    import pyarrow as pa

    physical = {c.path: c.physical_type for c in parquet.schema}
    kinds = {}
    for field in parquet.schema_arrow:
        if physical.get(field.name) == "INT96":  # Hive, Impala, older Spark: a wall time
            kinds[field.name] = "int96"
        elif pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            kinds[field.name] = "nanos_instant" if field.type.tz is not None else "nanos"
        elif pa.types.is_floating(field.type):
            kinds[field.name] = "float"
        else:
            kinds[field.name] = "plain"
    return kinds


def _wall_text(timestamp: str) -> str:
    """A Spark TIMESTAMP holding a wall time stored as if it were UTC, as that wall time's text
    (whatever the session's time zone)."""
    return f"CAST(convert_timezone(current_timezone(), 'UTC', CAST({timestamp} AS TIMESTAMP_NTZ)) AS STRING)"


def _parquet_text(name: str, schema: T.StructType, kinds: dict[str, str]) -> str:
    """A typed Parquet column as the text the cleaning rules read."""
    if name not in kinds:  # given by hive-style folder names
        return f"{_hive_value(name)} AS {name}"
    column, kind = f"`{name}`", kinds[name]
    data_type = schema[name].dataType
    if kind.startswith("nanos"):  # read as a long of nanoseconds
        # exact: as a double, a long of nanoseconds near 2026 is off by up to 256 ns, which moved
        # about 4 in 10 values to the neighbouring microsecond
        instant = f"timestamp_micros(CAST(floor(CAST({column} AS DECIMAL(20,0)) / 1000) AS BIGINT))"
        text = f"date_format({instant}, '{INSTANT_TEXT}')" if kind == "nanos_instant" else _wall_text(instant)
    elif kind == "int96":
        text = _wall_text(column)
    elif isinstance(data_type, T.TimestampType):  # an instant: keep its offset
        text = f"date_format({column}, '{INSTANT_TEXT}')"
    elif kind == "float":
        # the shortest decimal that reads back as the same float (Java's), never in exponent form
        # (12345678.0, not 1.2345678E7); NaN, infinities and huge values keep Spark's text
        plain = f"CAST(try_cast(CAST({column} AS STRING) AS DECIMAL(38,18)) AS STRING)"
        trimmed = f"regexp_replace(regexp_replace({plain}, '0+$', ''), '[.]$', '.0')"
        text = f"coalesce({trimmed}, CAST({column} AS STRING))"
    else:
        text = f"CAST({column} AS STRING)"
    return f"{text} AS {name}"
