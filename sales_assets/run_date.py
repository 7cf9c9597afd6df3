"""The run's logical date: what `future_date` is measured against and what becomes `import_date`.

A scheduled run carries its tick's date in the `sales/run_date` tag. A manual run takes today (in
`SALES_TIMEZONE`) at the moment its root run was created, so a retry or a re-execution days later
keeps the original date.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from dagster import ConfigurableResource

RUN_DATE_TAG = "sales/run_date"
ROOT_RUN_TAG = "dagster/root_run_id"


def run_date_for(context, tz_name: str) -> date:
    tags = context.run.tags
    if RUN_DATE_TAG in tags:
        try:
            return date.fromisoformat(tags[RUN_DATE_TAG])
        except ValueError:
            raise ValueError(f"run tag {RUN_DATE_TAG}={tags[RUN_DATE_TAG]!r} is not a YYYY-MM-DD date") from None
    root_id = tags.get(ROOT_RUN_TAG, context.run.run_id)
    record = context.instance.get_run_record_by_id(root_id)
    created = record.create_timestamp if record else datetime.now(timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.astimezone(ZoneInfo(tz_name)).date()


class RunDateResource(ConfigurableResource):
    """Gives assets the run's logical date in the configured time zone."""

    timezone: str = "UTC"

    def for_run(self, context) -> date:
        return run_date_for(context, self.timezone)
