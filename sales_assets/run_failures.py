"""Why a run failed, in one line and in full: for the alerts and for `make run`'s summary."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dagster import DagsterEventType, DagsterInstance

from sales_assets.urls import redact

# Dagster wraps an error raised in an op; the useful line is the one the op raised
_WRAPPERS = {
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "DagsterResourceFunctionError",
    "RetryRequested",  # "Exceeded max_retries of 2": the cause is the error of the last try
}
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_TOKEN = re.compile(r"(token=)[^;&\s]+", re.IGNORECASE)


def without_secrets(text: str) -> str:
    """Passwords in URLs and Spark Connect tokens replaced by ***: messages leave the machine."""
    return _TOKEN.sub(r"\1***", _URL.sub(lambda m: redact(m.group(0)), text))


_SENTENCES = {"Failure", "PrerequisiteError"}  # errors whose message says it all: no traceback
_RUN_ENDINGS = {DagsterEventType.RUN_CANCELING, DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_CANCELED}
_ONLY_ENDED = ("Execution of run", "Sending run termination request")  # Dagster's texts that give no reason


@dataclass(frozen=True)
class RunFailure:
    step: str | None  # the first step that failed; None when the run failed outside any step
    where: str  # "step raw_sales", "resource initialisation" (before any step), or "run"
    error: str  # the first line of what went wrong, secrets removed
    details: str  # the whole error with its causes and stack traces, for a terminal or a log


def error_line(error) -> str:
    """The first line of what the op raised (not of Dagster's wrapper), secrets removed."""
    return without_secrets(_first_line(_message(_innermost(error))))


def _innermost(error):
    while error.cause is not None and error.cls_name in _WRAPPERS:
        error = error.cause
    return error


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _message(error) -> str:
    """The error's own text; a `dagster.Failure` or a missing prerequisite is a sentence of ours,
    its class name adds nothing."""
    if error.cls_name in _SENTENCES:
        return error.message.split(f"{error.cls_name}: ", 1)[-1]
    return error.message


def _failure(error, step: str | None, where: str) -> RunFailure:
    inner = _innermost(error)
    # a sentence of ours is whole in its message; anything else needs its traceback
    details = _message(inner) if inner.cls_name in _SENTENCES else inner.to_string()
    return RunFailure(step, where, error_line(error), without_secrets(details))


def run_failure(instance: DagsterInstance, run_id: str) -> RunFailure:
    """The first failed step's error, else the run's own failure or cancellation message."""
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        if event and event.step_failure_data.error:
            return _failure(event.step_failure_data.error, event.step_key, f"step {event.step_key}")
    # a resource that could not start (a missing prerequisite, an unreachable server): before any step
    for entry in instance.all_logs(run_id, of_type=DagsterEventType.RESOURCE_INIT_FAILURE):
        error = entry.dagster_event.event_specific_data.error
        if error is not None:
            return _failure(error, None, "resource initialisation")
    # no step failed: run monitoring (a max runtime), a cancel in the UI, a launch that failed. The
    # reason is in the canceling or failure event; the final event only says that the run ended.
    run_events = [e for e in instance.all_logs(run_id, of_type=_RUN_ENDINGS) if (e.message or "").strip()]
    reasons = [e.message for e in run_events if not e.message.startswith(_ONLY_ENDED)]
    message = (reasons or [e.message for e in run_events] or ["the run ended without a step failure"])[0]
    return RunFailure(None, "run", without_secrets(_first_line(message)), without_secrets(message))
