"""How single values of real-world files are read: money precision, integral quantities, positive
ids, zones and offsets in `sale_ts`, Unicode whitespace in names (docs/contract.md, "Reading files").
Each case is one line through `classify_sales`; the expected outcome is written out by hand."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from sales_assets.contract import RAW_COLUMNS, canonical_case
from sales_assets.transforms.clean import classify_sales, cleaned_lines, delivered_on

RUN_DATE = date(2026, 11, 29)
GOOD = {
    "sale_id": "1",
    "order_id": "10",
    "customer_id": "5",
    "product": "Widget",
    "category": "Tools",
    "region": "Kazan",
    "quantity": "2",
    "unit_price": "10.50",
    "amount": "21.00",
    "sale_ts": "2026-11-01 10:00:00",
}
SCHEMA = ", ".join(f"{c} string" for c in RAW_COLUMNS)


def outcome(spark, timezone="UTC", **values):
    """(reason, kept row or None) of one line: GOOD with `values` changed."""
    raw = spark.createDataFrame([tuple({**GOOD, **values}[c] for c in RAW_COLUMNS)], SCHEMA)
    classified = classify_sales(delivered_on(raw, RUN_DATE), timezone)
    reason = classified.select("reason").first()["reason"]
    kept = cleaned_lines(classified).first()
    return reason, kept


@pytest.mark.parametrize(
    "values, reason",
    [
        # money has at most two decimals: more is unparseable, never rounded
        ({"quantity": "1000", "unit_price": "10.005", "amount": "10005.00"}, "unparseable"),
        ({"unit_price": "0.004"}, "unparseable"),
        ({"amount": "21.005"}, "unparseable"),
        ({"unit_price": "10.5000000000000000000001", "amount": ""}, "unparseable"),  # however far out
        ({"unit_price": "1.05e1", "amount": ""}, "unparseable"),  # money in exponent notation
        ({"unit_price": "1e1", "amount": ""}, "unparseable"),
        ({"unit_price": "10000000000.00", "quantity": "1", "amount": ""}, "unparseable"),  # beyond numeric(12,2)
        # each value fits numeric(12,2), their product (the amount to store) does not
        ({"unit_price": "9999999999.99", "quantity": "2", "amount": ""}, "unparseable"),
        ({"unit_price": "5000000000.00", "quantity": "2", "amount": "9999999999.99"}, "unparseable"),
        # a fractional quantity is unparseable; ids are positive integers
        ({"quantity": "2.5"}, "unparseable"),
        ({"sale_id": "-7"}, "unparseable"),
        ({"sale_id": "0"}, "unparseable"),
        ({"order_id": "-1"}, "unparseable"),
        ({"customer_id": "-5"}, "unparseable"),
        ({"sale_id": "1.0"}, "unparseable"),
        # before 1900 is unparseable (ClickHouse's Date32 starts there)
        ({"sale_ts": "1899-12-31 23:59:59"}, "unparseable"),
        # an offset that puts the sale after the run's date (UTC): future
        ({"sale_ts": "2026-11-29T23:30:00-05:00"}, "future_date"),
        # Unicode whitespace only is blank, so missing
        ({"region": "\u00a0\u2003"}, "missing_field"),
        ({"quantity": "\u00a0"}, "missing_field"),
    ],
)
def test_rejected(spark, values, reason):
    assert outcome(spark, **values)[0] == reason


@pytest.mark.parametrize(
    "quantity, unit_price",
    [("1", "9999999999.99"), ("3", "3333333333.33")],  # the largest amount numeric(12,2) holds
)
def test_an_amount_at_the_top_of_numeric_12_2_is_kept(spark, quantity, unit_price):
    reason, kept = outcome(spark, quantity=quantity, unit_price=unit_price, amount="")
    assert reason is None and kept["amount"] == Decimal("9999999999.99")


@pytest.mark.parametrize(
    "values, field, expected",
    [
        ({"unit_price": "10.000", "amount": "20.0000"}, "unit_price", Decimal("10.00")),
        ({"quantity": "2.0"}, "quantity", 2),
        ({"quantity": "2.00", "amount": "21"}, "amount", Decimal("21.00")),
        ({"quantity": " 3 ", "amount": "31.50"}, "quantity", 3),
        ({"unit_price": " 10.500 ", "amount": "21.00"}, "unit_price", Decimal("10.50")),
        ({"customer_id": ""}, "customer_id", None),  # optional
        ({"sale_ts": "1900-01-01 00:00:00"}, "sale_ts", datetime(1900, 1, 1)),
        # with an offset or Z: converted to SALES_TIMEZONE (UTC here); without one: read as it is
        ({"sale_ts": "2026-11-29T01:00:00+03:00"}, "sale_ts", datetime(2026, 11, 28, 22, 0)),
        ({"sale_ts": "2026-11-01T10:00:00Z"}, "sale_ts", datetime(2026, 11, 1, 10, 0)),
        ({"sale_ts": "2026-11-01 10:00:00+0530"}, "sale_ts", datetime(2026, 11, 1, 4, 30)),
        ({"sale_ts": "2026-11-01 10:00:00.250 -02:00"}, "sale_ts", datetime(2026, 11, 1, 12, 0, 0, 250000)),
        ({"sale_ts": "2026-11-01"}, "sale_ts", datetime(2026, 11, 1)),  # a date's "-01" is not an offset
        # names: Unicode whitespace trimmed, inner runs collapsed to one ASCII space
        ({"region": "Epsilon\u00a0"}, "region", "Epsilon"),
        ({"product": "Big\u00a0Box"}, "product", "Big Box"),
        ({"region": "\u2003moscow"}, "region", "Moscow"),
        ({"product": "big \t\u3000\n box\u2028"}, "product", "Big Box"),
        ({"category": "multi\r\nline"}, "category", "Multi Line"),
    ],
)
def test_kept(spark, values, field, expected):
    reason, kept = outcome(spark, **values)
    assert reason is None
    assert kept[field] == expected


@pytest.mark.parametrize(
    "text, timezone, wall",
    [
        ("2026-11-01T10:00:00+03:00", "Europe/Moscow", datetime(2026, 11, 1, 10, 0)),
        ("2026-11-01T10:00:00Z", "Europe/Moscow", datetime(2026, 11, 1, 13, 0)),
        ("2026-11-01 10:00:00", "Europe/Moscow", datetime(2026, 11, 1, 10, 0)),  # already Moscow wall time
        ("2026-11-01 10:00:00 America/New_York", "Europe/Moscow", datetime(2026, 11, 1, 18, 0)),
        ("2026-11-01", "America/New_York", datetime(2026, 11, 1)),
    ],
)
def test_sale_ts_in_the_configured_time_zone(spark, text, timezone, wall):
    reason, kept = outcome(spark, timezone=timezone, sale_ts=text)
    assert reason is None
    assert kept["sale_ts"] == wall


def test_the_python_twin_of_the_name_rule_agrees(spark):
    texts = ["\u2003 moscow\u00a0 big\tbox ", "ÜNÏCODE\u3000city", " a\u2028b\u2029c ", "x\u202fy\u205fz"]
    for text in texts:
        assert outcome(spark, product=text)[1]["product"] == canonical_case(text)
