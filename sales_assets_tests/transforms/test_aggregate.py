"""Metrics at each grain on a hand-made set of lines, answers computed by hand."""

from datetime import date, datetime
from decimal import Decimal

import pytest

from sales_assets.contract import CLEANED_SALES, SALES_AGGREGATES
from sales_assets.transforms.aggregate import aggregate_sales

D = Decimal


def cleaned(sale_id, order_id, region, product, quantity, amount, day=1):
    return (
        sale_id,
        order_id,
        1,
        product,
        "Cat",
        region,
        quantity,
        D(amount) / quantity,
        D(amount),
        datetime(2026, 11, day, 12, 0),
        date(2026, 11, day + 1),
    )


LINES = [
    # order 1 (region A): two lines, check = 150.00
    cleaned(1, 1, "A", "P1", 1, "100.00", day=3),
    cleaned(2, 1, "A", "P2", 2, "50.00", day=3),
    # order 2 (region A): one line, check = 10.00
    cleaned(3, 2, "A", "P1", 1, "10.00", day=5),
    # order 3 (region B): two lines of the same product, check = 40.00
    cleaned(4, 3, "B", "P1", 3, "30.00", day=1),
    cleaned(5, 3, "B", "P1", 1, "10.00", day=1),
    # region C: checks 0.01 and 0.04 -> revenue 0.05 over 2 orders = 0.025 -> 0.03 (half up)
    cleaned(6, 5, "C", "P3", 1, "0.01", day=7),
    cleaned(7, 6, "C", "P3", 1, "0.04", day=9),
    # order 7 breaks the one-region rule (possible in an ingested file): it is one order of P4,
    # one order in each of D and E, and one order of (D, P4) and of (E, P4)
    cleaned(8, 7, "D", "P4", 1, "5.00", day=2),
    cleaned(9, 7, "E", "P4", 1, "7.00", day=2),
]

EXPECTED = {
    # (grain, region, product): (orders, sales, units, revenue, avg_check, first, last)
    ("region", "A", None): (2, 3, 4, D("160.00"), D("80.00"), 3, 5),  # avg(amount) would be 53.33
    ("region", "B", None): (1, 2, 4, D("40.00"), D("40.00"), 1, 1),
    ("region", "C", None): (2, 2, 2, D("0.05"), D("0.03"), 7, 9),
    ("region", "D", None): (1, 1, 1, D("5.00"), D("5.00"), 2, 2),
    ("region", "E", None): (1, 1, 1, D("7.00"), D("7.00"), 2, 2),
    ("product", None, "P1"): (3, 4, 6, D("150.00"), D("50.00"), 1, 5),
    ("product", None, "P2"): (1, 1, 2, D("50.00"), D("50.00"), 3, 3),
    ("product", None, "P3"): (2, 2, 2, D("0.05"), D("0.03"), 7, 9),
    ("product", None, "P4"): (1, 2, 2, D("12.00"), D("12.00"), 2, 2),  # one order, not two
    ("region_product", "A", "P1"): (2, 2, 2, D("110.00"), D("55.00"), 3, 5),
    ("region_product", "A", "P2"): (1, 1, 2, D("50.00"), D("50.00"), 3, 3),
    ("region_product", "B", "P1"): (1, 2, 4, D("40.00"), D("40.00"), 1, 1),
    ("region_product", "C", "P3"): (2, 2, 2, D("0.05"), D("0.03"), 7, 9),
    ("region_product", "D", "P4"): (1, 1, 1, D("5.00"), D("5.00"), 2, 2),
    ("region_product", "E", "P4"): (1, 1, 1, D("7.00"), D("7.00"), 2, 2),
}


@pytest.fixture(scope="module")
def aggregates(spark):
    frame = spark.createDataFrame(LINES, CLEANED_SALES.spark_schema)
    return aggregate_sales(frame).collect()


def test_columns_in_contract_order(aggregates):
    assert ["import_date", *aggregates[0].asDict()] == SALES_AGGREGATES.column_names  # the asset stamps the date


def test_every_group_at_every_grain(aggregates):
    got = {
        (r["grain"], r["region"], r["product"]): (
            r["orders"],
            r["sales"],
            r["units"],
            r["revenue"],
            r["avg_check"],
            r["first_sale"].day,
            r["last_sale"].day,
        )
        for r in aggregates
    }
    assert got == EXPECTED
    assert all(
        r["first_sale"] == date(2026, 11, EXPECTED[(r["grain"], r["region"], r["product"])][5]) for r in aggregates
    )


def test_avg_check_is_per_order_not_per_line(aggregates):
    region_a = next(r for r in aggregates if r["grain"] == "region" and r["region"] == "A")
    avg_line_amount = D("160.00") / 3
    assert region_a["avg_check"] == D("80.00") != round(avg_line_amount, 2)
