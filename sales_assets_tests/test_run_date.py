"""The run's date: a schedule's tick date wins; a manual run takes its root run's creation day in
SALES_TIMEZONE, so a retry or a re-execution keeps the original date."""

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
from dagster import ReexecutionOptions, execute_job, reconstructable

from sales_assets.resources.run_date import ROOT_RUN_TAG, RUN_DATE_TAG, run_date_for
from sales_assets_tests.helpers import GOLDEN_DATE


class StoredRuns:
    """Stands in for the Dagster instance's run storage: one root run created late on 1 March UTC."""

    created = datetime(2025, 3, 1, 23, 30, tzinfo=UTC)

    def __init__(self, root_tags=None):
        self.root_tags = root_tags or {}

    def get_run_record_by_id(self, run_id):
        if run_id != "root":
            return None
        return SimpleNamespace(create_timestamp=self.created, dagster_run=SimpleNamespace(tags=self.root_tags))


def context(tags: dict, run_id: str = "child", root_tags=None):
    root = tags.pop(ROOT_RUN_TAG, None)
    return SimpleNamespace(
        run=SimpleNamespace(tags=tags, run_id=run_id, root_run_id=root), instance=StoredRuns(root_tags)
    )


def test_schedule_tag_wins():
    assert run_date_for(context({RUN_DATE_TAG: "2026-01-05", ROOT_RUN_TAG: "root"}), "UTC") == date(2026, 1, 5)


def test_reexecution_uses_the_root_runs_creation_day_in_the_configured_zone():
    ctx = context({ROOT_RUN_TAG: "root"})
    assert run_date_for(ctx, "UTC") == date(2025, 3, 1)
    assert run_date_for(ctx, "Asia/Tokyo") == date(2025, 3, 2)


def test_a_reexecution_without_the_tag_takes_the_root_runs_tag():
    assert run_date_for(context({ROOT_RUN_TAG: "root"}, root_tags={RUN_DATE_TAG: "2026-01-05"}), "UTC") == date(
        2026, 1, 5
    )


def test_bad_tag_is_a_clear_error():
    with pytest.raises(ValueError, match="not a YYYY-MM-DD"):
        run_date_for(context({RUN_DATE_TAG: "yesterday"}), "UTC")


def _sales_job():
    import os

    from sales_assets.definitions import build_definitions
    from sales_assets.settings import Settings
    from sales_assets_tests.helpers import TEST_ENV

    # the suite's settings: other Spark settings would restart the suite's Spark server under it
    settings = Settings.from_env({**TEST_ENV, "SALES_DATA_DIR": os.environ["SALES_TEST_DATA_DIR"]})
    return build_definitions(settings).resolve_job_def("sales_job")


@pytest.mark.integration
def test_a_real_reexecution_keeps_the_import_date(golden_state, instance, settings, monkeypatch, ch):
    first = golden_state.result
    monkeypatch.setenv("SALES_TEST_DATA_DIR", str(settings.data_dir))
    options = ReexecutionOptions(parent_run_id=first.run_id, step_selection=["clickhouse_sales_aggregates"])
    with execute_job(reconstructable(_sales_job), instance=instance, reexecution_options=options) as again:
        assert again.success
        assert instance.get_run_by_id(again.run_id).root_run_id == first.run_id
        mats = [e.materialization for e in again.get_asset_materialization_events()]
        assert [m.metadata["import_date"].value for m in mats] == [GOLDEN_DATE]


@pytest.mark.integration
def test_a_real_reexecution_of_a_manual_run_takes_the_root_runs_creation_day(run_job, instance, settings, monkeypatch):
    from dagster._core.storage.runs.schema import RunsTable

    first = run_job(rows=400, seed=4)  # manual: no date tag
    assert first.success
    # the root run was created long ago (as a re-execution days later sees it): back-date it in
    # the instance's run storage, the record Dagster itself keeps
    with instance.run_storage.connect() as conn:
        conn.execute(
            RunsTable.update()
            .where(RunsTable.c.run_id == first.run_id)
            .values(create_timestamp=datetime(2026, 3, 1, 23, 30))  # stored as naive UTC
        )
    assert instance.get_run_record_by_id(first.run_id).create_timestamp.date() == date(2026, 3, 1)
    monkeypatch.setenv("SALES_TEST_DATA_DIR", str(settings.data_dir))
    options = ReexecutionOptions(parent_run_id=first.run_id, step_selection=["clickhouse_sales_aggregates"])
    with execute_job(reconstructable(_sales_job), instance=instance, reexecution_options=options) as again:
        assert again.success
        assert RUN_DATE_TAG not in instance.get_run_by_id(again.run_id).tags
        mats = [e.materialization for e in again.get_asset_materialization_events()]
        assert [m.metadata["import_date"].value for m in mats] == ["2026-03-01"]
