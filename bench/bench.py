"""`make bench`: the real graph at 1M rows next to the same work done the way a typical per-row
pipeline does it, plus the PostgreSQL COPY floor. Writes bench/results.json and prints a table.

Ours: the same Dagster job as `make run` (in-process executor, one Spark Connect session), on fresh
tables in a separate data directory (SALES_DATA_DIR/bench), so your dev tables are left alone:
once cold (no Spark server up: its start is part of the run), then warm (the server already up, as
for every run after the first; `--repeat N` runs N in a row and records the server's memory and
cache after each). The per-row baseline, same bench, in a process and a classic local Spark
session of its own: a per-row Faker loop for generation; pandas -> Spark without Arrow;
the same cleaning, then every cleaned row collected to the driver and inserted with `executemany`;
aggregates computed the same way from a pandas read-back (Arrow off) and inserted row by row;
ClickHouse rows inserted as Python tuples. It processes the very raw lines ours generated, and its
tables are compared with ours, so both did the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import psutil

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from sales_assets.resources.run_date import RUN_DATE_TAG  # noqa: E402
from sales_assets.settings import Settings  # noqa: E402


class PeakRss:
    """Peak resident memory of this process and its children (the Spark JVM, Python workers)."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(results: dict, key: str):
    class _T:
        def __enter__(self):
            self.t = time.perf_counter()

        def __exit__(self, *exc):
            results[key] = round(time.perf_counter() - self.t, 3)

    return _T()


class RunFailed(Exception):
    pass


def run_ours(settings: Settings, rows: int, run_date: str, label: str, verbose: bool = False) -> dict:
    """One run as `make run` does it: a thin client that connects to the Spark Connect server
    (starting it if none is up) when the run starts, and releases its session at the end."""
    from dagster import DagsterInstance

    from sales_assets.definitions import build_definitions
    from sales_assets.progress import execute_with_progress
    from sales_assets.run_failures import run_failure
    from sales_assets.summary import write_run_log

    out: dict = {}
    defs = build_definitions(settings)
    print(f"{label}:", flush=True)
    with DagsterInstance.ephemeral() as instance:
        started = time.perf_counter()
        result = execute_with_progress(
            defs.resolve_job_def("sales_job"),
            instance,
            run_config={"ops": {"raw_sales": {"config": {"rows": rows, "seed": 42, "source_path": None}}}},
            verbose=verbose,
            tags={RUN_DATE_TAG: run_date},
        )  # generated, always
        out["job_s"] = round(time.perf_counter() - started, 3)
        if not result.success:
            failure = run_failure(instance, result.run_id)
            log = write_run_log(instance, result.run_id, settings.data_dir / "logs")
            raise RunFailed(f"{label} failed at {failure.where}: {failure.error}\n{failure.details}\nfull log: {log}")
        stats = {s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)}
        meta = {
            e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
            for e in result.get_asset_materialization_events()
        }
    assets = ("raw_sales", "clean_sales", "sales_aggregates", "clickhouse_sales_aggregates")
    out["stages"] = {k: round(stats[k], 3) for k in assets}
    out["checks_s"] = round(sum(v for k, v in stats.items() if k not in assets), 3)
    # cleaning and both tables' COPY run as one pass: raw lines per second of that pass
    out["clean_and_load_rows_per_s"] = meta["cleaned_sales"]["load_rows_per_s"]
    out["cleaned_rows"] = meta["cleaned_sales"]["dagster/row_count"]
    out["raw_uri"] = meta["raw_sales"]["dagster/uri"]
    return out


def _placeholders(table) -> str:
    return ", ".join(["%s"] * len(table.columns))


def run_baseline(settings: Settings, rows: int, raw_uri: str, run_date: date, spark) -> dict:
    """A typical per-row pipeline, stage by stage, on the same raw lines."""
    import pandas as pd
    from faker import Faker

    from sales_assets import connections
    from sales_assets.contract import CLEANED_SALES, CLICKHOUSE_AGGREGATES, SALES_AGGREGATES
    from sales_assets.transforms.aggregate import aggregate_sales
    from sales_assets.transforms.clean import classify_sales, cleaned_lines

    t: dict = {}
    started = time.perf_counter()
    with timed(t, "generate_per_row_faker"):
        fake = Faker()
        Faker.seed(42)
        rnd = random.Random(42)
        products = [fake.word().title() for _ in range(48)]
        regions = [fake.city() for _ in range(12)]
        lines = []
        for i in range(rows):  # the per-row loop of a typical pipeline
            q, p = rnd.randint(1, 5), round(rnd.uniform(1, 500), 2)
            lines.append(
                {
                    "sale_id": i + 1,
                    "order_id": i // 2 + 1,
                    "customer_id": rnd.randint(1, 50000),
                    "product": rnd.choice(products),
                    "category": "Misc",
                    "region": rnd.choice(regions),
                    "quantity": q,
                    "unit_price": p,
                    "amount": round(q * p, 2),
                    "sale_ts": fake.date_time_between(start_date=run_date - timedelta(days=365), end_date=run_date),
                }
            )
        del lines
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "false")
    try:
        with timed(t, "pandas_to_spark_no_arrow"):
            raw_pdf = pd.read_parquet(raw_uri)
            raw = spark.createDataFrame(raw_pdf)
            raw.count()
        with timed(t, "clean_and_collect_to_driver"):
            cleaned_rows = cleaned_lines(classify_sales(raw)).collect()
        pg = connections.postgres(settings)
        pg.start()
        with timed(t, "pg_load_executemany"), pg.connect(autocommit=False) as conn:
            conn.execute("drop schema if exists bench_baseline cascade; create schema bench_baseline")
            conn.execute(f"create table bench_baseline.cleaned_sales (like {CLEANED_SALES.qualified})")
            with conn.cursor() as cur:
                cur.executemany(
                    f"insert into bench_baseline.cleaned_sales values ({_placeholders(CLEANED_SALES)})",
                    [tuple(r) for r in cleaned_rows],
                )
            conn.commit()
        del cleaned_rows
        with timed(t, "aggregate_via_pandas_no_arrow"), pg.connect(autocommit=False) as conn:
            with conn.cursor() as cur:
                cur.execute("select * from bench_baseline.cleaned_sales")
                cols = [d.name for d in cur.description]
                pdf = pd.DataFrame(cur.fetchall(), columns=cols)
            aggregates = aggregate_sales(spark.createDataFrame(pdf)).collect()
            conn.execute(f"create table bench_baseline.sales_aggregates (like {SALES_AGGREGATES.qualified})")
            with conn.cursor() as cur:
                cur.executemany(
                    f"insert into bench_baseline.sales_aggregates values ({_placeholders(SALES_AGGREGATES)})",
                    [(run_date, *r) for r in aggregates],  # as of the run's date, like ours
                )
            conn.commit()
        with timed(t, "clickhouse_row_inserts"):
            clickhouse = connections.clickhouse(settings)
            client = clickhouse.get_client()
            baseline_table = f"{CLICKHOUSE_AGGREGATES.schema}.bench_baseline_aggregates"
            client.command(f"create table if not exists {baseline_table} as {CLICKHOUSE_AGGREGATES.qualified}")
            client.command(f"truncate table {baseline_table}")
            now = pd.Timestamp.now().to_pydatetime().replace(microsecond=0)
            client.insert(baseline_table, [list(r) + [run_date, now] for r in aggregates])
            clickhouse.close()
    finally:
        spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    t["e2e_s"] = round(time.perf_counter() - started, 3)
    with pg.connect() as conn:  # same work, same tables
        for table in (CLEANED_SALES, SALES_AGGREGATES):
            ours, baseline = table.qualified, f"bench_baseline.{table.name}"
            diff = conn.execute(
                f"select count(*) from ((select * from {ours} except all select * from {baseline}) "
                f"union all (select * from {baseline} except all select * from {ours})) d"
            ).fetchone()[0]
            t[f"{table.name}_rows_differing_from_ours"] = diff
        conn.execute("drop schema bench_baseline cascade")
    return t


def load_vs_floor(settings: Settings, spark, repeats: int = 3) -> dict:
    """Our load path against the floor, on the same cleaned rows, taken in turns: the floor is one
    binary COPY of an Arrow table already in memory (one connection); ours is a cached Spark frame
    through `replace_table` (executor-side binary COPY, primary key, swap, ANALYZE). In the pipeline
    this load is fused with cleaning, so it cannot be timed apart there. Each run starts after a
    CHECKPOINT, so neither pays for the dirty pages the other left; the best of `repeats` each (a
    single COPY on this VM varied 1.3-2.0 s within minutes)."""
    from dataclasses import replace

    import adbc_driver_postgresql.dbapi as adbc

    from sales_assets import connections
    from sales_assets.contract import CLEANED_SALES
    from sales_assets.pg_transfer import read_arrow, read_frame, replace_table
    from sales_assets.pg_transfer.write import create_table_sql
    from sales_assets.transforms.parallelism import default_parallelism

    pg = connections.postgres(settings)
    pg.start()
    floor = replace(CLEANED_SALES, name="bench_copy_floor")
    table = read_arrow(pg.dsn, CLEANED_SALES)
    frame = read_frame(spark, pg.dsn, CLEANED_SALES, default_parallelism(spark)).cache()
    frame.count()
    ours_target = replace(CLEANED_SALES, name="bench_our_load")
    floor_runs, ours = [], []
    with adbc.connect(pg.dsn) as conn, pg.connect() as admin:
        for _ in range(repeats):
            with conn.cursor() as cur:
                cur.execute(f"drop table if exists {floor.qualified}")
                cur.execute(create_table_sql(floor).as_string())
            conn.commit()
            admin.execute("checkpoint")
            started = time.perf_counter()
            with conn.cursor() as cur:
                cur.adbc_ingest(floor.name, table, mode="append", db_schema_name=floor.schema)
            conn.commit()
            floor_runs.append(round(time.perf_counter() - started, 3))
            admin.execute("checkpoint")
            ours.append(replace_table(frame, pg.dsn, ours_target))
        admin.execute(f"drop table {floor.qualified}")
        admin.execute(f"drop table {ours_target.qualified}")
    frame.unpersist()
    best = min(ours, key=lambda stats: stats.seconds)
    return {
        "copy_floor_s": min(floor_runs),
        "copy_floor_runs_s": floor_runs,
        "copy_floor_rows_per_s": round(table.num_rows / min(floor_runs)),
        "pg_load_s": round(best.seconds, 3),
        "pg_load_runs_s": [round(r.seconds, 3) for r in ours],
        "pg_load_phases_s": {phase: round(seconds, 3) for phase, seconds in best.phases.items()},
        "pg_load_rows_per_s": round(best.rows[ours_target.name] / best.seconds),
    }


def baseline_in_own_process(settings: Settings, rows: int, raw_uri: str, run_date: date) -> dict:
    """The baseline runs as such pipelines usually do: a classic local Spark session of its own,
    started in its own process (its JVM start is part of its time)."""
    done = subprocess.run(
        [sys.executable, __file__, "--baseline-of", raw_uri, "--rows", str(rows), "--run-date", run_date.isoformat()],
        env={
            # pyspark marks a process that opened a Spark Connect session: the child is a classic one
            **{k: v for k, v in os.environ.items() if k not in ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE")},
            "SALES_DATA_DIR": str(settings.data_dir),
            "SALES_PARQUET_URI": "",
        },
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the baseline failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def baseline_main(raw_uri: str, rows: int, run_date: date) -> None:
    from pyspark.sql import SparkSession

    from sales_assets.resources.spark import spark_config

    settings = Settings.from_env()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    started = time.perf_counter()
    config = spark_config(settings.spark_master, **{"spark.ui.enabled": "false", **settings.spark_conf})
    spark = SparkSession.builder.config(map=config).getOrCreate()
    spark_start_s = round(time.perf_counter() - started, 3)
    baseline = run_baseline(settings, rows, raw_uri, run_date, spark)
    baseline["spark_start_s"] = spark_start_s
    spark.stop()
    print(json.dumps(baseline))


def server_figures(settings: Settings) -> dict:
    """What the long-lived server holds after a run: cached data and resident memory."""
    from sales_assets import connections

    server = connections.spark(settings).embedded.running()
    return {"cached": len(server.monitoring("storage/rdd")), "server_rss_mb": round(server.rss_bytes() / 2**20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the per-row baseline")
    parser.add_argument("--repeat", type=int, default=1, help="warm runs in a row (server memory, cache after each)")
    parser.add_argument("--out", default=str(PROJECT / "bench" / "results.json"))
    parser.add_argument("-v", "--verbose", action="store_true", help="Dagster's event stream of each run too")
    parser.add_argument("--baseline-of", help=argparse.SUPPRESS)  # internal: the baseline's own process
    parser.add_argument("--run-date", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_of:
        return baseline_main(args.baseline_of, args.rows, date.fromisoformat(args.run_date))

    base = Settings.from_env()
    bench_dir = base.data_dir / "bench"
    for sub in ("parquet", "clickhouse", "dagster"):
        shutil.rmtree(bench_dir / sub, ignore_errors=True)  # fresh tables, every time
    bench_dir.mkdir(parents=True, exist_ok=True)
    # always the embedded databases of the bench directory: the bench drops and recreates its tables
    settings = Settings.from_env(
        {
            **os.environ,
            "SALES_DATA_DIR": str(bench_dir),
            "SALES_PARQUET_URI": "",
            "SALES_PG_URL": "",
            "SALES_CH_URL": "",
        }
    )
    run_date = date.today()

    from sales_assets import connections
    from sales_assets.contract import SCHEMA

    postgres = connections.postgres(settings)
    postgres.start()
    with postgres.connect() as conn:
        conn.execute(f"drop schema if exists {SCHEMA} cascade")
    server = connections.spark(settings).embedded
    server.stop()  # cold: no Spark server up, as on a fresh machine or after `make stop`

    try:
        results: dict = {
            "rows": args.rows,
            "machine": f"{os.cpu_count()} cores, {round(psutil.virtual_memory().total / 2**30)} GiB",
            "spark_master": settings.spark_master,
        }
        with PeakRss() as rss:
            cold = run_ours(settings, args.rows, run_date.isoformat(), "cold run (no Spark server up)", args.verbose)
            results["cold_e2e_s"] = cold["job_s"]
            results["cold_stages"] = cold["stages"]
            warm_runs = []
            for n in range(max(1, args.repeat)):
                warm = run_ours(settings, args.rows, run_date.isoformat(), f"warm run {n + 1}", args.verbose)
                warm_runs.append({"e2e_s": warm["job_s"], **server_figures(settings)})
        results["warm_e2e_s"] = min(run["e2e_s"] for run in warm_runs)
        results["warm_runs"] = warm_runs
        results["e2e_s"] = results["warm_e2e_s"]  # every run after the first
        results["warm_vs_cold"] = round(results["warm_e2e_s"] / results["cold_e2e_s"], 3)
        results["peak_rss_mb"] = round(rss.peak / 2**20)
        results["stages"] = warm["stages"]
        results["checks_s"] = warm["checks_s"]
        results["rows_per_s"] = {k: round(args.rows / v) for k, v in warm["stages"].items() if v}
        results["e2e_rows_per_s"] = round(args.rows / results["e2e_s"])
        results["clean_and_load_rows_per_s"] = warm["clean_and_load_rows_per_s"]
        bench_session = connections.spark(settings)
        results.update(load_vs_floor(settings, bench_session.spark_session))
        bench_session.spark_session.stop()
        fraction = results["pg_load_rows_per_s"] / results["copy_floor_rows_per_s"]
        results["pg_load_fraction_of_floor"] = round(fraction, 3)
        if not args.no_baseline:
            baseline = baseline_in_own_process(settings, args.rows, warm["raw_uri"], run_date)
            results["baseline_stages"] = {k: v for k, v in baseline.items() if k != "e2e_s"}
            results["baseline_e2e_s"] = round(baseline["e2e_s"] + baseline["spark_start_s"], 3)
            results["speedup_vs_baseline"] = round(results["baseline_e2e_s"] / results["warm_e2e_s"], 2)
            results["speedup_cold_vs_baseline"] = round(results["baseline_e2e_s"] / results["cold_e2e_s"], 2)

    finally:
        server.stop()  # the bench's own servers, passed or failed: leave nothing running
        from sales_assets.embedded.postgres import EmbeddedPostgres

        EmbeddedPostgres(settings.embedded_pg_dir).stop()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(r: dict) -> None:
    print(f"\nsales_assets benchmark: {r['rows']:,} rows, {r['machine']}, Spark {r['spark_master']}")
    print(f"{'stage':<44}{'seconds':>10}{'rows/s':>14}")
    print(f"{'cold run: no Spark server up (its start incl.)':<44}{r['cold_e2e_s']:>10.2f}")
    print(f"{'warm run: the server already up':<44}{r['warm_e2e_s']:>10.2f}{r['e2e_rows_per_s']:>14,}")
    print(f"{'  warm as a fraction of cold':<44}{r['warm_vs_cold']:>10.2f}")
    print("stages of the warm run:")
    for stage, seconds in r["stages"].items():
        print(f"{stage:<44}{seconds:>10.2f}{r['rows_per_s'].get(stage, 0):>14,}")
    print(f"{'6 asset checks, together':<44}{r['checks_s']:>10.2f}")
    print(f"{'clean + load pass (raw lines, both tables)':<44}{'':>10}{r['clean_and_load_rows_per_s']:>14,}")
    print(f"{'our load alone, best of 3 (frame -> table)':<44}{r['pg_load_s']:>10.2f}{r['pg_load_rows_per_s']:>14,}")
    floor = "COPY floor, best of 3 (binary COPY of Arrow)"
    print(f"{floor:<44}{r['copy_floor_s']:>10.2f}{r['copy_floor_rows_per_s']:>14,}")
    print(f"{'  our load as a fraction of the floor':<44}{r['pg_load_fraction_of_floor']:>10.2f}")
    # the floor is a bare COPY: no primary key, ANALYZE, staged-row count or swap, all timed here
    print("  our load's phases: " + ", ".join(f"{k} {v:.2f}" for k, v in r["pg_load_phases_s"].items()))
    print(f"{'peak RSS (Spark server + Python), MB':<44}{r['peak_rss_mb']:>10,}")
    for i, run in enumerate(r["warm_runs"], 1):
        print(f"  warm run {i}: {run['e2e_s']:.2f} s, server RSS {run['server_rss_mb']:,} MB, cached {run['cached']}")
    if "baseline_e2e_s" in r:
        print("per-row baseline:")
        for stage, value in r["baseline_stages"].items():
            print(f"  {stage:<42}{value:>10}")
        print(f"{'  baseline end to end (incl. Spark start)':<44}{r['baseline_e2e_s']:>10.2f}")
        print(f"{'  speedup of ours vs baseline':<44}{r['speedup_vs_baseline']:>10.2f}x (warm)")
        print(f"{'  speedup of ours vs baseline, cold':<44}{r['speedup_cold_vs_baseline']:>10.2f}x")


if __name__ == "__main__":
    try:
        main()
    except RunFailed as failed:  # the failing step's error in full, no traceback of the bench's own
        print(f"\nbench stopped: {failed}", file=sys.stderr)
        sys.exit(1)
