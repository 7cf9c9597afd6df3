"""Cleaning rules of DESIGN.md section 3, as pure Spark functions.

`classify_sales` types and normalizes every raw line and gives each rejected line the first rule it
breaks (`reason`); `cleaned_lines` and `rejected_lines` split that one classified frame, so every
raw line lands in exactly one of them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pyspark.sql import DataFrame
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

# The rules are written as SQL expressions, a few `selectExpr` steps: built from Column objects
# they took ~4,400 Py4J round trips, 1.5 s of a cold run (0.9 s warm) before the first task.


def _text(value: str) -> str:
    """A Spark SQL string literal; characters that do not print are written as unicode escapes."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return "'" + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in escaped) + "'"


def _name(name: str) -> str:
    """Trimmed text with inner whitespace collapsed; blank becomes null. The regex runs only on the
    rare value that needs it: on every value it dominated the cleaning pass."""
    value = f"btrim({name}, {_text(WHITESPACE)})"
    messy = " OR ".join(f"contains({value}, {_text(w)})" for w in ("  ", "\t", "\n", "\r"))
    runs = _text(r"\s+")
    collapsed = f"CASE WHEN {messy} THEN regexp_replace({value}, {runs}, ' ') ELSE {value} END"
    return f"CASE WHEN {collapsed} = '' THEN NULL ELSE {collapsed} END"


PARSED_COLUMNS = {"sale_id": "bigint", "order_id": "bigint", "customer_id": "bigint", "quantity": "int",
                  "unit_price": MONEY, "amount": MONEY, "sale_ts": "timestamp_ntz"}


def _why_unparsed(name: str) -> tuple[str, str]:
    """(missing, unparseable) for a parsed column. Spark's cast already ignores surrounding
    whitespace, so the text is looked at only when the parse failed: blank means missing, anything
    else unparseable. (Trimming every value first cost ~1 s of a 1M-line pass.)"""
    failed = f"t_{name} IS NULL"
    blank = f"({name} IS NULL OR btrim({name}, {_text(WHITESPACE)}) = '')"
    # CASE, not AND: Spark would otherwise evaluate `blank` on every line as a common subexpression
    return f"CASE WHEN {failed} THEN {blank} ELSE false END", f"CASE WHEN {failed} THEN NOT {blank} ELSE false END"


def classify_sales(raw: DataFrame, run_date: date) -> DataFrame:
    """The raw text columns as they arrived, typed values (`t_*`), `reason` (null when kept) and
    `amount_repaired`."""
    require_raw_columns(raw.columns)
    typed = raw.selectExpr(*[f"CAST({c} AS STRING) AS {c}" for c in RAW_COLUMNS]).selectExpr(
        "*",
        *[f"try_cast({c} AS {t}) AS t_{c}" for c, t in PARSED_COLUMNS.items()],
        *[f"initcap({_name(c)}) AS t_{c}" for c in NAME_COLUMNS],
    ).selectExpr(
        "*",
        f"CASE WHEN abs(t_quantity * t_unit_price) <= {MAX_MONEY!r}D "
        f"THEN CAST(t_quantity * t_unit_price AS {MONEY}) END AS expected_amount",
    )

    why = {c: _why_unparsed(c) for c in PARSED_COLUMNS}
    missing = " OR ".join(["false"] + [why[c][0] if c in why else f"t_{c} IS NULL" for c in REQUIRED_COLUMNS])
    unparseable = " OR ".join(
        ["false"] + [why[c][1] for c in PARSED_COLUMNS]
        # quantity * unit_price beyond numeric(12,2) cannot be stored, nor can a name with a NUL
        + ["expected_amount IS NULL"] + [f"contains(t_{c}, {_text(NUL)})" for c in NAME_COLUMNS])
    end_of_run_date = datetime.combine(run_date + timedelta(days=1), time.min)
    reason = (
        f"CASE WHEN {missing} THEN 'missing_field' "
        f"WHEN {unparseable} THEN 'unparseable' "
        "WHEN t_quantity <= 0 THEN 'non_positive_quantity' "
        "WHEN t_unit_price <= 0 THEN 'non_positive_price' "
        f"WHEN t_sale_ts >= TIMESTAMP_NTZ '{end_of_run_date.isoformat(sep=' ')}' THEN 'future_date' END"
    )
    typed = typed.selectExpr("*", f"{reason} AS reason")
    typed = _mark_duplicates(typed)
    repaired = f"reason IS NULL AND (t_amount IS NULL OR abs(t_amount - expected_amount) > {AMOUNT_TOLERANCE!r}D)"
    return typed.selectExpr("*", f"{repaired} AS amount_repaired")


def _mark_duplicates(typed: DataFrame) -> DataFrame:
    """`reason = duplicate` for all but one valid line per sale_id. The line kept is the first by
    its full content, so the choice never depends on file order or partitioning. (Measured: one
    window beats finding repeated ids first and sorting only those, which scans the input 3x.)"""
    order = ", ".join([f"t_{c} ASC NULLS FIRST" for c in CLEANED_COLUMNS[1:]] +
                      [f"{c} ASC NULLS FIRST" for c in RAW_COLUMNS])
    rank = f"row_number() OVER (PARTITION BY t_sale_id, reason IS NULL ORDER BY {order})"
    duplicate = f"CASE WHEN reason IS NULL AND {rank} > 1 THEN 'duplicate' ELSE reason END"
    return typed.withColumn("reason", F.expr(duplicate))


def _cleaned_columns() -> list[str]:
    amount = f"CAST(CASE WHEN amount_repaired THEN expected_amount ELSE t_amount END AS {MONEY})"
    return [f"{amount if c == 'amount' else f't_{c}'} AS {c}" for c in CLEANED_COLUMNS]


def _storable_raw_columns() -> list[str]:
    """The raw text columns as PostgreSQL text can store them: NUL becomes U+FFFD."""
    return [f"translate({c}, {_text(NUL)}, {_text(REPLACEMENT_CHARACTER)}) AS {c}" for c in RAW_COLUMNS]


def cleaned_lines(classified: DataFrame) -> DataFrame:
    """Kept lines in the `sales.cleaned_sales` shape, amounts repaired."""
    return classified.filter("reason IS NULL").selectExpr(*_cleaned_columns())


def rejected_lines(classified: DataFrame) -> DataFrame:
    """Rejected lines as they arrived (raw text, NUL shown as U+FFFD) with their `reason`."""
    return classified.filter("reason IS NOT NULL").selectExpr(*_storable_raw_columns(), "reason")


def routed_lines(classified: DataFrame) -> DataFrame:
    """Every line once, for writing both tables in one pass: struct `cleaned_sales` (as in
    `cleaned_lines`) set on kept lines, struct `rejected_sales` (as in `rejected_lines`) set on
    rejected ones; plus `reason` and `amount_repaired` to count."""
    return classified.selectExpr(
        f"CASE WHEN reason IS NULL THEN struct({', '.join(_cleaned_columns())}) END AS cleaned_sales",
        f"CASE WHEN reason IS NOT NULL THEN struct({', '.join(_storable_raw_columns())}, reason) END "
        "AS rejected_sales",
        "reason", "amount_repaired",
    )
