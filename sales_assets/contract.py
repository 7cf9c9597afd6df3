"""The data contract (docs/contract.md), defined once: the raw columns and the text rules the
cleaning reads, the reject reasons, every stored table (PostgreSQL and ClickHouse) with its columns
and types, and the money types.

A `PgTable` gives the Arrow schema the binary COPY needs, the Spark schema a DataFrame is cast to
and the `TableSchema` the Dagster UI shows; the SQL that creates the tables is built from it where
they are written. No Dagster or Spark import: Spark's Python workers import this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

import pyarrow as pa

if TYPE_CHECKING:
    from dagster import TableSchema

# -- raw lines -------------------------------------------------------------------------------
RAW_COLUMNS: tuple[str, ...] = (
    "sale_id",
    "order_id",
    "customer_id",
    "product",
    "category",
    "region",
    "quantity",
    "unit_price",
    "amount",
    "sale_ts",
)

# The day a delivery of lines was imported: carried by every raw, cleaned and rejected line.
IMPORT_DATE = "import_date"
IMPORT_DATE_COL_DESCRIPTION = "the day the line's delivery was imported"

# Columns a line cannot do without (rejected as `missing_field` when null or blank).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "sale_id",
    "order_id",
    "product",
    "region",
    "quantity",
    "unit_price",
    "sale_ts",
)

# Each rejected line gets exactly one reason: the first rule it breaks, in this order.
REJECT_REASONS: tuple[str, ...] = (
    "missing_field",
    "unparseable",
    "non_positive_quantity",
    "non_positive_price",
    "future_date",
    "duplicate",
)

TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"


# Unicode's White_Space characters (tab, line breaks, no-break space, em space, ...): what "trim"
# and "collapse" mean for names (docs/contract.md). Python's str.split() uses a slightly different
# set, so the twin below and the Spark rule both use this one.
UNICODE_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_TO_SPACE = str.maketrans(UNICODE_WHITESPACE, " " * len(UNICODE_WHITESPACE))


def normalized_space(text: str) -> str:
    """Unicode whitespace trimmed, inner runs collapsed to one ASCII space."""
    return " ".join(w for w in text.translate(_WHITESPACE_TO_SPACE).split(" ") if w)


def canonical_case(text: str) -> str:
    """Python twin of the Spark name rule: whitespace normalized, each word capitalized."""
    return " ".join(w[:1].upper() + w[1:].lower() for w in normalized_space(text).split(" "))


# -- stored tables ---------------------------------------------------------------------------
SCHEMA = "sales"  # the PostgreSQL schema and the ClickHouse database

# Money is exact decimal end to end, never float. A line's price and amount fit numeric(12,2);
# sums outgrow it at scale, so totals take 18 digits, as ClickHouse's Decimal(18,2).
MONEY = "numeric(12,2)"
MONEY_TOTAL = "numeric(18,2)"
CLICKHOUSE_MONEY = "Decimal(18, 2)"
MAX_MONEY = 9_999_999_999.99  # the largest numeric(12,2)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")


def checked_identifier(name: str) -> str:
    """A plain lower-case SQL identifier, or an error: names are never spliced in unchecked."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}")
    return name


def spark_type(pg_type: str) -> str:
    """The Spark SQL type a PostgreSQL column type is read and written as."""
    if m := _NUMERIC.match(pg_type):
        return f"decimal({m[1]},{m[2]})"
    return {"bigint": "bigint", "integer": "int", "text": "string", "timestamp": "timestamp_ntz", "date": "date"}[
        pg_type
    ]


@dataclass(frozen=True)
class Col:
    name: str
    pg_type: str
    nullable: bool = True
    description: str = ""

    @property
    def arrow_type(self) -> pa.DataType:
        if m := _NUMERIC.match(self.pg_type):
            return pa.decimal128(int(m[1]), int(m[2]))
        return {
            "bigint": pa.int64(),
            "integer": pa.int32(),
            "text": pa.string(),
            "timestamp": pa.timestamp("us"),
            "date": pa.date32(),
        }[self.pg_type]

    @property
    def spark_type(self) -> str:
        return spark_type(self.pg_type)


class _Table:
    """What the PostgreSQL and the ClickHouse tables share: names checked once, when defined."""

    schema: str  # the PostgreSQL schema, or the ClickHouse database
    name: str
    columns: tuple

    def __post_init__(self):
        for ident in (self.schema, self.name, *self.column_names):
            checked_identifier(ident)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class PgTable(_Table):
    name: str
    columns: tuple[Col, ...]
    primary_key: tuple[str, ...] = ()
    # unique key over nullable columns (NULLS NOT DISTINCT), e.g. one row per group and grain
    unique_key: tuple[str, ...] = ()
    description: str = ""
    schema: str = field(default=SCHEMA)

    def project(self, names) -> PgTable:
        """The table seen through some of its columns (in table order), e.g. to read only those."""
        wanted = set(names)
        if unknown := sorted(wanted - set(self.column_names)):
            raise KeyError(f"{self.qualified} has no column(s) {', '.join(unknown)}")
        return replace(self, columns=tuple(c for c in self.columns if c.name in wanted))

    @property
    def arrow_schema(self) -> pa.Schema:
        """What a binary COPY into this table is fed. All fields nullable: NOT NULL is the table's
        business, and the Arrow batches Spark sends are all nullable."""
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])

    @property
    def spark_schema(self) -> str:
        return ", ".join(f"{c.name} {c.spark_type}" for c in self.columns)

    @property
    def dagster_schema(self) -> TableSchema:
        return _dagster_schema(
            [(c.name, c.pg_type, c.description, c.nullable, self.primary_key == (c.name,)) for c in self.columns]
        )


CLEANED_SALES = PgTable(
    "cleaned_sales",
    (
        Col("sale_id", "bigint", False, "sales line id, unique"),
        Col("order_id", "bigint", False, "the check the line belongs to"),
        Col("customer_id", "bigint"),
        Col("product", "text", False, "canonical case"),
        Col("category", "text"),
        Col("region", "text", False, "canonical case"),
        Col("quantity", "integer", False, "> 0"),
        Col("unit_price", MONEY, False, "> 0"),
        Col("amount", MONEY, False, "quantity * unit_price (to the cent)"),
        Col("sale_ts", "timestamp", False, "before the day after its import date"),
        Col(IMPORT_DATE, "date", False, IMPORT_DATE_COL_DESCRIPTION),
    ),
    primary_key=("sale_id",),
    description="Typed, valid, deduplicated sales lines.",
)

REJECTED_SALES = PgTable(
    "rejected_sales",
    tuple(Col(c, "text") for c in RAW_COLUMNS)
    + (
        Col("reason", "text", False, "the first rule broken"),
        Col(IMPORT_DATE, "date", False, IMPORT_DATE_COL_DESCRIPTION),
    ),
    description="Every raw line that was not kept, as it arrived, with the reason.",
)

SALES_AGGREGATES = PgTable(
    "sales_aggregates",
    (
        Col(IMPORT_DATE, "date", False, "as of this import date: every line imported by then"),
        Col("grain", "text", False, "region | product | region_product"),
        Col("region", "text", True, "NULL at the product grain"),
        Col("product", "text", True, "NULL at the region grain"),
        Col("orders", "bigint", False, "count(distinct order_id): number of checks"),
        Col("sales", "bigint", False, "number of lines"),
        Col("units", "bigint", False, "sum(quantity)"),
        Col("revenue", MONEY_TOTAL, False, "sum(amount)"),
        Col("avg_check", MONEY_TOTAL, False, "round(revenue / orders, 2)"),
        Col("first_sale", "date", False),
        Col("last_sale", "date", False),
    ),
    unique_key=(IMPORT_DATE, "grain", "region", "product"),
    description="Sales metrics per region, per product and per (region, product).",
)

PG_TABLES: dict[str, PgTable] = {t.name: t for t in (CLEANED_SALES, REJECTED_SALES, SALES_AGGREGATES)}


class ChCol(NamedTuple):
    name: str
    type: str  # a ClickHouse type


@dataclass(frozen=True)
class ClickHouseTable(_Table):
    """A MergeTree table with one partition per `partition_by` value (one snapshot per date)."""

    name: str
    columns: tuple[ChCol, ...]
    partition_by: str
    order_by: str
    description: str = ""
    schema: str = SCHEMA  # the ClickHouse database

    @property
    def dagster_schema(self) -> TableSchema:
        return _dagster_schema([(name, type_, "", type_.startswith("Nullable"), False) for name, type_ in self.columns])


# The PostgreSQL aggregates, counts unsigned, stamped with the snapshot's date and load time.
CLICKHOUSE_AGGREGATES = ClickHouseTable(
    "sales_aggregates",
    tuple(
        ChCol(*c)
        for c in (
            ("grain", "String"),
            ("region", "Nullable(String)"),
            ("product", "Nullable(String)"),
            ("orders", "UInt64"),
            ("sales", "UInt64"),
            ("units", "UInt64"),
            ("revenue", CLICKHOUSE_MONEY),
            ("avg_check", CLICKHOUSE_MONEY),
            # Date32 (1900-2299): sales dates of real files reach before 1970, where Date starts
            ("first_sale", "Date32"),
            ("last_sale", "Date32"),
            ("import_date", "Date"),
            ("loaded_at", "DateTime"),
        )
    ),
    partition_by="import_date",
    order_by="(import_date, grain, ifNull(region, ''), ifNull(product, ''))",
    description="One snapshot of the aggregates per import_date; re-loading a date replaces its snapshot.",
)


def _dagster_schema(columns) -> TableSchema:
    # imported here: Spark's Python workers import this module and never need Dagster
    from dagster import TableColumn, TableColumnConstraints, TableSchema

    return TableSchema(
        columns=[
            TableColumn(
                name,
                type_,
                description=description,
                constraints=TableColumnConstraints(nullable=nullable, unique=unique),
            )
            for name, type_, description, nullable, unique in columns
        ]
    )
