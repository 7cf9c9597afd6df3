"""What `make run` prints while the graph runs: one line per finished step (seconds, rows or the
check's outcome), warnings as they happen, and a live line for the step running now. Dagster's
event stream stays in the run's log (and the UI); `make run V=1` prints it as well."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import uuid
from typing import TextIO

from dagster import DagsterEventType, DagsterInstance

from sales_assets.run_failures import error_line

_SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STARTING = "starting: Spark session, databases, run lock"
_NOT_EXECUTED = re.compile(r"Dependencies for step (\S+) (?:failed|were not executed)")  # Dagster's words


def _rows(materializations: list[tuple[str, int | None]]) -> str:
    if len(materializations) == 1 and materializations[0][1] is not None:
        return f"{materializations[0][1]:,} rows"
    return " · ".join(f"{rows:,} {asset}" for asset, rows in materializations if rows is not None)


class RunProgress:
    """Listens to a run's events as the instance stores them (no polling), on the run's thread;
    a ticker thread redraws the live line on a terminal, or prints a line every `heartbeat_s`
    elsewhere (CI logs), so a long step never looks like a hang."""

    def __init__(
        self,
        instance: DagsterInstance,
        run_id: str,
        check_names: tuple[str, ...] = (),
        out: TextIO | None = None,
        heartbeat_s: float = 15,
    ):
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self.heartbeat_s = heartbeat_s
        self._check_names = tuple(check_names)  # a check's step key ends with its name
        self._instance, self._run_id = instance, run_id
        self._lock = threading.Lock()
        self._done = threading.Event()
        # step -> start (event time); before the first step, the run sets up its resources
        self._running: dict[str, float] = {STARTING: time.time()}
        self._materialized: dict[str, list[tuple[str, int | None]]] = {}
        self._checks: dict[str, list[tuple[str, str]]] = {}
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._width = 0
        self._not_run: list[str] = []

    def __enter__(self) -> RunProgress:
        self._instance.add_event_listener(self._run_id, self._on_event)
        self._ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._ticker.join()
        with self._lock:
            self._clear()
        if self._not_run:
            checks = [step for step in self._not_run if step.endswith(self._check_names)]
            steps = [step for step in self._not_run if step not in checks]
            listed = ", ".join(steps) + (f" and {len(checks)} checks" if checks else "")
            self._print(f"  - not run, as a step they depend on failed: {listed}")

    # --- events -------------------------------------------------------------------------------

    def _on_event(self, entry) -> None:
        event = entry.dagster_event
        if event is None:  # a message an asset, a resource or the executor logged
            if skipped := _NOT_EXECUTED.match(entry.user_message):
                self._not_run.append(skipped.group(1))  # one line for them all, at the end
            elif entry.level >= logging.WARNING:
                self._print(f"  ! {entry.user_message}")
            return
        step, kind = event.step_key, event.event_type
        if kind == DagsterEventType.STEP_START:
            with self._lock:
                self._running.pop(STARTING, None)
                self._running[step] = entry.timestamp
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            row_count = mat.metadata.get("dagster/row_count")
            self._materialized.setdefault(step, []).append(
                (mat.asset_key.to_user_string(), row_count.value if row_count else None)
            )
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            check = event.event_specific_data
            outcome = "passed" if check.passed else ("WARNING" if check.severity.value == "WARN" else "FAILED")
            self._checks.setdefault(step, []).append((check.check_name, outcome))
        elif kind in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE, DagsterEventType.STEP_UP_FOR_RETRY):
            with self._lock:
                started = self._running.pop(step, entry.timestamp)
            seconds = entry.timestamp - started
            checks = self._checks.pop(step, [])
            if kind == DagsterEventType.STEP_SUCCESS:
                what = "; ".join(outcome for _, outcome in checks) or _rows(self._materialized.pop(step, []))
                mark = "✓"
            else:  # failed, or failed and tried again
                error = event.event_specific_data.error
                failed = kind == DagsterEventType.STEP_FAILURE
                mark, what = ("✗", "FAILED: ") if failed else ("↻", "retrying after: ")
                what += error_line(error) if error else ""
            label = "check " + ", ".join(name for name, _ in checks) if checks else step
            self._print(f"  {mark} {label:<44}{seconds:>6.1f} s   {what}")
        elif kind == DagsterEventType.RESOURCE_INIT_FAILURE:
            error = event.event_specific_data.error
            seconds = entry.timestamp - self._running.get(STARTING, entry.timestamp)
            with self._lock:
                self._running.pop(STARTING, None)
            self._print(f"  ✗ {'resources':<44}{seconds:>6.1f} s   FAILED: {error_line(error) if error else ''}")
        elif kind == DagsterEventType.STEP_SKIPPED:
            self._print(f"  - {step:<44}{'':>8}   skipped: a blocking check upstream failed")

    # --- output -------------------------------------------------------------------------------

    def _clear(self) -> None:
        if self.live and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
            self._width = 0

    def _print(self, line: str) -> None:
        with self._lock:
            self._clear()
            print(line, file=self.out, flush=True)

    def _tick(self) -> None:
        frame, beats = 0, {}  # beats: heartbeats printed per step
        while not self._done.wait(0.1 if self.live else 1.0):
            with self._lock:
                if not self._running:
                    continue
                step, started = next(iter(self._running.items()))
                seconds = time.time() - started
                if self.live:
                    frame += 1
                    line = f"  {_SPINNER[frame % len(_SPINNER)]} {step}  {seconds:.0f} s"
                    self.out.write("\r" + line.ljust(self._width))
                    self.out.flush()
                    self._width = len(line)
                elif seconds // self.heartbeat_s > beats.get(step, 0):
                    beats[step] = seconds // self.heartbeat_s
                    print(f"  … {step} running for {seconds:.0f} s", file=self.out, flush=True)


def execute_with_progress(job, instance: DagsterInstance, run_config: dict | None = None, verbose: bool = False, **kw):
    """`job.execute_in_process` with a line per step; Dagster's console logger only when `verbose`
    (`make run V=1`). Returns the result, failed or not: the caller reports."""
    from sales_assets.checks import CHECK_NAMES

    run_config = dict(run_config or {})
    if not verbose:  # the event stream still goes to the instance: the UI and the run's log have it
        run_config["loggers"] = {"console": {"config": {"log_level": "CRITICAL"}}}
    run_id = str(uuid.uuid4())  # known before the run starts, so the lines can follow it
    with RunProgress(instance, run_id, check_names=CHECK_NAMES):
        return job.execute_in_process(
            instance=instance, run_config=run_config, run_id=run_id, raise_on_error=False, **kw
        )
