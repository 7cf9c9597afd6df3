"""Cleaning rules of DESIGN.md section 3, as pure Spark functions.

`classify_sales` types and normalizes every raw line and gives each rejected line the first rule it
breaks (`reason`); `cleaned_lines` and `rejected_lines` split that one classified frame, so every
raw line lands in exactly one of them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from sales_assets.transforms.schema import RAW_COLUMNS, REQUIRED_COLUMNS

MONEY = "decimal(12,2)"
MAX_MONEY = 9_999_999_999.99  # numeric(12,2)
AMOUNT_TOLERANCE = 0.01

CLEANED_COLUMNS: tuple[str, ...] = (
    "sale_id", "order_id", "customer_id", "product", "category", "region",
    "quantity", "unit_price", "amount", "sale_ts",
)


class MissingColumnsError(ValueError):
    pass


def require_raw_columns(columns: list[str]) -> None:
    missing = [c for c in RAW_COLUMNS if c not in columns]
    if missing:
        raise MissingColumnsError(
            f"raw sales input lacks column(s) {', '.join(missing)}; expected {', '.join(RAW_COLUMNS)}"
        )


WHITESPACE = " \t\r\n"
NAME_COLUMNS = ("product", "category", "region")
# PostgreSQL text cannot hold a NUL byte: a name containing one cannot be stored, so its line is
# rejected as unparseable, and rejected lines show it in their raw text as U+FFFD.
NUL, REPLACEMENT_CHARACTER = "\x00", "\ufffd"


def _name(name: str) -> Column:
    """Trimmed text with inner whitespace collapsed; blank becomes null. The regex runs only on the
    rare value that needs it: on every value it dominated the cleaning pass."""
    value = F.btrim(F.col(name).cast("string"), F.lit(WHITESPACE))
    messy = value.contains("  ") | value.contains("\t") | value.contains("\n") | value.contains("\r")
    value = F.when(messy, F.regexp_replace(value, r"\s+", " ")).otherwise(value)
    return F.when(value == "", None).otherwise(value)


PARSED_COLUMNS = {"sale_id": "bigint", "order_id": "bigint", "customer_id": "bigint", "quantity": "int",
                  "unit_price": MONEY, "amount": MONEY, "sale_ts": "timestamp_ntz"}


def _why_unparsed(name: str) -> tuple[Column, Column]:
    """(missing, unparseable) for a parsed column. Spark's cast already ignores surrounding
    whitespace, so the text is looked at only when the parse failed: blank means missing, anything
    else unparseable. (Trimming every value first cost ~1 s of a 1M-line pass.)"""
    failed = F.col(f"t_{name}").isNull()
    blank = F.col(name).isNull() | (F.btrim(F.col(name), F.lit(WHITESPACE)) == "")
    # CASE, not AND: Spark would otherwise evaluate `blank` on every line as a common subexpression
    return F.when(failed, blank).otherwise(False), F.when(failed, ~blank).otherwise(False)


def classify_sales(raw: DataFrame, run_date: date) -> DataFrame:
    """The raw text columns as they arrived, typed values (`t_*`), `reason` (null when kept) and
    `amount_repaired`."""
    require_raw_columns(raw.columns)
    typed = raw.select(*[F.col(c).cast("string").alias(c) for c in RAW_COLUMNS]).select(
        "*",
        *[F.col(c).try_cast(t).alias(f"t_{c}") for c, t in PARSED_COLUMNS.items()],
        *[F.initcap(_name(c)).alias(f"t_{c}") for c in NAME_COLUMNS],
    )
    expected = (F.col("t_quantity") * F.col("t_unit_price"))
    typed = typed.withColumn("expected_amount", F.when(F.abs(expected) <= MAX_MONEY, expected.cast(MONEY)))

    why = {c: _why_unparsed(c) for c in PARSED_COLUMNS}
    missing = F.lit(False)
    for c in REQUIRED_COLUMNS:
        missing = missing | (why[c][0] if c in why else F.col(f"t_{c}").isNull())
    unparseable = F.lit(False)
    for c in PARSED_COLUMNS:
        unparseable = unparseable | why[c][1]
    # quantity * unit_price beyond numeric(12,2) cannot be stored, nor can a name with a NUL
    unparseable = unparseable | F.col("expected_amount").isNull()
    for c in NAME_COLUMNS:
        unparseable = unparseable | F.col(f"t_{c}").contains(NUL)
    end_of_run_date = datetime.combine(run_date + timedelta(days=1), time.min)

    reason = (
        F.when(missing, "missing_field")
        .when(unparseable, "unparseable")
        .when(F.col("t_quantity") <= 0, "non_positive_quantity")
        .when(F.col("t_unit_price") <= 0, "non_positive_price")
        .when(F.col("t_sale_ts") >= F.lit(end_of_run_date).cast("timestamp_ntz"), "future_date")
    )
    typed = typed.withColumn("reason", reason)
    typed = _mark_duplicates(typed)
    off_by = F.abs(F.col("t_amount") - F.col("expected_amount"))
    repaired = F.col("reason").isNull() & (F.col("t_amount").isNull() | (off_by > AMOUNT_TOLERANCE))
    return typed.withColumn("amount_repaired", repaired)


def _mark_duplicates(typed: DataFrame) -> DataFrame:
    """`reason = duplicate` for all but one valid line per sale_id. The line kept is the first by
    its full content, so the choice never depends on file order or partitioning. (Measured: one
    window beats finding repeated ids first and sorting only those, which scans the input 3x.)"""
    valid = F.col("reason").isNull()
    order = [F.col(f"t_{c}").asc_nulls_first() for c in CLEANED_COLUMNS[1:]] + \
            [F.col(c).asc_nulls_first() for c in RAW_COLUMNS]
    rank = F.row_number().over(Window.partitionBy("t_sale_id", valid).orderBy(*order))
    return typed.withColumn("reason", F.when(valid & (rank > 1), "duplicate").otherwise(F.col("reason")))


def _cleaned_columns() -> list[Column]:
    amount = F.when(F.col("amount_repaired"), F.col("expected_amount")).otherwise(F.col("t_amount"))
    return [(amount.cast(MONEY) if c == "amount" else F.col(f"t_{c}")).alias(c) for c in CLEANED_COLUMNS]


def _storable_raw_columns() -> list[Column]:
    """The raw text columns as PostgreSQL text can store them: NUL becomes U+FFFD."""
    return [F.translate(c, NUL, REPLACEMENT_CHARACTER).alias(c) for c in RAW_COLUMNS]


def cleaned_lines(classified: DataFrame) -> DataFrame:
    """Kept lines in the `sales.cleaned_sales` shape, amounts repaired."""
    return classified.filter(F.col("reason").isNull()).select(*_cleaned_columns())


def rejected_lines(classified: DataFrame) -> DataFrame:
    """Rejected lines as they arrived (raw text, NUL shown as U+FFFD) with their `reason`."""
    return classified.filter(F.col("reason").isNotNull()).select(*_storable_raw_columns(), "reason")


def routed_lines(classified: DataFrame) -> DataFrame:
    """Every line once, for writing both tables in one pass: struct `cleaned_sales` (as in
    `cleaned_lines`) set on kept lines, struct `rejected_sales` (as in `rejected_lines`) set on
    rejected ones; plus `reason` and `amount_repaired` to count."""
    kept = F.col("reason").isNull()
    return classified.select(
        F.when(kept, F.struct(*_cleaned_columns())).alias("cleaned_sales"),
        F.when(~kept, F.struct(*_storable_raw_columns(), "reason")).alias("rejected_sales"),
        "reason", "amount_repaired",
    )
