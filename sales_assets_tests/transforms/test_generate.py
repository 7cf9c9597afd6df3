"""Generation: exact size per date and per year, determinism, ids, order structure, dates, dirt of every kind."""

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from sales_assets.contract import RAW_COLUMNS, REJECT_REASONS, canonical_case
from sales_assets.transforms.clean import classify_sales, cleaned_lines
from sales_assets.transforms.generate import (
    CYCLE_DAYS,
    build_pools,
    day_number,
    generate_raw_sales,
    lines_on,
    lines_per_date,
)
from sales_assets_tests.helpers import cleaning_counts

RUN_DATE = date(2026, 11, 29)
FIRST_DATE = RUN_DATE - timedelta(days=CYCLE_DAYS - 1)
REQUIRED = ("sale_id", "order_id", "product", "region", "quantity", "unit_price", "sale_ts")


def year_of(spark, **kwargs):
    return generate_raw_sales(spark, **{"first_date": FIRST_DATE, "last_date": RUN_DATE, **kwargs})


@pytest.fixture(scope="module")
def raw(spark):
    return year_of(spark, rows=4000, seed=7, dirty_fraction=0.1).cache()


def test_exact_row_count_and_text_columns(raw):
    assert raw.count() == 4000
    assert raw.columns == [*RAW_COLUMNS, "import_date"]
    assert {t for c, t in raw.dtypes if c != "import_date"} == {"string"}
    assert dict(raw.dtypes)["import_date"] == "date"


@pytest.mark.parametrize("rows", [365, 366, 1_000_000, 1_000_003])
def test_any_365_consecutive_dates_hold_exactly_rows(rows):
    counts = lines_per_date(rows)
    assert sum(counts) == rows and min(counts) >= 0
    for start in (date(2025, 1, 1), date(2025, 7, 15), date(2026, 2, 27), date(2031, 12, 31)):
        assert sum(lines_on(start + timedelta(days=k), rows) for k in range(CYCLE_DAYS)) == rows
    if rows == 1_000_000:  # weekday and season show: the busiest date holds well over the quietest
        assert max(counts) > 1.4 * min(counts)


def test_every_date_holds_its_own_count_of_lines(raw):
    per_date = dict(raw.groupBy("import_date").count().collect())
    assert len(per_date) == CYCLE_DAYS and min(per_date) == FIRST_DATE and max(per_date) == RUN_DATE
    assert all(n == lines_on(d, 4000) for d, n in per_date.items())


def test_a_date_alone_equals_the_same_date_in_a_range(spark, raw):
    day = RUN_DATE - timedelta(days=40)
    alone = generate_raw_sales(spark, rows=4000, seed=7, first_date=day, last_date=day, dirty_fraction=0.1)
    inside = raw.filter(F.col("import_date") == day)
    assert alone.count() == lines_on(day, 4000) > 0
    assert alone.exceptAll(inside).count() == 0 and inside.exceptAll(alone).count() == 0


def test_ids_are_the_date_number_and_the_line_whatever_the_rows(spark):
    day = RUN_DATE - timedelta(days=3)
    base = day_number(day) * 2**32
    ids = {}
    for rows in (4000, 9000):
        lines = generate_raw_sales(spark, rows=rows, seed=7, first_date=day, last_date=day, dirty_fraction=0.0)
        ids[rows] = sorted(int(r[0]) for r in lines.select("sale_id").collect())
        assert ids[rows] == list(range(base, base + lines_on(day, rows)))
    assert ids[4000] == ids[9000][: len(ids[4000])]


def test_same_seed_same_rows_other_seed_other_rows(spark, raw):
    again = year_of(spark, rows=4000, seed=7, dirty_fraction=0.1, num_partitions=3)  # partitioning does not matter
    assert again.exceptAll(raw).count() == 0 and raw.exceptAll(again).count() == 0
    other = year_of(spark, rows=4000, seed=8, dirty_fraction=0.1)
    assert other.exceptAll(raw).count() > 3000


def test_orders_have_one_to_five_lines_sharing_customer_region_time_and_date(raw):
    kept = cleaned_lines(classify_sales(raw))
    per_order = kept.groupBy("order_id").agg(
        F.count(F.lit(1)).alias("lines"),
        F.count_distinct("customer_id", "region", "sale_ts", "import_date").alias("variants"),
    )
    stats = per_order.agg(F.min("lines"), F.max("lines"), F.max("variants"), F.avg("lines")).first()
    assert stats[0] == 1 and stats[1] == 5 and stats[2] == 1
    assert 1.5 < stats[3] < 3.5


def test_a_delivery_holds_the_sales_of_the_day_before_its_import_date(raw):
    kept = cleaned_lines(classify_sales(raw))
    days_before = {r[0] for r in kept.selectExpr("datediff(import_date, to_date(sale_ts))").distinct().collect()}
    assert days_before == {1}
    low, high = kept.agg(F.min("sale_ts"), F.max("sale_ts")).first()
    assert low >= datetime.combine(FIRST_DATE - timedelta(days=1), datetime.min.time())
    assert high < datetime.combine(RUN_DATE, datetime.min.time())


def dirt_measured_without_the_cleaner(raw) -> dict[str, int]:
    """Lines of each dirty kind, by rules written here from the contract (first rule wins, as in
    cleaning), not by the cleaner under test: the generator writes plain digits, two-decimal money
    and ISO timestamps, so a regular expression tells a value it spoiled."""
    blank = " OR ".join(f"coalesce(trim({c}), '') = ''" for c in REQUIRED)
    money = "RLIKE '^-?[0-9]+[.][0-9]{2}$'"
    unparseable = (
        f"NOT quantity RLIKE '^-?[0-9]+$' OR NOT unit_price {money} OR (amount IS NOT NULL AND NOT amount {money}) "
        "OR NOT sale_ts RLIKE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}$'"
    )
    lines = raw.selectExpr(
        "*",
        f"CASE WHEN {blank} THEN 'missing_field' WHEN {unparseable} THEN 'unparseable' "
        "WHEN CAST(quantity AS BIGINT) <= 0 THEN 'non_positive_quantity' "
        "WHEN CAST(unit_price AS DECIMAL(20,2)) <= 0 THEN 'non_positive_price' "
        "WHEN sale_ts >= CAST(date_add(import_date, 1) AS STRING) THEN 'future_date' END AS kind",
    )
    counts = {r["kind"]: r["count"] for r in lines.groupBy("kind").count().collect() if r["kind"]}
    valid = lines.filter("kind IS NULL")
    distinct = valid.dropDuplicates(["sale_id"])  # a generated duplicate repeats its line
    counts["duplicate"] = valid.count() - distinct.count()
    counts["amount_repaired"] = distinct.filter(
        "amount IS NULL OR abs(CAST(amount AS DECIMAL(20,2)) - CAST(quantity AS BIGINT) * "
        "CAST(unit_price AS DECIMAL(20,2))) > 0.01"
    ).count()
    counts["kept"] = distinct.count()
    return counts


def test_dirt_of_every_kind_in_about_the_requested_share(raw):
    measured = dirt_measured_without_the_cleaner(raw)
    for kind in (*REJECT_REASONS, "amount_repaired"):
        assert measured.get(kind, 0) > 0, kind
    rejected = sum(measured.get(r, 0) for r in REJECT_REASONS)
    # 6 of the 7 dirty kinds are rejections: expect ~0.1 * 6/7 of 4000 = ~343
    assert 250 < rejected < 450
    # and the cleaner finds exactly that dirt
    assert cleaning_counts(classify_sales(raw)) == measured


def test_clean_generation_has_no_dirt(spark):
    raw = year_of(spark, rows=2000, seed=3, dirty_fraction=0.0)
    assert dirt_measured_without_the_cleaner(raw) == {"duplicate": 0, "amount_repaired": 0, "kept": 2000}


def test_pools_are_seeded_and_already_canonical():
    pools = build_pools(42)
    assert pools == build_pools(42)
    assert len(set(pools.products)) == len(pools.products) >= 40
    assert all(canonical_case(n) == n for n in pools.products + pools.regions)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rows": 0},
        {"rows": -5},
        {"rows": 364},
        {"first_date": RUN_DATE + timedelta(days=1)},
        {"dirty_fraction": 1.5},
    ],
)
def test_bad_parameters_are_errors(spark, kwargs):
    with pytest.raises(ValueError):
        year_of(spark, seed=1, **{"rows": 1000, **kwargs})
