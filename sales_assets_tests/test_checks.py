"""Each asset check passes on good data and fails on data corrupted on purpose in the real
tables; a failed blocking check stops the aggregates and the ClickHouse load."""

import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, materialize

from sales_assets import checks as C
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import GOLDEN_DATE, ch_rows, evaluations, execute, query

pytestmark = pytest.mark.integration
RUN_DATE = GOLDEN_DATE
FIRST_SALE = "select min(sale_id) from sales.cleaned_sales"
LAST_SALE = "select max(sale_id) from sales.cleaned_sales"
TAGS = {RUN_DATE_TAG: RUN_DATE}


@pytest.fixture
def good_run(golden_state):
    """The golden run's result; what it stored is restored for each test."""
    return golden_state.result


@pytest.fixture
def run_check(defs, instance):
    """Runs one check alone against what is stored now."""

    def run(check, run_config=None):
        result = materialize(
            [*defs.assets, *C.ALL_CHECKS],
            selection=AssetSelection.checks(check),
            resources=defs.resources,
            instance=instance,
            tags=TAGS,
            run_config=run_config,
            raise_on_error=False,
        )
        return evaluations(result)[next(iter(check.check_specs)).name]

    return run


def test_all_checks_pass_on_good_data_with_numbers(good_run):
    got = evaluations(good_run)
    assert set(got) == {
        C.RAW_ROW_COUNT,
        C.CONSERVATION,
        C.CLEANED_VALID,
        C.REJECTED_SHARE,
        C.AGGREGATES_RECONCILE,
        C.CLICKHOUSE_RECONCILES,
    }
    assert all(e.passed for e in got.values()), {k: e.metadata for k, e in got.items() if not e.passed}
    assert got[C.CONSERVATION].metadata["raw_rows"].value == 3000
    assert got[C.CLICKHOUSE_RECONCILES].metadata["clickhouse_rows"].value > 0


def test_raw_row_count_fails_when_lines_are_lost(good_run, run_check, spark, settings, tmp_path):
    path, fewer = f"{settings.parquet_uri}/raw_sales", str(tmp_path / "fewer")  # nothing left beside the asset
    spark.read.parquet(path).limit(2900).write.mode("overwrite").parquet(fewer)
    spark.read.parquet(fewer).write.mode("overwrite").parquet(path)
    evaluation = run_check(C.raw_row_count_as_requested)
    assert not evaluation.passed
    assert evaluation.metadata["stored_rows"].value == 2900


def test_conservation_fails_when_a_rejected_line_is_lost(good_run, run_check, pg):
    execute(pg, "delete from sales.rejected_sales where ctid = (select min(ctid) from sales.rejected_sales)")
    evaluation = run_check(C.raw_equals_cleaned_plus_rejected)
    assert not evaluation.passed and evaluation.metadata["difference"].value == 1


@pytest.mark.parametrize(
    "corruption, counter",
    [
        (
            f"update sales.cleaned_sales set amount = amount + 1 where sale_id = ({FIRST_SALE})",
            "amount_mismatch",
        ),
        (
            f"update sales.cleaned_sales set sale_ts = '2030-01-01' where sale_id = ({LAST_SALE})",
            "future_sale",
        ),
        (
            f"update sales.cleaned_sales set quantity = 0, amount = 0 where sale_id = ({FIRST_SALE})",
            "non_positive_quantity",
        ),
        (
            "alter table sales.cleaned_sales drop constraint cleaned_sales_pkey; "
            "insert into sales.cleaned_sales select * from sales.cleaned_sales limit 1",
            "duplicate_sale_id",
        ),
    ],
)
def test_validity_fails_on_each_kind_of_bad_row(good_run, run_check, pg, corruption, counter):
    execute(pg, corruption)
    evaluation = run_check(C.cleaned_rows_valid)
    assert not evaluation.passed and evaluation.metadata[counter].value == 1


def test_rejected_share_warns_above_the_threshold(good_run, run_check):
    ok = run_check(C.rejected_share_below_threshold)
    assert ok.passed
    low = {"ops": {"rejected_sales_rejected_share_below_threshold": {"config": {"max_rejected_pct": 0.5}}}}
    evaluation = run_check(C.rejected_share_below_threshold, run_config=low)
    assert not evaluation.passed and evaluation.severity.value == "WARN"


def test_aggregates_check_fails_on_a_wrong_total(good_run, run_check, pg):
    execute(
        pg,
        "update sales.sales_aggregates set units = units + 1 "
        "where grain = 'product' and product = (select min(product) from sales.sales_aggregates)",
    )
    evaluation = run_check(C.aggregates_match_cleaned_totals)
    assert not evaluation.passed and evaluation.metadata["mismatched_grains"].value == 1


def test_clickhouse_reconciliation_fails_on_a_missing_row(good_run, run_check, ch):
    ch.get_client().command(
        f"alter table sales.sales_aggregates delete where import_date = '{RUN_DATE}' and grain = 'region' "
        f"and region = (select min(region) from sales.sales_aggregates where import_date = '{RUN_DATE}') "
        "settings mutations_sync = 1"
    )
    evaluation = run_check(C.clickhouse_snapshot_matches_postgres)
    assert not evaluation.passed and evaluation.metadata["only_in_postgres"].value == 1


def test_clickhouse_check_run_alone_on_a_later_day_compares_the_loaded_snapshot(good_run, defs, instance):
    later = {RUN_DATE_TAG: "2026-12-31"}  # e.g. re-run from the UI weeks after the load
    result = materialize(
        [*defs.assets, *C.ALL_CHECKS],
        selection=AssetSelection.checks(C.clickhouse_snapshot_matches_postgres),
        resources=defs.resources,
        instance=instance,
        tags=later,
        raise_on_error=False,
    )
    evaluation = evaluations(result)[C.CLICKHOUSE_RECONCILES]
    assert evaluation.passed, evaluation.metadata
    assert evaluation.metadata["import_date"].value == RUN_DATE


def test_a_failed_blocking_check_stops_the_aggregates_and_keeps_the_clickhouse_snapshot(
    good_run, defs, instance, pg, ch
):
    snapshot = ch_rows(ch, RUN_DATE)
    aggregates_before = query(pg, "select count(*), sum(revenue) from sales.sales_aggregates")
    execute(pg, "update sales.cleaned_sales set amount = amount * 2")  # every row now invalid
    selection = AssetSelection.assets("sales_aggregates", "clickhouse_sales_aggregates") | AssetSelection.checks(
        C.cleaned_rows_valid
    )
    result = materialize(
        [*defs.assets, *C.ALL_CHECKS],
        selection=selection,
        resources=defs.resources,
        instance=instance,
        tags=TAGS,
        raise_on_error=False,
    )
    assert not evaluations(result)[C.CLEANED_VALID].passed
    materialized = {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    assert AssetKey("sales_aggregates") not in materialized
    assert AssetKey("clickhouse_sales_aggregates") not in materialized
    assert query(pg, "select count(*), sum(revenue) from sales.sales_aggregates") == aggregates_before
    assert ch_rows(ch, RUN_DATE) == snapshot


def test_check_names_are_the_module_constants():
    keys = {spec.key for check in C.ALL_CHECKS for spec in check.check_specs}
    assert AssetCheckKey(AssetKey("cleaned_sales"), C.CLEANED_VALID) in keys
    assert len(keys) == 6


@pytest.mark.parametrize(
    "check, corruption, guarded",
    [
        (
            C.raw_equals_cleaned_plus_rejected,
            "delete from sales.rejected_sales where ctid = (select min(ctid) from sales.rejected_sales)",
            "sales_aggregates",
        ),
        (C.cleaned_rows_valid, "update sales.cleaned_sales set amount = amount * 2", "sales_aggregates"),
        (
            C.aggregates_match_cleaned_totals,
            "update sales.sales_aggregates set units = units + 1 where grain = 'region'",
            "clickhouse_sales_aggregates",
        ),
    ],
    ids=[C.CONSERVATION, C.CLEANED_VALID, C.AGGREGATES_RECONCILE],
)
def test_each_blocking_check_when_it_fails_skips_what_it_guards(
    good_run, defs, instance, pg, ch, check, corruption, guarded
):
    """The three blocking checks, each failing on the stored table it reads: the asset downstream of
    it is skipped (its step never runs), and what that asset stores stays as it was."""
    snapshot = ch_rows(ch, RUN_DATE)
    aggregates_before = query(pg, "select count(*), sum(revenue), sum(units) from sales.sales_aggregates")
    execute(pg, corruption)
    result = materialize(
        [*defs.assets, *C.ALL_CHECKS],
        selection=AssetSelection.assets(guarded) | AssetSelection.checks(check),
        resources=defs.resources,
        instance=instance,
        tags=TAGS,
        raise_on_error=False,
    )
    (spec,) = check.check_specs
    assert not evaluations(result)[spec.name].passed
    assert not result.success
    started = {e.step_key for e in result.all_events if e.is_step_start}
    assert guarded not in started  # its body never ran
    assert AssetKey(guarded) not in {e.materialization.asset_key for e in result.get_asset_materialization_events()}
    if guarded == "sales_aggregates":  # the stored aggregates are the good run's
        assert query(pg, "select count(*), sum(revenue), sum(units) from sales.sales_aggregates") == aggregates_before
    assert ch_rows(ch, RUN_DATE) == snapshot
