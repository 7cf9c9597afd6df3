"""The short report `make run` prints after a run, and the run's full log on disk."""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from sales_assets import connections
from sales_assets.contract import REJECT_REASONS
from sales_assets.run_failures import run_failure, without_secrets


def _metadata(result) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def write_run_log(instance, run_id: str, directory: Path) -> Path:
    """Every event of the run, as Dagster's console would have printed it, errors in full."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for entry in instance.all_logs(run_id):
        when = datetime.fromtimestamp(entry.timestamp, UTC).isoformat(timespec="milliseconds")
        event = entry.dagster_event
        kind = event.event_type.name if event else "LOG"
        lines.append(f"{when} {logging.getLevelName(entry.level):<7} {entry.step_key or '-'} {kind} {entry.message}")
        error = event and getattr(event.event_specific_data, "error", None)
        if error is not None:
            lines.append(textwrap.indent(error.to_string().rstrip(), "    "))
    path = directory / f"run-{run_id}.log"
    path.write_text(without_secrets("\n".join(lines)) + "\n")
    return path


def print_summary(result, instance, settings, wall_seconds: float, log: Path | None = None) -> None:
    meta = _metadata(result)
    print()
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {wall_seconds:.1f} s")
    if not result.success:
        failure = run_failure(instance, result.run_id)
        print(f"  failed {failure.where}: {failure.error}")
        if failure.details.strip() != failure.error:
            print(textwrap.indent(failure.details.rstrip(), "  | "))
    raw = meta.get("raw_sales", {}).get("dagster/row_count")
    cleaned = meta.get("cleaned_sales", {})
    rejected = meta.get("rejected_sales", {})
    if raw is not None:
        print(f"  raw rows        {raw:>12,}")
    if cleaned:
        print(
            f"  cleaned rows    {cleaned['dagster/row_count']:>12,}   (amount repaired: {cleaned['amount_repaired']:,})"
        )
    if rejected:
        print(f"  rejected rows   {rejected['dagster/row_count']:>12,}")
        for reason in REJECT_REASONS:
            print(f"    {reason:<22}{rejected.get(f'rejected_{reason}', 0):>8,}")
    if "clickhouse_sales_aggregates" in meta:  # as each load recorded it; a check reconciles the two
        pg_total = meta["sales_aggregates"]["revenue_total"]
        ch_total = meta["clickhouse_sales_aggregates"]["revenue_total"]
        import_date = meta["clickhouse_sales_aggregates"]["import_date"]
        print(
            f"  revenue total   PostgreSQL {pg_total:,.2f}   ClickHouse {ch_total:,.2f}   (import_date {import_date})"
        )
    spark = connections.spark(settings)
    if spark.remote:
        print(f"  Spark Connect   {spark.location}")
    elif server := spark.embedded.running():
        print(f"  Spark Connect   {server.location} (embedded, kept running; make stop)   web UI {server.ui_url}")
    if log is not None:
        print(f"  full log        {log}")
    print(f"  in the UI       make dev, then {settings.ui_url}/runs/{result.run_id}")
