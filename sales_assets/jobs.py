"""The whole graph as one job, its daily schedule, and when the schedule's outputs are due."""

from datetime import timedelta

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    FreshnessPolicy,
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
MAX_RUNTIME_TAG = "dagster/max_runtime"  # read by run monitoring (dagster.yaml: run_monitoring)


def build_job(settings: Settings):
    # One process per run, so one Spark Connect session serves every asset of the run. A run past
    # its max runtime (waiting for the run lock included) is failed by run monitoring, so a hung
    # run cannot hold the lock, and with it every later run, forever.
    return define_asset_job(
        SALES_JOB,
        selection=AssetSelection.all(),
        executor_def=in_process_executor,
        tags={MAX_RUNTIME_TAG: str(settings.max_runtime_s)},
        description="raw_sales -> cleaned/rejected_sales -> sales_aggregates -> clickhouse_sales_aggregates",
    )


def build_schedule(settings: Settings, job):
    # Running from the start: an unattended deployment loads the day's data without anyone turning
    # the schedule on (the daemon runs it: `make dev`, or the compose deployment).
    @schedule(
        name=DAILY_SCHEDULE,
        job=job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.timezone,
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def daily_sales_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        """One run per tick; the tick's date becomes the run's date and so its import_date."""
        tick_date = context.scheduled_execution_time.date().isoformat()
        return RunRequest(run_key=tick_date, tags={RUN_DATE_TAG: tick_date})

    return daily_sales_schedule


def freshness_deadline(cron: str, grace_minutes: int) -> str:
    """The schedule's cron moved `grace_minutes` later: when a tick's load must have landed.

    Only a cron whose minute and hour are plain numbers can be moved (and only within its day,
    unless it runs every day); any other cron is its own deadline, so a missed load shows one tick
    later instead of after the grace period."""
    fields = cron.split()
    if len(fields) != 5 or not (fields[0].isdigit() and fields[1].isdigit()):
        return cron
    minute, hour, *days = fields
    due = int(hour) * 60 + int(minute) + grace_minutes
    if due >= 24 * 60 and days != ["*", "*", "*"]:
        return cron
    due %= 24 * 60
    return " ".join([str(due % 60), str(due // 60), *days])


def build_freshness_policy(settings: Settings) -> FreshnessPolicy:
    """Fresh when a load happened in the day before the latest deadline; stale (red in the UI) from
    a deadline without one: a stopped daemon, a run that failed or hung. A day, whatever the cron:
    each tick loads a day's sales (a schedule ticking more often than daily is fresh after any
    load of the last day)."""
    deadline = freshness_deadline(settings.schedule_cron, settings.freshness_grace_minutes)
    return FreshnessPolicy.cron(
        deadline_cron=deadline,
        lower_bound_delta=timedelta(days=1),
        timezone=settings.timezone,
    )
