"""The whole graph as one job, and its daily schedule."""

from dagster import (
    AssetSelection,
    RunRequest,
    ScheduleEvaluationContext,
    define_asset_job,
    in_process_executor,
    schedule,
)

from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.settings import Settings

SALES_JOB = "sales_job"
DAILY_SCHEDULE = "daily_sales_schedule"

# One process per run, so one Spark session (and one JVM) serves every asset of the run.
sales_job = define_asset_job(
    SALES_JOB,
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    description="raw_sales -> cleaned/rejected_sales -> sales_aggregates -> clickhouse_sales_aggregates",
)


def build_schedule(settings: Settings):
    @schedule(
        name=DAILY_SCHEDULE, job=sales_job, cron_schedule=settings.schedule_cron, execution_timezone=settings.timezone
    )
    def daily_sales_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        """One run per tick; the tick's date becomes the run's date and so its import_date."""
        tick_date = context.scheduled_execution_time.date().isoformat()
        return RunRequest(run_key=tick_date, tags={RUN_DATE_TAG: tick_date})

    return daily_sales_schedule
