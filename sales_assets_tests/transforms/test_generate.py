"""Generation: exact size, determinism, order structure, dates, dirt of every kind."""

from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from sales_assets.contract import RAW_COLUMNS, REJECT_REASONS, canonical_case
from sales_assets.transforms.clean import classify_sales, cleaned_lines
from sales_assets.transforms.generate import build_pools, generate_raw_sales
from sales_assets_tests.conftest import cleaning_counts

RUN_DATE = date(2026, 11, 29)


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


def test_dirt_of_every_kind_in_about_the_requested_share(raw):
    counts = cleaning_counts(classify_sales(raw, RUN_DATE))
    for reason in REJECT_REASONS:
        assert counts.get(reason, 0) > 0, reason
    assert counts["amount_repaired"] > 0
    rejected = sum(counts.get(r, 0) for r in REJECT_REASONS)
    # 6 of the 7 dirty kinds are rejections: expect ~0.1 * 6/7 of 4000 = ~343
    assert 250 < rejected < 450


def test_clean_generation_rejects_nothing(spark):
    raw = generate_raw_sales(spark, rows=2000, seed=3, run_date=RUN_DATE, dirty_fraction=0.0)
    counts = cleaning_counts(classify_sales(raw, RUN_DATE))
    assert counts["kept"] == 2000 and counts["amount_repaired"] == 0


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
