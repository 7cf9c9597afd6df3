"""Every cleaning rule on hand-made lines whose outcome was worked out by hand."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from sales_assets.contract import RAW_COLUMNS
from sales_assets.transforms.clean import (
    MissingColumnsError,
    classify_sales,
    cleaned_lines,
    delivered_on,
    rejected_lines,
    routed_lines,
)
from sales_assets_tests.helpers import cleaning_counts

RUN_DATE = date(2026, 11, 29)


def line(
    sale_id,
    order_id="10",
    customer_id="5",
    product="Widget",
    category="Gadgets",
    region="Moscow",
    quantity="2",
    unit_price="10.50",
    amount="21.00",
    sale_ts="2026-11-01 10:00:00",
):
    return (sale_id, order_id, customer_id, product, category, region, quantity, unit_price, amount, sale_ts)


LINES = {
    # kept, normalized: trimmed, canonical case, inner whitespace collapsed
    "normalized": line("1", product="  widget   PRO ", category="gadgets", region=" moscow "),
    "second_line_same_order": line("2", quantity="1", unit_price="5.25", amount="5.25"),
    "missing_region": line("3", region="   "),
    "missing_product": line("4", product=None),
    "missing_and_unparseable": line("5", sale_ts=None, quantity="two"),  # first rule wins
    "unparseable_quantity": line("6", quantity="two"),
    "unparseable_ts": line("7", sale_ts="31/02/2026 10:00"),
    "unparseable_amount": line("8", amount="abc"),
    "unparseable_sale_id": line("x9"),
    "zero_quantity": line("10", quantity="0"),
    "negative_price": line("11", unit_price="-1.00"),
    "future": line("12", sale_ts="2026-11-30 00:00:00"),
    "last_second_of_run_date": line("13", sale_ts="2026-11-29 23:59:59"),
    "amount_missing": line("14", amount=""),
    "amount_off": line("15", amount="25.00"),
    "amount_off_by_a_cent": line("16", amount="21.01"),
    # sale 20 arrives twice with different content: the lower quantity wins, whatever the order
    "dup_b": line("20", quantity="3", amount="31.50"),
    "dup_a": line("20", quantity="1", amount="10.50"),
    # sale 21 arrives twice identical, the second copy with messy text
    "dup_same_1": line("21"),
    "dup_same_2": line("21", region="MOSCOW "),
    # a duplicate of a line rejected for another reason is not a duplicate
    "dup_of_rejected_bad": line("22", quantity="0"),
    "dup_of_rejected_good": line("22"),
    # PostgreSQL text cannot hold a NUL byte
    "nul_in_name": line("23", product="Wid\x00get"),
    "nul_in_rejected_raw_text": line("24", customer_id="5\x00", quantity="two"),
}

EXPECTED_REASON = {
    "missing_region": "missing_field",
    "missing_product": "missing_field",
    "missing_and_unparseable": "missing_field",
    "unparseable_quantity": "unparseable",
    "unparseable_ts": "unparseable",
    "unparseable_amount": "unparseable",
    "unparseable_sale_id": "unparseable",
    "zero_quantity": "non_positive_quantity",
    "negative_price": "non_positive_price",
    "future": "future_date",
    "dup_b": "duplicate",
    "dup_same_2": "duplicate",
    "dup_of_rejected_bad": "non_positive_quantity",
    "nul_in_name": "unparseable",
    "nul_in_rejected_raw_text": "unparseable",
}


@pytest.fixture(scope="module")
def classified(spark):
    raw = spark.createDataFrame(list(LINES.values()), ", ".join(f"{c} string" for c in RAW_COLUMNS))
    return classify_sales(delivered_on(raw, RUN_DATE)).cache()


def by_sale_id(rows):
    return {r["sale_id"]: r for r in rows}


def test_each_line_gets_the_first_rule_it_breaks(classified):
    rejected = rejected_lines(classified).collect()
    got = sorted((r["sale_id"], r["quantity"], r["reason"]) for r in rejected)
    want = sorted((LINES[k][0], LINES[k][6], reason) for k, reason in EXPECTED_REASON.items())
    assert got == want


def test_rejected_lines_keep_the_raw_text(classified):
    rejected = {r["sale_id"]: r for r in rejected_lines(classified).collect() if r["reason"] == "missing_field"}
    assert rejected["3"]["region"] == "   "
    assert rejected["4"]["product"] is None


def test_a_nul_byte_rejects_its_name_and_shows_as_a_replacement_character_in_raw_text(classified):
    rejected = by_sale_id(rejected_lines(classified).collect())
    assert rejected["23"]["product"] == "Wid\ufffdget"
    assert rejected["24"]["customer_id"] == "5\ufffd"
    assert not any("\x00" in (r[c] or "") for r in rejected.values() for c in RAW_COLUMNS)


def test_routed_lines_carry_each_line_once_in_its_table_shape(classified):
    # what the one-pass load writes: each line in exactly one struct, the same rows as the split
    routed = routed_lines(classified)
    assert routed.filter("(cleaned_sales is null) = (rejected_sales is null)").count() == 0
    assert sorted(routed.filter("cleaned_sales is not null").select("cleaned_sales.*").collect()) == sorted(
        cleaned_lines(classified).collect()
    )
    assert sorted(routed.filter("rejected_sales is not null").select("rejected_sales.*").collect(), key=repr) == sorted(
        rejected_lines(classified).collect(), key=repr
    )


def test_kept_lines_are_normalized_and_typed(classified):
    kept = by_sale_id(cleaned_lines(classified).collect())
    first = kept[1]
    assert (first["product"], first["category"], first["region"]) == ("Widget Pro", "Gadgets", "Moscow")
    assert first["order_id"] == 10 and first["customer_id"] == 5 and first["quantity"] == 2
    assert first["unit_price"] == Decimal("10.50") and first["amount"] == Decimal("21.00")
    assert first["sale_ts"] == datetime(2026, 11, 1, 10, 0, 0)
    assert kept[13]["sale_ts"] == datetime(2026, 11, 29, 23, 59, 59)  # end of run date is not future


def test_amount_is_repaired_when_missing_or_off_by_more_than_a_cent(classified):
    kept = by_sale_id(cleaned_lines(classified).collect())
    assert kept[14]["amount"] == Decimal("21.00")
    assert kept[15]["amount"] == Decimal("21.00")
    assert kept[16]["amount"] == Decimal("21.01")  # within tolerance: kept as given
    assert cleaning_counts(classified)["amount_repaired"] == 2


def test_duplicates_keep_one_line_deterministically(spark, classified):
    kept = by_sale_id(cleaned_lines(classified).collect())
    assert kept[20]["quantity"] == 1
    assert kept[21]["region"] == "Moscow"
    assert kept[22]["quantity"] == 2  # its twin was rejected for quantity 0, so no duplicate
    reversed_raw = spark.createDataFrame(
        list(reversed(list(LINES.values()))), ", ".join(f"{c} string" for c in RAW_COLUMNS)
    )
    again = classify_sales(delivered_on(reversed_raw.repartition(3), RUN_DATE))
    assert sorted(cleaned_lines(again).collect()) == sorted(cleaned_lines(classified).collect())
    assert sorted(rejected_lines(again).collect()) == sorted(rejected_lines(classified).collect())


def test_every_line_lands_in_exactly_one_table(classified):
    # worked out by hand from LINES, not derived from the code or from EXPECTED_REASON
    kept = sorted(r["sale_id"] for r in cleaned_lines(classified).collect())
    assert kept == [1, 2, 13, 14, 15, 16, 20, 21, 22]
    rejected = sorted(r["sale_id"] for r in rejected_lines(classified).collect())
    assert rejected == sorted(["3", "4", "5", "6", "7", "8", "x9", "10", "11", "12", "20", "21", "22", "23", "24"])
    assert cleaning_counts(classified) == {
        "kept": 9,
        "amount_repaired": 2,  # sales 14 (missing) and 15 (off by 4.00); 16 is within a cent
        "missing_field": 3,
        "unparseable": 6,
        "non_positive_quantity": 2,
        "non_positive_price": 1,
        "future_date": 1,
        "duplicate": 2,
    }


def test_missing_raw_columns_is_a_clear_error(spark):
    raw = spark.createDataFrame([("1", "2")], "sale_id string, order_id string")
    with pytest.raises(MissingColumnsError, match="customer_id"):
        classify_sales(delivered_on(raw, RUN_DATE))


def test_a_line_without_its_import_date_is_a_clear_error(spark):
    raw = spark.createDataFrame([line("1")], ", ".join(f"{c} string" for c in RAW_COLUMNS))
    with pytest.raises(MissingColumnsError, match="import_date"):
        classify_sales(raw)


def test_a_sale_resent_on_a_later_date_is_kept_from_the_earliest_delivery(spark):
    schema = ", ".join(f"{c} string" for c in RAW_COLUMNS)
    # the same sale twice: the later delivery's copy sorts first by content (quantity 1 < 2)
    first = delivered_on(spark.createDataFrame([line("70", quantity="2", amount="21.00")], schema), date(2026, 11, 2))
    again = delivered_on(spark.createDataFrame([line("70", quantity="1", amount="10.50")], schema), date(2026, 11, 3))
    classified = classify_sales(again.unionByName(first))
    kept = cleaned_lines(classified).collect()
    assert [(r["quantity"], r["import_date"]) for r in kept] == [(2, date(2026, 11, 2))]
    assert [(r["quantity"], r["reason"], r["import_date"]) for r in rejected_lines(classified).collect()] == [
        ("1", "duplicate", date(2026, 11, 3))
    ]


def test_future_is_measured_from_the_day_after_each_lines_own_import_date(spark):
    schema = ", ".join(f"{c} string" for c in RAW_COLUMNS)
    sale = "2026-11-03 08:00:00"  # a sale of Nov 3: on time in Nov 3's delivery and later, future before
    deliveries = [
        delivered_on(spark.createDataFrame([line(str(80 + k), sale_ts=sale)], schema), date(2026, 11, 2 + k))
        for k in range(3)
    ]
    classified = classify_sales(deliveries[0].unionByName(deliveries[1]).unionByName(deliveries[2]))
    reasons = {r["sale_id"]: r["reason"] for r in classified.select("sale_id", "reason").collect()}
    assert reasons == {"80": "future_date", "81": None, "82": None}
