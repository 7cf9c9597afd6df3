"""Failed or canceled runs of `sales_job`, posted to a chat webhook (Slack-compatible) or logged.

One sensor. Its cursor holds where it stopped reading runs and the alerts not yet delivered, so a
webhook that is down or slow costs one short timeout per tick and the alert goes out on a later
tick; Dagster's run-status sensors move their cursor past a run whatever the delivery did.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import urlsplit

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from sales_assets.jobs import SALES_JOB
from sales_assets.run_failures import run_failure
from sales_assets.settings import Settings

ALERT_SENSOR = "sales_job_failure_alerts"
POST_TIMEOUT_S = 5  # per post; a tick that cannot deliver stops at the first failure
MAX_PENDING = 50  # undelivered alerts kept, newest; older ones are dropped, and the log says so
_SEEN = 200  # run ids remembered, so a run updated twice is alerted once


def alert_payload(instance, run, ui_url: str) -> dict:
    """What a failed run says, Slack-shaped (`text`), with the same facts as fields for other
    receivers. Never a secret: the error line has passwords and tokens removed."""
    failure = run_failure(instance, run.run_id)
    status = "canceled" if run.status == DagsterRunStatus.CANCELED else "failed"
    where = f" at {failure.where}" if failure.where != "run" else ""
    link = f"{ui_url}/runs/{run.run_id}"
    headline = f"{SALES_JOB} run {run.run_id[:8]} {status}{where}: {failure.error}"
    return {
        "text": f":red_circle: {headline}\n<{link}|open the run>",
        "job": SALES_JOB,
        "run_id": run.run_id,
        "status": status,
        "step": failure.step,
        "error": failure.error,
        "url": link,
    }


def post(webhook: str, payload: dict, timeout_s: float = POST_TIMEOUT_S) -> None:
    """One POST of JSON; raises OSError (refused, timed out, HTTP error) when it did not land."""
    request = urllib.request.Request(
        webhook, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


def _host(webhook: str) -> str:
    return urlsplit(webhook).hostname or "the webhook"  # its path is the secret of a Slack webhook


def _deliver(context: SensorEvaluationContext, webhook: str | None, pending: list[dict]) -> list[dict]:
    """Sends what it can, oldest first; returns what is still undelivered."""
    for n, payload in enumerate(pending):
        if webhook is None:
            context.log.warning(f"run alert (SALES_ALERT_WEBHOOK unset, logged only): {payload['text']}")
            continue
        try:
            post(webhook, payload)
        except (OSError, ValueError) as exc:  # URLError and timeouts are OSErrors
            reason = getattr(exc, "reason", None) or exc
            context.log.warning(
                f"alert for run {payload['run_id']} not delivered to {_host(webhook)} ({reason}); "
                f"{len(pending) - n} kept for the next tick"
            )
            return pending[n:]
        context.log.info(f"alert for run {payload['run_id']} delivered to {_host(webhook)}")
    return []


def build_alert_sensor(settings: Settings):
    @sensor(
        name=ALERT_SENSOR,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Posts each failed or canceled run of {SALES_JOB} (a failed step, a blocking check "
        "that stopped the graph, a run past its max runtime) to SALES_ALERT_WEBHOOK, or logs it.",
    )
    def sales_job_failure_alerts(context: SensorEvaluationContext):
        now = datetime.now(UTC).timestamp()
        if context.cursor is None:  # first tick: alert on runs that end from now on
            context.update_cursor(json.dumps({"after": now, "seen": [], "pending": []}))
            return SkipReason(f"watching runs of {SALES_JOB} that fail from now on")
        state = json.loads(context.cursor)
        records = context.instance.get_run_records(
            filters=RunsFilter(
                job_name=SALES_JOB,
                statuses=[DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED],
                # a second back: runs updated in the same instant are not missed; `seen` dedupes
                updated_after=datetime.fromtimestamp(state["after"] - 1, UTC),
            ),
            order_by="update_timestamp",
            ascending=True,
            limit=MAX_PENDING,
        )
        seen, pending = state["seen"], state["pending"]
        for record in records:
            state["after"] = max(state["after"], record.update_timestamp.timestamp())
            if record.dagster_run.run_id not in seen:
                seen.append(record.dagster_run.run_id)
                pending.append(alert_payload(context.instance, record.dagster_run, settings.ui_url))
        if len(pending) > MAX_PENDING:
            context.log.warning(f"{len(pending) - MAX_PENDING} oldest undelivered alerts dropped")
        pending = _deliver(context, settings.alert_webhook, pending[-MAX_PENDING:])
        context.update_cursor(json.dumps({"after": state["after"], "seen": seen[-_SEEN:], "pending": pending}))
        if pending:
            return SkipReason(f"{len(pending)} alert(s) not delivered yet; retried on the next tick")
        return SkipReason(f"{len(records)} failed run(s) since the last tick")

    return sales_job_failure_alerts
