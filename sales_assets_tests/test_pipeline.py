"""The real Definitions materialized against the embedded PostgreSQL and the ClickHouse engine,
then the tables queried for the contract."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from sales_assets.contract import PG_TABLES, RAW_COLUMNS, REJECT_REASONS
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.summary import print_summary
from sales_assets_tests.helpers import GOLDEN_CONFIG, GOLDEN_DATE, ch_rows, materializations, query, table_digest

pytestmark = pytest.mark.integration

ROWS = GOLDEN_CONFIG["rows"]
RUN_DATE = GOLDEN_DATE


@pytest.fixture
def first_run(golden_state):
    """The golden run (3,000 lines, 5% dirty) and what it stored."""
    return golden_state.result


def test_every_asset_is_materialized(first_run):
    assert set(materializations(first_run)) == {
        "raw_sales",
        "cleaned_sales",
        "rejected_sales",
        "sales_aggregates",
        "clickhouse_sales_aggregates",
    }
    assert materializations(first_run)["raw_sales"]["dagster/row_count"] == ROWS


def test_the_run_leaves_nothing_cached_in_a_long_lived_spark_session(golden):
    # the aggregates are cached for their metadata and their load, then released
    assert golden.cached_after == set()


def test_cleaned_sales_has_its_primary_key_and_no_staging_tables_remain(first_run, pg):
    assert query(
        pg, "select conname from pg_constraint where conrelid = 'sales.cleaned_sales'::regclass and contype = 'p'"
    ) == [("cleaned_sales_pkey",)]
    assert query(pg, "select tablename from pg_tables where schemaname = 'sales' and tablename like '\\_stage%%'") == []


def test_raw_sales_parquet_skips_the_dictionary_only_for_nearly_unique_columns(first_run, settings):
    import pyarrow.parquet as pq

    from sales_assets.assets.ingest import PLAIN_RAW_COLUMNS

    part = next((Path(settings.parquet_uri) / "raw_sales").glob("part-*.parquet"))
    row_group = pq.read_metadata(part).row_group(0)
    dictionary = {
        row_group.column(i).path_in_schema: row_group.column(i).has_dictionary_page
        for i in range(row_group.num_columns)
    }
    assert dictionary == {c: c not in PLAIN_RAW_COLUMNS for c in (*RAW_COLUMNS, "import_date")}


def test_raw_equals_cleaned_plus_rejected_per_reason(first_run, pg, spark, settings):
    raw = spark.read.parquet(f"{settings.parquet_uri}/raw_sales").count()
    cleaned = query(pg, "select count(*) from sales.cleaned_sales")[0][0]
    per_reason = dict(query(pg, "select reason, count(*) from sales.rejected_sales group by reason"))
    assert raw == ROWS == cleaned + sum(per_reason.values())
    assert materializations(first_run)["raw_sales"]["dagster/row_count"] == raw  # counted by the write
    assert set(per_reason) == set(REJECT_REASONS)
    meta = materializations(first_run)["rejected_sales"]
    assert {r: meta[f"rejected_{r}"] for r in REJECT_REASONS} == per_reason


def test_each_loaded_table_shows_where_its_load_time_went(first_run):
    for asset in ("cleaned_sales", "rejected_sales", "sales_aggregates"):
        meta = materializations(first_run)[asset]
        phases = meta["load_phase_seconds"]
        assert list(phases) == ["lock", "prepare", "copy", "count", "keys", "analyze", "swap"], asset
        assert sum(phases.values()) <= meta["load_seconds"] + 0.005, asset  # each rounded to the ms


def test_cleaned_rows_satisfy_the_contract(first_run, pg):
    bad = query(
        pg,
        """
        select count(*) filter (where quantity <= 0 or unit_price <= 0),
               count(*) filter (where abs(amount - quantity * unit_price) > 0.01),
               count(*) filter (where sale_ts >= %s::date + 1),
               count(*) filter (where region <> initcap(region) or product <> initcap(product))
        from sales.cleaned_sales""",
        (RUN_DATE,),
    )[0]
    assert bad == (0, 0, 0, 0)


def test_aggregates_equal_the_metrics_recomputed_in_postgres(first_run, pg):
    # as of the run's date: every line imported by then (all of them)
    recomputed = f"""
        select date '{RUN_DATE}' as import_date,
               case when grouping(region) = 1 then 'product' when grouping(product) = 1 then 'region'
                    else 'region_product' end as grain,
               region, product, count(distinct order_id) as orders, count(*) as sales,
               sum(quantity) as units, sum(amount) as revenue,
               round(sum(amount) / count(distinct order_id), 2) as avg_check,
               min(sale_ts)::date as first_sale, max(sale_ts)::date as last_sale
        from sales.cleaned_sales where import_date <= date '{RUN_DATE}'
        group by grouping sets ((region), (product), (region, product))"""
    stored = "select * from sales.sales_aggregates"
    diff = (
        query(pg, f"select count(*) from (({recomputed}) except all ({stored})) d")[0][0]
        + query(pg, f"select count(*) from (({stored}) except all ({recomputed})) d")[0][0]
    )
    assert diff == 0
    grains = dict(query(pg, "select grain, count(*) from sales.sales_aggregates group by grain"))
    assert set(grains) == {"region", "product", "region_product"}


def test_aggregates_metadata_shows_the_top_regions_by_revenue_and_the_totals(first_run, pg):
    meta = materializations(first_run)["sales_aggregates"]
    regions = query(
        pg,
        "select region, orders, revenue, avg_check from sales.sales_aggregates "
        "where grain = 'region' order by revenue desc, region",
    )
    shown = [line.strip("| ").split(" | ") for line in meta["top_regions"].splitlines()[2:]]
    assert shown == [[r, f"{o:,}", f"{rev:,}", f"{avg:,}"] for r, o, rev, avg in regions[:10]]
    assert meta["revenue_total"] == float(sum(r[2] for r in regions))
    assert meta["orders_total"] == query(pg, "select count(distinct order_id) from sales.cleaned_sales")[0][0]


def test_clickhouse_snapshot_equals_postgres_aggregates(first_run, pg, ch):
    pg_rows = query(
        pg,
        "select grain, region, product, orders, sales, units, revenue, avg_check, "
        "first_sale, last_sale from sales.sales_aggregates "
        'order by grain, region collate "C", product collate "C"',
    )
    got = ch_rows(ch, RUN_DATE)
    assert len(got) == len(pg_rows) > 0
    assert sorted(got, key=repr) == sorted(pg_rows, key=repr)
    assert all(isinstance(r[6], Decimal) and isinstance(r[7], Decimal) for r in got)
    types = dict(
        ch.get_client()
        .query("select name, type from system.columns where database = 'sales' and table = 'sales_aggregates'")
        .result_rows
    )
    assert types["revenue"] == types["avg_check"] == "Decimal(18, 2)"
    assert types["orders"] == "UInt64" and types["import_date"] == "Date"
    assert types["region"] == "Nullable(String)"


def test_the_run_summary_reports_the_stored_tables_and_where_the_run_is(first_run, instance, settings, pg, capsys):
    print_summary(first_run, instance, settings, wall_seconds=12.34)
    out = capsys.readouterr().out
    ((cleaned, rejected),) = query(
        pg, "select (select count(*) from sales.cleaned_sales), (select count(*) from sales.rejected_sales)"
    )
    ((revenue,),) = query(pg, "select sum(revenue) from sales.sales_aggregates where grain = 'region'")
    assert "SUCCESS in 12.3 s" in out
    assert re.search(rf"raw rows +{ROWS:,}\n", out)
    assert re.search(rf"cleaned rows +{cleaned:,} ", out) and re.search(rf"rejected rows +{rejected:,}\n", out)
    assert f"PostgreSQL {revenue:,.2f}   ClickHouse {revenue:,.2f}   (import_date {RUN_DATE})" in out
    assert f"in the UI       make dev, then http://localhost:3000/runs/{first_run.run_id}" in out


def test_a_second_run_the_same_day_changes_nothing(first_run, run_job, pg, ch):
    before = {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES}
    ch_before = ch_rows(ch, RUN_DATE)
    for _ in range(2):  # a re-run of a re-run too
        assert run_job(tags={RUN_DATE_TAG: RUN_DATE}, **GOLDEN_CONFIG).success
        assert {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES} == before
        assert ch_rows(ch, RUN_DATE) == ch_before
    per_date = (
        ch.get_client()
        .query(
            "select count() from sales.sales_aggregates where import_date = {d:Date}",
            parameters={"d": date.fromisoformat(RUN_DATE)},
        )
        .result_rows[0][0]
    )
    assert per_date == len(ch_before)


@pytest.fixture
def another_date(first_run, run_job, ch):
    """A run of another date and other lines, and the first date's snapshot before it."""
    other = "2030-06-30"  # later than the golden date: the newest snapshot
    first_snapshot = ch_rows(ch, RUN_DATE)
    assert run_job(tags={RUN_DATE_TAG: other}, rows=500, seed=2).success
    return other, first_snapshot


def test_another_date_adds_its_own_snapshot_and_other_dates_stay_row_for_row(another_date, ch, pg):
    other, first_snapshot = another_date
    assert first_snapshot and ch_rows(ch, RUN_DATE) == first_snapshot  # untouched, row for row
    columns = "grain, region, product, orders, sales, units, revenue, avg_check, first_sale, last_sale"
    now_in_postgres = query(pg, f"select {columns} from sales.sales_aggregates")
    assert len(ch_rows(ch, other)) == len(now_in_postgres) and set(ch_rows(ch, other)) == set(now_in_postgres)
    # what reads the ClickHouse asset through Dagster gets the newest date's snapshot, whole
    from dagster import build_input_context

    from sales_assets.io_managers.clickhouse import ClickHouseIOManager

    loaded = ClickHouseIOManager(clickhouse=ch, run_lock=ch.run_lock).load_input(build_input_context())
    assert set(loaded.column("import_date").to_pylist()) == {date.fromisoformat(other)}
    assert loaded.num_rows == len(ch_rows(ch, other))
