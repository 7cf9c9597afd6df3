"""Hand-made files of the kind users export, each through the real run (docs/contract.md, "Reading
files"): standard CSV quoting, offsets, money precision, Unicode whitespace, an all-rejected file,
dates from 1900, and the file-level errors. The expected tables are written out in each test."""

from __future__ import annotations

import codecs
import csv
import random
from datetime import date, datetime
from decimal import Decimal

import pandas as pd
import pytest

from sales_assets.contract import RAW_COLUMNS, canonical_case, normalized_space
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import ch_rows, csv_bytes, failure_messages, materializations, query

pytestmark = pytest.mark.integration
RUN_DATE = "2026-12-01"
TAGS = {RUN_DATE_TAG: RUN_DATE}
HEADER = ",".join(RAW_COLUMNS)


def csv_text(*lines: str) -> str:
    """A CSV file's text: the header, then `lines`, each ended by a line break."""
    return "\n".join([HEADER, *lines]) + "\n"


D = Decimal


def write(tmp_path, name: str, text: str, encoding="utf-8", newline="\n") -> str:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode(encoding))
    return str(path)


def cleaned(pg, columns="sale_id, product, region, quantity, unit_price, amount, sale_ts"):
    return query(pg, f"select {columns} from sales.cleaned_sales order by sale_id")


def rejected(pg, columns="sale_id, reason"):
    return query(pg, f"select {columns} from sales.rejected_sales order by sale_id")


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def pg_aggregates(pg):
    return query(
        pg,
        "select grain, region, product, orders, sales, units, revenue, avg_check, first_sale, "
        "last_sale from sales.sales_aggregates order by grain, region, product",
    )


def test_standard_csv_quoting_with_a_bom_and_crlf(run_job, pg, tmp_path):
    # RFC 4180: "" is one quote, a quoted field holds commas and line breaks, a backslash is a
    # plain character; the file starts with a UTF-8 byte order mark and ends lines with CRLF
    text = "\ufeff" + csv_text(
        '1,10,7,"12"" Pizza",Food,Kazan,1,5.00,5.00,2026-11-01 10:00:00',
        '2,11,7,"Multi\nLine",Food,Kazan,1,2.00,2.00,2026-11-01 10:00:00',
        '3,12,7,"C:\\dir\\",Tools,Kazan,1,3.00,3.00,2026-11-01 10:00:00',
        '4,13,7,"Comma, Inc",Tools,"Omsk",2,1.50,3.00,2026-11-01 10:00:00',
        "5,14,7,Back\\slash,Tools,Omsk,1,1.00,1.00,2026-11-01 10:00:00",
        '6,15,7,"",Tools,Omsk,1,1.00,1.00,2026-11-01 10:00:00',
    )
    result = run_job(tags=TAGS, source_path=write(tmp_path, "quoted.csv", text, newline="\r\n"))
    assert result.success
    assert cleaned(pg, "sale_id, product, region") == [
        (1, '12" Pizza', "Kazan"),
        (2, "Multi Line", "Kazan"),
        (3, "C:\\dir\\", "Kazan"),
        (4, "Comma, Inc", "Omsk"),
        (5, "Back\\slash", "Omsk"),
    ]
    assert rejected(pg) == [("6", "missing_field")]
    # six records, not seven physical lines: the raw row count check agrees
    assert materializations(result)["raw_sales"]["dagster/row_count"] == 6
    raw_check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "raw_row_count_as_requested")
    assert raw_check.passed and raw_check.metadata["expected_rows"].value == 6
    assert query(
        pg,
        "select product, count(*) from sales.sales_aggregates where grain = 'product' "
        "group by product order by product",
    ) == [('12" Pizza', 1), ("Back\\slash", 1), ("C:\\dir\\", 1), ("Comma, Inc", 1), ("Multi Line", 1)]


def test_offsets_are_converted_to_the_sales_time_zone(run_job, pg, tmp_path):
    text = csv_text(
        "1,10,7,Widget,Tools,Kazan,1,2.00,2.00,2026-12-01T23:30:00-05:00",  # 12-02 04:30 UTC: future
        "2,11,7,Widget,Tools,Kazan,1,2.00,2.00,2026-12-02T01:00:00+03:00",  # 12-01 22:00 UTC: kept
        "3,12,7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-15T10:00:00Z",
        "4,13,7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-15 10:00:00",  # no offset: as it is
    )
    assert run_job(tags=TAGS, source_path=write(tmp_path, "offsets.csv", text)).success
    assert cleaned(pg, "sale_id, sale_ts") == [
        (2, datetime(2026, 12, 1, 22, 0)),
        (3, datetime(2026, 11, 15, 10, 0)),
        (4, datetime(2026, 11, 15, 10, 0)),
    ]
    assert rejected(pg) == [("1", "future_date")]


def test_money_is_never_rounded_and_integral_quantities_are_integers(run_job, pg, tmp_path):
    text = csv_text(
        "1,10,7,Widget,Tools,Kazan,1000,10.005,10005.00,2026-11-01 10:00:00",  # a third decimal
        "2,11,7,Widget,Tools,Kazan,1,0.004,0.00,2026-11-01 10:00:00",
        "3,12,7,Widget,Tools,Kazan,2.0,10.000,20.00,2026-11-01 10:00:00",  # pandas' float export
        "4,13,7,Widget,Tools,Kazan,2.5,1.00,2.50,2026-11-01 10:00:00",
        "5,14,7,Widget,Tools,Kazan,3,1.10,3.3000,2026-11-01 10:00:00",
    )
    result = run_job(tags=TAGS, source_path=write(tmp_path, "precision.csv", text))
    assert result.success
    assert cleaned(pg, "sale_id, quantity, unit_price, amount") == [
        (3, 2, D("10.00"), D("20.00")),
        (5, 3, D("1.10"), D("3.30")),
    ]
    assert rejected(pg) == [("1", "unparseable"), ("2", "unparseable"), ("4", "unparseable")]
    assert materializations(result)["cleaned_sales"]["amount_repaired"] == 0
    assert query(pg, "select revenue from sales.sales_aggregates where grain = 'region'") == [(D("23.30"),)]


def test_unicode_whitespace_is_trimmed_and_collapsed_in_names(run_job, pg, ch, tmp_path):
    text = csv_text(
        "1,10,7,Big Box,Tools,Epsilon,1,2.00,2.00,2026-11-01 10:00:00",
        "2,11,7,Big\u00a0Box,Tools,Epsilon\u00a0,1,2.00,2.00,2026-11-02 10:00:00",
        "3,12,7,big \t\u3000box,Tools,\u2003moscow,1,3.00,3.00,2026-11-03 10:00:00",
        "4,13,7,Big Box,Tools,\u00a0\u2003,1,3.00,3.00,2026-11-03 10:00:00",  # blank region: missing
    )
    assert run_job(tags=TAGS, source_path=write(tmp_path, "spaces.csv", text)).success
    assert rejected(pg) == [("4", "missing_field")]
    expected = [
        ("product", None, "Big Box", 3, 3, 3, D("7.00"), D("2.33"), date(2026, 11, 1), date(2026, 11, 3)),
        ("region", "Epsilon", None, 2, 2, 2, D("4.00"), D("2.00"), date(2026, 11, 1), date(2026, 11, 2)),
        ("region", "Moscow", None, 1, 1, 1, D("3.00"), D("3.00"), date(2026, 11, 3), date(2026, 11, 3)),
        ("region_product", "Epsilon", "Big Box", 2, 2, 2, D("4.00"), D("2.00"), date(2026, 11, 1), date(2026, 11, 2)),
        ("region_product", "Moscow", "Big Box", 1, 1, 1, D("3.00"), D("3.00"), date(2026, 11, 3), date(2026, 11, 3)),
    ]
    assert pg_aggregates(pg) == expected
    assert ch_rows(ch, RUN_DATE) == expected


def test_an_all_rejected_file_succeeds_and_both_databases_agree(run_job, pg, ch, tmp_path):
    good = HEADER + "\n1,10,7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-01 10:00:00\n"
    assert run_job(tags=TAGS, source_path=write(tmp_path, "good.csv", good)).success
    assert len(ch_rows(ch, RUN_DATE)) == 3  # a snapshot to be replaced
    bad = csv_text(
        "1,10,7,Widget,Tools,Kazan,0,2.00,0.00,2026-11-01 10:00:00",
        "2,11,7,,Tools,Kazan,1,2.00,2.00,2026-11-01 10:00:00",
        "3,12,7,Widget,Tools,Kazan,1,2.00,2.00,2027-01-01 10:00:00",
    )
    path = write(tmp_path, "all_bad.csv", bad)
    for _ in range(2):  # and a re-run changes nothing
        result = run_job(tags=TAGS, source_path=path)
        assert result.success
        assert cleaned(pg) == [] and pg_aggregates(pg) == []
        assert rejected(pg) == [("1", "non_positive_quantity"), ("2", "missing_field"), ("3", "future_date")]
        assert ch_rows(ch, RUN_DATE) == []  # the date's earlier snapshot is replaced by an empty one
        assert checks(result) == {
            "raw_row_count_as_requested": True,
            "raw_equals_cleaned_plus_rejected": True,
            "cleaned_rows_valid": True,
            "rejected_share_below_threshold": False,  # the warning
            "aggregates_match_cleaned_totals": True,
            "clickhouse_snapshot_matches_postgres": True,
        }
        meta = materializations(result)["sales_aggregates"]
        assert (meta["revenue_total"], meta["orders_total"], meta["dagster/row_count"]) == (0.0, 0, 0)


def test_dates_from_1900_load_into_clickhouse_and_earlier_ones_are_unparseable(run_job, pg, ch, tmp_path):
    text = csv_text(
        "1,10,7,Widget,Tools,Kazan,1,2.00,2.00,1899-12-31 23:59:59",
        "2,11,7,Widget,Tools,Kazan,1,2.00,2.00,1900-01-01 00:00:00",
        "3,12,7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-01 10:00:00",
    )
    result = run_job(tags=TAGS, source_path=write(tmp_path, "old.csv", text))
    assert result.success
    assert rejected(pg) == [("1", "unparseable")]
    rows = {r[0]: r for r in ch_rows(ch, RUN_DATE)}
    assert rows["region"][8:] == (date(1900, 1, 1), date(2026, 11, 1))
    assert checks(result)["clickhouse_snapshot_matches_postgres"]


def test_orders_total_counts_distinct_orders_when_an_order_spans_regions(run_job, pg, tmp_path):
    text = csv_text(
        "1,10,7,Widget,Tools,Kazan,1,2.00,2.00,2026-11-01 10:00:00",
        "2,10,7,Widget,Tools,Omsk,1,3.00,3.00,2026-11-01 10:00:00",  # order 10 again, in another region
        "3,11,7,Widget,Tools,Omsk,1,4.00,4.00,2026-11-01 10:00:00",
    )
    result = run_job(tags=TAGS, source_path=write(tmp_path, "span.csv", text))
    meta = materializations(result)["sales_aggregates"]
    assert (meta["orders_total"], meta["revenue_total"]) == (2, 9.0)  # the region rows sum to 3 orders
    assert sum(r[0] for r in query(pg, "select orders from sales.sales_aggregates where grain = 'region'")) == 3


def test_pandas_parquet_with_nanosecond_timestamps_and_float_quantities(run_job, pg, tmp_path):
    frame = pd.DataFrame(
        {
            "sale_id": [1, 2, 3],
            "order_id": [10, 11, 12],
            "customer_id": [7, 8, 7],
            "product": ["Widget", "Widget", "Widget"],
            "category": ["Tools"] * 3,
            "region": ["Kazan"] * 3,
            "quantity": [2.0, 1.0, 1.5],
            "unit_price": [1.25, 2.0, 1.0],
            "amount": [2.5, 2.0, 1.5],
            "sale_ts": pd.to_datetime(
                ["2026-11-01 10:00:00.123456789", "2026-11-02 11:00:00", "2026-11-03 12:00:00"], format="ISO8601"
            ),
        }
    )
    path = tmp_path / "pandas.parquet"
    frame.to_parquet(path)  # pandas writes datetime64[ns] as Parquet TIMESTAMP(NANOS)
    assert run_job(tags=TAGS, source_path=str(path)).success
    assert cleaned(pg, "sale_id, quantity, unit_price, amount, sale_ts") == [
        (1, 2, D("1.25"), D("2.50"), datetime(2026, 11, 1, 10, 0, 0, 123456)),
        (2, 1, D("2.00"), D("2.00"), datetime(2026, 11, 2, 11, 0)),
    ]
    # 1.5 is not a quantity
    assert rejected(pg, "sale_id, quantity, reason") == [("3", "1.5", "unparseable")]


def test_parquet_instants_keep_their_offset(run_job, pg, tmp_path):
    frame = pd.DataFrame(
        {
            "sale_id": [1],
            "order_id": [10],
            "customer_id": [7],
            "product": ["Widget"],
            "category": ["Tools"],
            "region": ["Kazan"],
            "quantity": [1],
            "unit_price": ["2.00"],
            "amount": ["2.00"],
            "sale_ts": pd.to_datetime(["2026-11-01 10:00:00"]).tz_localize("Europe/Moscow").as_unit("us"),
        }
    )
    path = tmp_path / "aware.parquet"
    frame.to_parquet(path)
    assert run_job(tags=TAGS, source_path=str(path)).success
    assert cleaned(pg, "sale_id, sale_ts") == [(1, datetime(2026, 11, 1, 7, 0))]  # 10:00 Moscow = 07:00 UTC


@pytest.mark.parametrize(
    "name, content, expected",
    [
        (
            "twice.csv",
            (HEADER + ",Region\n" + "1,10,7,W,T,Kazan,1,2.00,2.00,2026-11-01 10:00:00,Omsk\n").encode(),
            "the header has column(s) region more than once",
        ),
        (
            "semicolon.csv",
            (HEADER.replace(",", ";") + "\n1;10;7;W;T;Kazan;1;2.00;2.00;2026-11-01\n").encode(),
            "the header found is 'sale_id;order_id;customer_id",
        ),
        (
            "utf16.csv",
            codecs.BOM_UTF16_LE + (HEADER + "\n1,10,7,W,T,Kazan,1,2.00,2.00,2026-11-01\n").encode("utf-16-le"),
            "is not valid UTF-8: found bytes b'\\xff\\xfes\\x00a",
        ),
        (
            "latin1.csv",
            (HEADER + "\n1,10,7,Caf\u00e9,T,Kazan,1,2.00,2.00,2026-11-01\n").encode("latin-1"),
            "is not valid UTF-8: found bytes b'1,10,7,Caf\\xe9",
        ),
    ],
)
def test_unreadable_files_fail_naming_the_file_and_what_was_found(
    golden_state, run_job, pg, tmp_path, name, content, expected
):
    before = query(pg, "select count(*), sum(amount) from sales.cleaned_sales")
    path = tmp_path / name
    path.write_bytes(content)
    result = run_job(tags=TAGS, source_path=str(path), raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert str(path) in message and expected in message, message
    if name == "utf16.csv":
        assert "UTF-16" in message
    if name == "latin1.csv":
        assert "Latin-1" in message
    assert query(pg, "select count(*), sum(amount) from sales.cleaned_sales") == before  # nothing written


def test_an_old_clickhouse_table_with_date_columns_is_migrated_by_the_load(run_job, ch, tmp_path):
    client = ch.get_client()
    client.command("create database if not exists sales")
    client.command("drop table if exists sales.sales_aggregates")
    client.command(
        "create table sales.sales_aggregates (grain String, region Nullable(String), product Nullable(String), "
        "orders UInt64, sales UInt64, units UInt64, revenue Decimal(18, 2), avg_check Decimal(18, 2), "
        "first_sale Date, last_sale Date, import_date Date, loaded_at DateTime) engine = MergeTree "
        "partition by import_date order by (import_date, grain, ifNull(region, ''), ifNull(product, ''))"
    )
    client.command(
        "insert into sales.sales_aggregates values ('region', 'Old', NULL, 1, 1, 1, 5.00, 5.00, "
        "'2025-01-01', '2025-01-01', '2025-01-02', '2025-01-02 00:00:00')"
    )
    text = HEADER + "\n1,10,7,Widget,Tools,Kazan,1,2.00,2.00,1950-06-01 10:00:00\n"
    assert run_job(tags=TAGS, source_path=write(tmp_path, "fifties.csv", text)).success
    client = ch.get_client()  # the run closed the engine it shared with this process
    types = dict(
        client.query(
            "select name, type from system.columns where database = 'sales' and table = 'sales_aggregates'"
        ).result_rows
    )
    assert types["first_sale"] == types["last_sale"] == "Date32"
    assert ch_rows(ch, "2025-01-02") == [
        ("region", "Old", None, 1, 1, 1, D("5.00"), D("5.00"), date(2025, 1, 1), date(2025, 1, 1))
    ]  # kept
    assert ch_rows(ch, RUN_DATE)[0][8] == date(1950, 6, 1)


def test_what_is_stored_from_awkward_csv_equals_what_pythons_csv_module_reads(run_job, pg, spark, settings, tmp_path):
    # names full of quotes, commas, line breaks and Unicode spaces, written as RFC 4180 says
    rng = random.Random(17)
    pieces = ["a", "Zed", " ", ",", '"', "\\", "\n", "\r\n", "\t", "\u00a0", "\u2003", "\u3000", "é", "🚀", "'"]
    rows = [
        [
            str(i),
            str(100 + i // 2),
            "7",
            "".join(rng.choices(pieces, k=rng.randint(1, 8))),
            "Tools",
            rng.choice(["Kazan", " kazan\u00a0", "KAZAN", "Omsk\t"]),
            "1",
            "2.00",
            "2.00",
            "2026-11-01 10:00:00",
        ]
        for i in range(1, 201)
    ]
    path = tmp_path / "awkward.csv"
    path.write_bytes(csv_bytes(rows, "\n", bom=False, quote_all=False))
    with open(path, newline="", encoding="utf-8") as f:
        expected = {int(r[0]): r for r in list(csv.reader(f))[1:]}
    assert run_job(tags=TAGS, source_path=str(path)).success
    stored = spark.read.parquet(f"{settings.parquet_uri}/raw_sales").collect()  # 200 rows
    assert {int(r["sale_id"]): ["" if r[c] is None else r[c] for c in RAW_COLUMNS] for r in stored} == expected
    kept = dict(query(pg, "select sale_id, product from sales.cleaned_sales"))
    names = {i: normalized_space(r[3]) for i, r in expected.items()}
    assert kept == {i: canonical_case(r[3]) for i, r in expected.items() if names[i]}
    assert dict(query(pg, "select sale_id::int, reason from sales.rejected_sales")) == {
        i: "missing_field" for i in expected if not names[i]
    }
    assert sorted(r[0] for r in query(pg, "select region from sales.sales_aggregates where grain = 'region'")) == [
        "Kazan",
        "Omsk",
    ]
