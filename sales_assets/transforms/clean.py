"""Cleaning rules of docs/contract.md, as pure Spark functions.

`classify_sales` types and normalizes every raw line and gives each rejected line the first rule it
breaks (`reason`); `cleaned_lines` and `rejected_lines` split that one classified frame, so every
raw line lands in exactly one of them.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from sales_assets import contract
from sales_assets.contract import (
    CLEANED_SALES,
    IMPORT_DATE,
    MAX_MONEY,
    RAW_COLUMNS,
    REQUIRED_COLUMNS,
    UNICODE_WHITESPACE,
)
from sales_assets.transforms.sql import sql_literal

MONEY = contract.spark_type(contract.MONEY)
AMOUNT_TOLERANCE = 0.01
CLEANED_COLUMNS = tuple(CLEANED_SALES.column_names)


class MissingColumnsError(ValueError):
    pass


def require_raw_columns(columns: list[str], expected: tuple[str, ...] = RAW_COLUMNS) -> None:
    missing = [c for c in expected if c not in columns]
    if missing:
        raise MissingColumnsError(
            f"raw sales input lacks column(s) {', '.join(missing)}; expected {', '.join(expected)}"
        )


NAME_COLUMNS = ("product", "category", "region")
# PostgreSQL text cannot hold a NUL byte: a name containing one cannot be stored, so its line is
# rejected as unparseable, and rejected lines show it in their raw text as U+FFFD.
NUL, REPLACEMENT_CHARACTER = "\x00", "\ufffd"
# ClickHouse keeps first_sale/last_sale as Date32, which starts here: older dates are unparseable.
EARLIEST_SALE = "1900-01-01 00:00:00"
# Unicode's format characters (category Cf): zero-width space, joiners, word joiner, BOM, soft hyphen
FORMAT_CHARACTER = r"\p{Cf}"

# The rules are written as SQL expressions, a few `selectExpr` steps: built from Column objects
# they cost a round trip to the server per expression node before the first task.


# Parsing is two steps: `_helpers` reads each text once (a cast, a trim, a check) into a few
# columns, and the rules below combine those columns.
_WHITESPACE_CLASS = "[" + "".join(f"\\u{ord(c):04x}" for c in UNICODE_WHITESPACE) + "]"
ASCII_WHITESPACE = "".join(c for c in UNICODE_WHITESPACE if c.isascii())
# `sale_ts`: a date needs year, month and day (`2026-11` is unparseable); a time may follow, then a
# zone: `Z`, an offset (`+03:00`, `+0300`, `+03`, `-5`), UTC/GMT with or without one, or an IANA
# name. Other zone text (`EST`, `CET`: ambiguous abbreviations) is unparseable, never ignored.
_DATE = r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
_TIME = r"[0-9]{1,2}:[0-9]{2}(:[0-9]{2}([.][0-9]*)?)?"
_OFFSET = r"[+-][0-9]{1,2}(:?[0-9]{2}(:?[0-9]{2})?)?"
_ZONE = rf"(z|{_OFFSET}|(utc|gmt|ut)({_OFFSET})?|[a-z_]+(/[a-z0-9_+-]+)+)"
ZONED_TIMESTAMP = rf"(?i)^\s*{_DATE}[t ]{_TIME}\s*{_ZONE}\s*$"
PLAIN_TIMESTAMP = rf"(?i)^\s*{_DATE}([t ]{_TIME})?\s*$"
MINUTES_BEFORE_ZONE = rf"^(\s*{_DATE}[Tt ][0-9]{{1,2}}:[0-9]{{2}})([^0-9:]|$)"
MONEY_COLUMNS = ("unit_price", "amount")
ID_COLUMNS = ("sale_id", "order_id", "customer_id")


def _helpers(timezone: str) -> list[str]:
    """Names, money and quantities as their final `t_*` columns; ids (`i_*`) for the bounds the next
    step checks. (The wall time, `wall_sale_ts`, comes from `_wall_sale_ts`, a projection earlier.)"""
    names = [f"initcap({_name(f'n_{c}')}) AS t_{c}" for c in NAME_COLUMNS]
    ids = [f"try_cast({c} AS BIGINT) AS i_{c}" for c in ID_COLUMNS]
    # Money and quantities are checked as text, so nothing is rounded on the way. `point` is where
    # the decimal point is (0: none).
    money = []
    for c in MONEY_COLUMNS:
        text, point = f"trim({c})", f"instr(trim({c}), '.')"
        # plain (nearly every value): no exponent, at most two digits after the point; measured on
        # the untrimmed text, which is cheaper, so a padded value takes the second branch
        plain = (
            f"(NOT contains({c}, 'e') AND NOT contains({c}, 'E') "
            f"AND (instr({c}, '.') = 0 OR length({c}) - instr({c}, '.') <= 2))"
        )
        # more than two decimals: kept only when the extra digits are zeros (`10.000`), never rounded
        zeros_beyond_cents = (
            f"({point} > 0 AND NOT contains({c}, 'e') AND NOT contains({c}, 'E') "
            f"AND btrim(substring({text}, {point} + 3), '0') = '')"
        )
        money.append(
            f"CASE WHEN {plain} THEN try_cast({c} AS {MONEY}) WHEN {zeros_beyond_cents} "
            f"THEN try_cast(substring({text}, 1, {point} + 2) AS {MONEY}) END AS t_{c}"
        )
    text, point = "trim(quantity)", "instr(trim(quantity), '.')"
    integral = f"({point} > 0 AND btrim(substring({text}, {point} + 1), '0') = '')"
    # an integral decimal (`2.0`, pandas' float export) is that integer; `2.5` is null
    quantity = [
        f"coalesce(try_cast(quantity AS INT), CASE WHEN {integral} "
        f"THEN try_cast(substring({text}, 1, {point} - 1) AS INT) END) AS t_quantity"
    ]
    return names + ids + money + quantity


def _wall_sale_ts(timezone: str) -> str:
    """`sale_ts` as a wall time in `timezone`, null when it does not parse."""
    # The regexes run only where the text is not the common shape: `yyyy-mm-dd hh:mm:ss[.fff]` (or
    # with a `T`), nothing after the date but digits, colons and dots (so no zone); nearly every line.
    common = (
        "(substr(sale_ts, 5, 1) = '-' AND substr(sale_ts, 8, 1) = '-' AND substr(sale_ts, 11, 1) IN (' ', 'T') "
        "AND translate(substr(sale_ts, 12), '0123456789:.', '') = '')"
    )
    # Spark reads a zone only after the seconds: `10:00Z` is read as `10:00:00Z`
    seconds = f"regexp_replace(sale_ts, {sql_literal(MINUTES_BEFORE_ZONE)}, '$1:00$2')"
    # an instant converted to wall time in `timezone` (Spark's TIMESTAMP cast puts it in the session's)
    instant = f"convert_timezone({sql_literal(timezone)}, CAST(try_cast({seconds} AS TIMESTAMP) AS TIMESTAMP_NTZ))"
    wall = "try_cast(sale_ts AS TIMESTAMP_NTZ)"
    return (
        f"CASE WHEN {common} THEN {wall} WHEN sale_ts rlike {sql_literal(ZONED_TIMESTAMP)} THEN {instant} "
        f"WHEN sale_ts rlike {sql_literal(PLAIN_TIMESTAMP)} THEN {wall} END AS wall_sale_ts"
    )


def _trimmed(name: str) -> str:
    return f"btrim({name}, {sql_literal(UNICODE_WHITESPACE)})"


# Whether any of a line's names needs its inner whitespace collapsed, looked at once for all three
# (fewer calls, less generated code): ASCII text (as many characters as bytes) without two spaces or
# an ASCII whitespace other than space needs nothing; anything else goes through the regex.
_NAMES = "concat_ws('|', " + ", ".join(_trimmed(f"n_{c}") for c in NAME_COLUMNS) + ")"
_MESSY_NAMES = " OR ".join(
    [f"length({_NAMES}) <> octet_length({_NAMES})"]
    + [f"contains({_NAMES}, {sql_literal(m)})" for m in ["  ", *ASCII_WHITESPACE.replace(" ", "")]]
)


def _name(name: str) -> str:
    """Unicode whitespace trimmed and inner runs collapsed to one space; blank becomes null. The
    regex runs only on lines that need it: a regex search on every name cost ~2.5 s of 1M lines."""
    w = _trimmed(name)
    return (
        f"CASE WHEN {_MESSY_NAMES} THEN nullif(regexp_replace({w}, {sql_literal(_WHITESPACE_CLASS + '+')}, ' '), '') "
        f"ELSE nullif({w}, '') END"
    )


def _composed(name: str) -> str:
    """A name without format characters (zero-width space, joiners, a BOM inside the text),
    NFC-composed, so `Café` typed two ways is one name; plain ASCII passes as it is. NFC comes from
    ICU, which Spark ships. (Done in a projection of its own, before the rules: `reflect` is
    nondeterministic to Spark: inside the rules it made the pass 1.3x slower, here 1.1x.)"""
    visible = f"regexp_replace({name}, {sql_literal(FORMAT_CHARACTER)}, '')"
    cleaned = f"reflect('com.ibm.icu.text.Normalizer', 'compose', {visible}, false)"
    return f"CASE WHEN length({name}) <> octet_length({name}) THEN {cleaned} ELSE {name} END"


def _id(name: str) -> str:
    """A positive integer id, else null (unparseable)."""
    return f"CASE WHEN i_{name} > 0 THEN i_{name} END AS t_{name}"


def _sale_ts() -> str:
    """Wall time in SALES_TIMEZONE (converted in `_helpers` when the text has a zone); before 1900
    is null (unparseable)."""
    return f"CASE WHEN wall_sale_ts >= TIMESTAMP_NTZ '{EARLIEST_SALE}' THEN wall_sale_ts END AS t_sale_ts"


PARSED_COLUMNS = (*ID_COLUMNS, "quantity", *MONEY_COLUMNS, "sale_ts")


def _blank(name: str) -> str:
    return f"({name} IS NULL OR {_trimmed(name)} = '')"


def _why_unparsed(name: str) -> tuple[str, str]:
    """(missing, unparseable) for a parsed column. The text is looked at only when the parse
    failed: blank (Unicode whitespace only) means missing, anything else unparseable. (Trimming
    every value first cost ~1 s of a 1M-line pass.)"""
    failed = f"t_{name} IS NULL"
    blank = _blank(name)
    # CASE, not AND: Spark would otherwise evaluate `blank` on every line as a common subexpression
    return f"CASE WHEN {failed} THEN {blank} ELSE false END", f"CASE WHEN {failed} THEN NOT {blank} ELSE false END"


def delivered_on(raw: DataFrame, import_date: date) -> DataFrame:
    """Raw lines as one delivery imported on `import_date` (a file read for one date)."""
    return raw.withColumn(IMPORT_DATE, F.lit(import_date))


def classify_sales(raw: DataFrame, timezone: str = "UTC") -> DataFrame:
    """The raw text columns as they arrived with their `import_date`, typed values (`t_*`),
    `reason` (null when kept) and `amount_repaired`. `timezone` (SALES_TIMEZONE) is what `sale_ts`
    is read in and converted to; a sale at or after the day after its import date is `future_date`."""
    require_raw_columns(raw.columns, (*RAW_COLUMNS, IMPORT_DATE))
    kept = (*RAW_COLUMNS, IMPORT_DATE)
    typed = (
        raw.selectExpr(
            *[f"CAST({c} AS STRING) AS {c}" for c in RAW_COLUMNS], f"CAST({IMPORT_DATE} AS DATE) AS {IMPORT_DATE}"
        )
        .selectExpr(*kept, *[f"{_composed(c)} AS n_{c}" for c in NAME_COLUMNS], _wall_sale_ts(timezone))
        .selectExpr(*kept, *_helpers(timezone), "wall_sale_ts")
        .selectExpr(
            *kept,
            *[_id(c) for c in ID_COLUMNS],
            *[f"t_{c}" for c in ("quantity", *MONEY_COLUMNS)],
            _sale_ts(),
            *[f"t_{c}" for c in NAME_COLUMNS],
        )
        .selectExpr(
            "*",
            f"CASE WHEN abs(t_quantity * t_unit_price) <= {MAX_MONEY!r}D "
            f"THEN CAST(t_quantity * t_unit_price AS {MONEY}) END AS expected_amount",
        )
    )

    why = {c: _why_unparsed(c) for c in PARSED_COLUMNS}
    missing = " OR ".join(["false"] + [why[c][0] if c in why else f"t_{c} IS NULL" for c in REQUIRED_COLUMNS])
    unparseable = " OR ".join(
        ["false"]
        + [why[c][1] for c in PARSED_COLUMNS]
        # quantity * unit_price beyond numeric(12,2) cannot be stored, nor can a name with a NUL
        + ["expected_amount IS NULL"]
        + [f"contains(t_{c}, {sql_literal(NUL)})" for c in NAME_COLUMNS]
    )
    # a delivery may hold sales of its own import date, none of the next day's
    future = f"t_sale_ts >= CAST(date_add({IMPORT_DATE}, 1) AS TIMESTAMP_NTZ)"
    reason = (
        f"CASE WHEN {missing} THEN 'missing_field' "
        f"WHEN {unparseable} THEN 'unparseable' "
        "WHEN t_quantity <= 0 THEN 'non_positive_quantity' "
        "WHEN t_unit_price <= 0 THEN 'non_positive_price' "
        f"WHEN {future} THEN 'future_date' END"
    )
    # Whether a line breaks any rule is all the shuffle before the duplicate rule needs; which rule
    # it breaks is worked out after it, on the rejected lines only. (Computed before it, the rules'
    # code made one generated Java method too big for the JIT to compile: docs/performance.md.) `valid` is
    # exactly `reason IS NULL`: a blank optional field is not a fault, any other unparsed one is.
    optional = [c for c in PARSED_COLUMNS if c not in REQUIRED_COLUMNS]
    faults = (
        [f"t_{c} IS NULL" for c in REQUIRED_COLUMNS]
        + [f"(t_{c} IS NULL AND NOT {_blank(c)})" for c in optional]
        + ["expected_amount IS NULL"]
        + [f"contains(t_{c}, {sql_literal(NUL)})" for c in NAME_COLUMNS]
        + ["t_quantity <= 0", "t_unit_price <= 0", future]
    )
    typed = typed.selectExpr("*", f"NOT ({' OR '.join(faults)}) AS valid")
    typed = _mark_duplicates(typed, reason)
    repaired = f"reason IS NULL AND (t_amount IS NULL OR abs(t_amount - expected_amount) > {AMOUNT_TOLERANCE!r}D)"
    return typed.selectExpr("*", f"{repaired} AS amount_repaired")


def _mark_duplicates(typed: DataFrame, reason: str) -> DataFrame:
    """`reason`: the rule a rejected line breaks, or `duplicate` for all but one valid line per
    sale_id. The line kept is the one of the earliest import date, then the first by its full
    content, so the choice never depends on file order or partitioning. (Measured: one window beats
    finding repeated ids first and sorting only those, which scans the input 3x.)"""
    order = ", ".join(
        [f"{IMPORT_DATE} ASC"]
        + [f"t_{c} ASC NULLS FIRST" for c in CLEANED_COLUMNS[1:] if c != IMPORT_DATE]
        + [f"{c} ASC NULLS FIRST" for c in RAW_COLUMNS]
    )
    rank = f"row_number() OVER (PARTITION BY t_sale_id, valid ORDER BY {order})"
    ranked = typed.selectExpr("*", f"{rank} AS rank_in_sale")
    return ranked.selectExpr(
        *[c for c in typed.columns if c != "valid"],
        f"CASE WHEN NOT valid THEN {reason} WHEN rank_in_sale > 1 THEN 'duplicate' END AS reason",
    )


def _cleaned_columns() -> list[str]:
    amount = f"CAST(CASE WHEN amount_repaired THEN expected_amount ELSE t_amount END AS {MONEY})"
    value = {"amount": amount, IMPORT_DATE: IMPORT_DATE}
    return [f"{value.get(c, f't_{c}')} AS {c}" for c in CLEANED_COLUMNS]


def _storable_raw_columns() -> list[str]:
    """The raw text columns as PostgreSQL text can store them: NUL becomes U+FFFD."""
    return [f"translate({c}, {sql_literal(NUL)}, {sql_literal(REPLACEMENT_CHARACTER)}) AS {c}" for c in RAW_COLUMNS]


def cleaned_lines(classified: DataFrame) -> DataFrame:
    """Kept lines in the `sales.cleaned_sales` shape, amounts repaired."""
    return classified.filter("reason IS NULL").selectExpr(*_cleaned_columns())


def rejected_lines(classified: DataFrame) -> DataFrame:
    """Rejected lines as they arrived (raw text, NUL shown as U+FFFD) with their `reason`."""
    return classified.filter("reason IS NOT NULL").selectExpr(*_storable_raw_columns(), "reason", IMPORT_DATE)


def routed_lines(classified: DataFrame) -> DataFrame:
    """Every line once, for writing both tables in one pass: struct `cleaned_sales` (as in
    `cleaned_lines`) set on kept lines, struct `rejected_sales` (as in `rejected_lines`) set on
    rejected ones; plus `reason` and `amount_repaired` to count."""
    return classified.selectExpr(
        f"CASE WHEN reason IS NULL THEN struct({', '.join(_cleaned_columns())}) END AS cleaned_sales",
        f"CASE WHEN reason IS NOT NULL THEN struct({', '.join(_storable_raw_columns())}, reason, {IMPORT_DATE}) "
        "END AS rejected_sales",
        "reason",
        "amount_repaired",
    )
