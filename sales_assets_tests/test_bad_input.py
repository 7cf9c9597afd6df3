"""Bad input fails the run before any table is touched, with a message that names the problem;
a good CSV is ingested instead of generating."""

from __future__ import annotations

import os

import pytest

from sales_assets.contract import PG_TABLES, RAW_COLUMNS
from sales_assets.definitions import build_definitions
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.settings import Settings
from sales_assets_tests.conftest import TEST_ENV, query, run_config
from sales_assets_tests.test_pipeline import ch_rows, materializations, table_digest

pytestmark = pytest.mark.integration
RUN_DATE = "2026-10-01"


def failure_messages(result) -> str:
    return "\n".join(e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure)


@pytest.fixture
def snapshot_of_everything(run_job, pg, ch, spark, settings):
    """Materializes a known state, then returns a function telling whether anything changed."""
    assert run_job(tags={RUN_DATE_TAG: RUN_DATE}, rows=800, seed=5).success

    def state():
        raw = spark.read.parquet(f"{settings.parquet_uri}/raw_sales")
        return (
            {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES},
            ch_rows(ch, RUN_DATE),
            raw.count(),
            raw.agg({"sale_id": "max"}).first()[0],
        )

    before = state()
    return lambda: state() == before


def write_csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n")
    return str(path)


def test_missing_source_file(run_job, snapshot_of_everything, tmp_path):
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(tmp_path / "nope.csv"))
    assert not result.success
    assert "nope.csv does not exist" in failure_messages(result)
    assert snapshot_of_everything()


def test_file_without_the_raw_columns(run_job, snapshot_of_everything, tmp_path):
    path = write_csv(tmp_path / "partial.csv", ["sale_id", "product", "amount"], [["1", "X", "2.00"]])
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=path)
    assert not result.success
    message = failure_messages(result)
    assert "lacks column(s) order_id, customer_id" in message
    assert snapshot_of_everything()


def test_empty_file(run_job, snapshot_of_everything, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(path))
    assert not result.success
    assert "is empty" in failure_messages(result)
    assert snapshot_of_everything()


@pytest.mark.parametrize("rows", [0, -3])
def test_non_positive_rows(run_job, snapshot_of_everything, rows):
    with pytest.raises(Exception, match="rows"):
        result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, rows=rows)
        assert not result.success  # pragma: no cover - config validation raises first
    assert snapshot_of_everything()


def test_bad_postgres_url_fails_before_anything_and_hides_the_password(
    snapshot_of_everything, settings, spark_resource, instance, monkeypatch
):
    url = "postgresql://sales:hunter2secret@127.0.0.1:1/sales"  # nothing listens on port 1
    monkeypatch.setenv("SALES_PG_URL", url)
    bad = Settings.from_env({**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir), "SALES_PG_URL": url})
    job = build_definitions(bad, spark=spark_resource).resolve_job_def("sales_job")
    result = job.execute_in_process(
        instance=instance, run_config=run_config(rows=100), tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False
    )
    assert not result.success
    text = "\n".join(str(e.event_specific_data) + (e.message or "") for e in result.all_events)
    assert "127.0.0.1:1" in text
    assert "hunter2secret" not in text
    assert not materializations(result)
    assert snapshot_of_everything()


def test_a_csv_source_is_ingested(run_job, pg, tmp_path):
    header = list(RAW_COLUMNS) + ["note"]  # an extra column is ignored
    rows = [
        ["1", "100", "7", " gizmo ", "tools", "kazan ", "2", "3.50", "7.00", "2026-09-01 10:00:00", "a"],
        ["2", "100", "7", "Gizmo", "Tools", "Kazan", "1", "3.50", "", "2026-09-01 10:00:00", "b"],
        ["3", "101", "8", "Widget", "Tools", "Omsk", "0", "9.99", "0.00", "2026-09-02 11:00:00", "c"],
        ["3", "101", "8", "Widget", "Tools", "Omsk", "1", "9.99", "9.99", "2026-09-02 11:00:00", "d"],
        ["4", "102", "9", "Widget", "Tools", "Omsk", "1", "9.99", "9.99", "2026-12-02 11:00:00", "e"],
    ]
    path = write_csv(tmp_path / "sales.csv", header, rows)
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, source_path=path)
    assert result.success
    cleaned = query(pg, "select sale_id, product, region, amount::text from sales.cleaned_sales order by 1")
    assert cleaned == [(1, "Gizmo", "Kazan", "7.00"), (2, "Gizmo", "Kazan", "3.50"), (3, "Widget", "Omsk", "9.99")]
    rejected = query(pg, "select sale_id, reason from sales.rejected_sales order by 1")
    assert rejected == [("3", "non_positive_quantity"), ("4", "future_date")]
    aggregates = query(
        pg,
        "select orders, sales, units, revenue::text, avg_check::text from sales.sales_aggregates "
        "where grain = 'region' and region = 'Kazan'",
    )
    assert aggregates == [(1, 2, 3, "10.50", "10.50")]
