"""The stored tables of the contract (docs/contract.md, "Tables"), defined once.

Each `PgTable` gives the PostgreSQL DDL, the Arrow schema the binary COPY needs, the Spark schema
the DataFrame is cast to, and the `TableSchema` the Dagster UI shows: one definition, four views.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import pyarrow as pa

from sales_assets.transforms.schema import RAW_COLUMNS

if TYPE_CHECKING:
    from dagster import TableSchema

SCHEMA = "sales"
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")


def checked_identifier(name: str) -> str:
    """A plain lower-case SQL identifier, or an error: names are never spliced in unchecked."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"invalid SQL identifier {name!r}")
    return name


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
        return {"bigint": pa.int64(), "integer": pa.int32(), "text": pa.string(),
                "timestamp": pa.timestamp("us"), "date": pa.date32()}[self.pg_type]

    @property
    def spark_type(self) -> str:
        if m := _NUMERIC.match(self.pg_type):
            return f"decimal({m[1]},{m[2]})"
        return {"bigint": "bigint", "integer": "int", "text": "string",
                "timestamp": "timestamp_ntz", "date": "date"}[self.pg_type]


@dataclass(frozen=True)
class PgTable:
    name: str
    columns: tuple[Col, ...]
    primary_key: tuple[str, ...] = ()
    # unique key over nullable columns (NULLS NOT DISTINCT), e.g. one row per group and grain
    unique_key: tuple[str, ...] = ()
    description: str = ""
    schema: str = field(default=SCHEMA)

    def __post_init__(self):
        for ident in (self.schema, self.name, *(c.name for c in self.columns)):
            checked_identifier(ident)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def project(self, names) -> "PgTable":
        """The table seen through some of its columns (in table order), e.g. to read only those."""
        wanted = set(names)
        if unknown := sorted(wanted - set(self.column_names)):
            raise KeyError(f"{self.qualified} has no column(s) {', '.join(unknown)}")
        return replace(self, columns=tuple(c for c in self.columns if c.name in wanted))

    def create_sql(self, name: str | None = None) -> str:
        cols = [f"{c.name} {c.pg_type}{'' if c.nullable else ' not null'}" for c in self.columns]
        return f"create table {self.schema}.{checked_identifier(name or self.name)} ({', '.join(cols)})"

    def key_sql(self, name: str | None = None) -> list[str]:
        """Keys added after the bulk load (building an index once is faster than per row)."""
        table = f"{self.schema}.{checked_identifier(name or self.name)}"
        stmts = []
        if self.primary_key:
            stmts.append(f"alter table {table} add primary key ({', '.join(self.primary_key)})")
        if self.unique_key:
            stmts.append(f"alter table {table} add unique nulls not distinct ({', '.join(self.unique_key)})")
        return stmts

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
        # imported here: Spark's Python workers import this module, and Dagster costs them ~1.3 s
        from dagster import TableColumn, TableColumnConstraints, TableSchema

        return TableSchema(columns=[
            TableColumn(c.name, c.pg_type, description=c.description,
                        constraints=TableColumnConstraints(nullable=c.nullable,
                                                           unique=self.primary_key == (c.name,)))
            for c in self.columns
        ])


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
        Col("unit_price", "numeric(12,2)", False, "> 0"),
        Col("amount", "numeric(12,2)", False, "quantity * unit_price (to the cent)"),
        Col("sale_ts", "timestamp", False, "not after the run's date"),
    ),
    primary_key=("sale_id",),
    description="Typed, valid, deduplicated sales lines.",
)

REJECTED_SALES = PgTable(
    "rejected_sales",
    tuple(Col(c, "text") for c in RAW_COLUMNS) + (Col("reason", "text", False, "the first rule broken"),),
    description="Every raw line that was not kept, as it arrived, with the reason.",
)

SALES_AGGREGATES = PgTable(
    "sales_aggregates",
    (
        Col("grain", "text", False, "region | product | region_product"),
        Col("region", "text", True, "NULL at the product grain"),
        Col("product", "text", True, "NULL at the region grain"),
        Col("orders", "bigint", False, "count(distinct order_id): number of checks"),
        Col("sales", "bigint", False, "number of lines"),
        Col("units", "bigint", False, "sum(quantity)"),
        # sums outgrow numeric(12,2) at scale; 18 digits match ClickHouse's Decimal(18,2)
        Col("revenue", "numeric(18,2)", False, "sum(amount)"),
        Col("avg_check", "numeric(18,2)", False, "round(revenue / orders, 2)"),
        Col("first_sale", "date", False),
        Col("last_sale", "date", False),
    ),
    unique_key=("grain", "region", "product"),
    description="Sales metrics per region, per product and per (region, product).",
)

PG_TABLES: dict[str, PgTable] = {t.name: t for t in (CLEANED_SALES, REJECTED_SALES, SALES_AGGREGATES)}
