"""Generation: exact size, determinism, order structure, dates, dirt of every kind."""

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from sales_assets.contract import RAW_COLUMNS, REJECT_REASONS, canonical_case
from sales_assets.transforms.clean import classify_sales, cleaned_lines
from sales_assets.transforms.generate import build_pools, generate_raw_sales
from sales_assets_tests.helpers import cleaning_counts

RUN_DATE = date(2026, 11, 29)
REQUIRED = ("sale_id", "order_id", "product", "region", "quantity", "unit_price", "sale_ts")


@pytest.fixture(scope="module")
def raw(spark):
    return generate_raw_sales(spark, rows=4000, seed=7, run_date=RUN_DATE, dirty_fraction=0.1).cache()


def test_exact_row_count_and_text_columns(raw):
    assert raw.count() == 4000
    assert raw.columns == list(RAW_COLUMNS)
    assert {t for _, t in raw.dtypes} == {"string"}


def test_same_seed_same_rows_other_seed_other_rows(spark, raw):
    again = generate_raw_sales(
        spark, rows=4000, seed=7, run_date=RUN_DATE, dirty_fraction=0.1, num_partitions=3
    )  # partitioning does not matter
    assert again.exceptAll(raw).count() == 0 and raw.exceptAll(again).count() == 0
    other = generate_raw_sales(spark, rows=4000, seed=8, run_date=RUN_DATE, dirty_fraction=0.1)
    assert other.exceptAll(raw).count() > 3000


def test_orders_have_one_to_five_lines_sharing_customer_region_time(raw):
    kept = cleaned_lines(classify_sales(raw, RUN_DATE))
    per_order = kept.groupBy("order_id").agg(
        F.count(F.lit(1)).alias("lines"),
        F.count_distinct("customer_id", "region", "sale_ts").alias("variants"),
    )
    stats = per_order.agg(F.min("lines"), F.max("lines"), F.max("variants"), F.avg("lines")).first()
    assert stats[0] == 1 and stats[1] == 5 and stats[2] == 1
    assert 1.5 < stats[3] < 3.5


def test_dates_fall_in_the_days_before_the_run_date(raw):
    kept = cleaned_lines(classify_sales(raw, RUN_DATE))
    low, high = kept.agg(F.min("sale_ts"), F.max("sale_ts")).first()
    assert low >= datetime.combine(RUN_DATE - timedelta(days=365), datetime.min.time())
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
    tomorrow = f"{RUN_DATE + timedelta(days=1)} 00:00:00"
    lines = raw.selectExpr(
        "*",
        f"CASE WHEN {blank} THEN 'missing_field' WHEN {unparseable} THEN 'unparseable' "
        "WHEN CAST(quantity AS BIGINT) <= 0 THEN 'non_positive_quantity' "
        "WHEN CAST(unit_price AS DECIMAL(20,2)) <= 0 THEN 'non_positive_price' "
        f"WHEN sale_ts >= '{tomorrow}' THEN 'future_date' END AS kind",
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
    assert cleaning_counts(classify_sales(raw, RUN_DATE)) == measured


def test_clean_generation_has_no_dirt(spark):
    raw = generate_raw_sales(spark, rows=2000, seed=3, run_date=RUN_DATE, dirty_fraction=0.0)
    assert dirt_measured_without_the_cleaner(raw) == {"duplicate": 0, "amount_repaired": 0, "kept": 2000}


def test_pools_are_seeded_and_already_canonical():
    pools = build_pools(42)
    assert pools == build_pools(42)
    assert len(set(pools.products)) == len(pools.products) >= 40
    assert all(canonical_case(n) == n for n in pools.products + pools.regions)


@pytest.mark.parametrize(
    "kwargs", [{"rows": 0}, {"rows": -5}, {"rows": 10, "days": 0}, {"rows": 10, "dirty_fraction": 1.5}]
)
def test_bad_parameters_are_errors(spark, kwargs):
    with pytest.raises(ValueError):
        generate_raw_sales(spark, seed=1, run_date=RUN_DATE, **{"rows": 10, **kwargs})
