"""The run's logical date: what `future_date` is measured against and what becomes `import_date`.

A scheduled run carries its tick's date in the `sales/run_date` tag. A manual run takes today (in
`SALES_TIMEZONE`) at the moment its root run was created. A retry or a re-execution, days later or
not, looks at its root run, so it keeps the original date.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from dagster import ConfigurableResource

RUN_DATE_TAG = "sales/run_date"
ROOT_RUN_TAG = "dagster/root_run_id"


def run_date_for(context, tz_name: str) -> date:
    tags = context.run.tags
    root_id = getattr(context.run, "root_run_id", None) or tags.get(ROOT_RUN_TAG)
    root = context.instance.get_run_record_by_id(root_id) if root_id else None
    # a re-execution may not copy the parent's tags: the root run's tag is the authority
    tagged = tags.get(RUN_DATE_TAG) or (root.dagster_run.tags.get(RUN_DATE_TAG) if root else None)
    if tagged:
        try:
            return date.fromisoformat(tagged)
        except ValueError:
            raise ValueError(f"run tag {RUN_DATE_TAG}={tagged!r} is not a YYYY-MM-DD date") from None
    record = root or context.instance.get_run_record_by_id(context.run.run_id)
    created = record.create_timestamp if record else datetime.now(UTC)
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return created.astimezone(ZoneInfo(tz_name)).date()


class RunDateResource(ConfigurableResource):
    """Gives assets the run's logical date in the configured time zone."""

    timezone: str = "UTC"

    def for_run(self, context) -> date:
        return run_date_for(context, self.timezone)
