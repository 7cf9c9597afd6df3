"""The stored tables against docs/contract.md, written out here literally (not read from
`sales_assets.contract`, which generates the DDL): a change to the spec that breaks the contract
fails here. Compared with information_schema and system.columns after a real run."""

from __future__ import annotations

import pytest

from sales_assets_tests.helpers import query

pytestmark = pytest.mark.integration

# (column, type, nullable), in order. docs/contract.md "Tables": money numeric(12,2) per line and
# numeric(18,2) for totals; a kept line has every field the cleaning rules require (customer_id and
# category may be missing); rejected lines keep the raw text as it arrived, with a reason; every line
# and every aggregate carries its import date.
CLEANED_SALES = [
    ("sale_id", "bigint", False),
    ("order_id", "bigint", False),
    ("customer_id", "bigint", True),
    ("product", "text", False),
    ("category", "text", True),
    ("region", "text", False),
    ("quantity", "integer", False),
    ("unit_price", "numeric(12,2)", False),
    ("amount", "numeric(12,2)", False),
    ("sale_ts", "timestamp without time zone", False),
    ("import_date", "date", False),
]
RAW = [
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
]
REJECTED_SALES = [(name, "text", True) for name in RAW] + [("reason", "text", False), ("import_date", "date", False)]
SALES_AGGREGATES = [
    ("import_date", "date", False),
    ("grain", "text", False),
    ("region", "text", True),
    ("product", "text", True),
    ("orders", "bigint", False),
    ("sales", "bigint", False),
    ("units", "bigint", False),
    ("revenue", "numeric(18,2)", False),
    ("avg_check", "numeric(18,2)", False),
    ("first_sale", "date", False),
    ("last_sale", "date", False),
]
CLICKHOUSE_AGGREGATES = [
    ("grain", "String"),
    ("region", "Nullable(String)"),
    ("product", "Nullable(String)"),
    ("orders", "UInt64"),
    ("sales", "UInt64"),
    ("units", "UInt64"),
    ("revenue", "Decimal(18, 2)"),
    ("avg_check", "Decimal(18, 2)"),
    ("first_sale", "Date32"),
    ("last_sale", "Date32"),
    ("import_date", "Date"),
    ("loaded_at", "DateTime"),
]


@pytest.fixture
def stored(golden_state):
    """The tables as the golden run created them."""


def _pg_columns(pg, table: str) -> list[tuple]:
    rows = query(
        pg,
        "select column_name, data_type, numeric_precision, numeric_scale, is_nullable "
        "from information_schema.columns where table_schema = 'sales' and table_name = %s order by ordinal_position",
        (table,),
    )
    return [
        (name, f"{kind}({precision},{scale})" if kind == "numeric" else kind, nullable == "YES")
        for name, kind, precision, scale, nullable in rows
    ]


@pytest.mark.parametrize(
    ("table", "expected"),
    [("cleaned_sales", CLEANED_SALES), ("rejected_sales", REJECTED_SALES), ("sales_aggregates", SALES_AGGREGATES)],
)
def test_postgres_tables_are_the_contracts(stored, pg, table, expected):
    assert _pg_columns(pg, table) == expected


def test_postgres_keys_are_the_contracts(stored, pg):
    keys = query(
        pg,
        "select tc.table_name, tc.constraint_type, string_agg(k.column_name, ',' order by k.ordinal_position) "
        "from information_schema.table_constraints tc join information_schema.key_column_usage k "
        "using (constraint_schema, constraint_name) where tc.table_schema = 'sales' "
        "and tc.constraint_type in ('PRIMARY KEY', 'UNIQUE') group by 1, 2, tc.constraint_name order by 1",
    )
    assert keys == [
        ("cleaned_sales", "PRIMARY KEY", "sale_id"),
        ("sales_aggregates", "UNIQUE", "import_date,grain,region,product"),
    ]
    # one row per group: the NULL region or product of a grain counts as a value
    (nulls_not_distinct,) = query(
        pg,
        "select i.indnullsnotdistinct from pg_index i join pg_class c on c.oid = i.indexrelid "
        "join pg_namespace n on n.oid = c.relnamespace join pg_class t on t.oid = i.indrelid "
        "where n.nspname = 'sales' and t.relname = 'sales_aggregates' and i.indisunique",
    )
    assert nulls_not_distinct == (True,)


def test_clickhouse_table_is_the_contracts(stored, ch):
    client = ch.get_client()
    columns = client.query(
        "select name, type from system.columns where database = 'sales' and table = 'sales_aggregates' "
        "order by position"
    ).result_rows
    assert [tuple(c) for c in columns] == CLICKHOUSE_AGGREGATES
    ((engine, partition_key),) = client.query(
        "select engine, partition_key from system.tables where database = 'sales' and name = 'sales_aggregates'"
    ).result_rows
    assert (engine, partition_key) == ("MergeTree", "import_date")
