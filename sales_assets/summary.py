"""The short report `make run` prints after a run."""

from __future__ import annotations

from sales_assets.contract import CLICKHOUSE_AGGREGATES, REJECT_REASONS, SALES_AGGREGATES


def _metadata(result) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        out[mat.asset_key.to_user_string()] = {k: v.value for k, v in mat.metadata.items()}
    return out


def print_summary(result, instance, settings, wall_seconds: float) -> None:
    from sales_assets.definitions import clickhouse_resource, postgres_resource, spark_resource

    meta = _metadata(result)
    print()
    print(f"run {result.run_id}: {'SUCCESS' if result.success else 'FAILURE'} in {wall_seconds:.1f} s")
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(f"  failed step {event.step_key}: {event.step_failure_data.error.message.strip()}")
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
    if "clickhouse_sales_aggregates" in meta:
        import_date = meta["clickhouse_sales_aggregates"]["import_date"]
        postgres = postgres_resource(settings, in_definitions=False)
        clickhouse = clickhouse_resource(settings, in_definitions=False)
        postgres.start()
        with postgres.connect() as conn:
            pg_total = conn.execute(
                f"select sum(revenue) from {SALES_AGGREGATES.qualified} where grain = 'region'"
            ).fetchone()[0]
        try:
            ch_total = (
                clickhouse.get_client()
                .query(
                    f"select sum(revenue) from {CLICKHOUSE_AGGREGATES.qualified} "
                    "where import_date = {d:String}::Date and grain = 'region'",
                    parameters={"d": import_date},
                )
                .result_rows[0][0]
            )
        finally:
            clickhouse.close()
        print(f"  revenue total   PostgreSQL {pg_total}   ClickHouse {ch_total}   (import_date {import_date})")
    spark = spark_resource(settings, in_definitions=False)
    if spark.remote:
        print(f"  Spark Connect   {spark.location}")
    elif server := spark.embedded.running():
        print(f"  Spark Connect   {server.location} (embedded, kept running; make stop)   web UI {server.ui_url}")
    stats = [s for s in instance.get_run_step_stats(result.run_id) if s.end_time and s.start_time]
    if stats:
        print("  seconds per step:")
        width = max(len(s.step_key) for s in stats) + 2  # check steps have long keys: one column for all
        for s in stats:
            print(f"    {s.step_key:<{width}}{s.end_time - s.start_time:>7.1f}")
