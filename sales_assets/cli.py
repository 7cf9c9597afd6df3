"""`python -m sales_assets run|dev|env|stop|...`: what the make targets call."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from sales_assets.prerequisites import PrerequisiteError, require_usable_dir
from sales_assets.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


def prepare_dagster_home(settings: Settings) -> Path:
    """A persistent Dagster instance under SALES_DATA_DIR (unless DAGSTER_HOME is set), so runs
    from `make run` show up in `make dev`."""
    require_usable_dir(settings.data_dir)  # a sentence, before Dagster's own mkdir fails with a traceback
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(PROJECT_DIR / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_run(settings: Settings, verbose: bool = False) -> int:
    """The whole graph once. Quiet by default: a line per step and the summary; `-v` (make run V=1)
    adds Dagster's event stream. The full log is written either way."""
    from dagster import DagsterInstance

    from sales_assets.definitions import build_definitions
    from sales_assets.jobs import SALES_JOB
    from sales_assets.progress import execute_with_progress
    from sales_assets.summary import print_summary, write_run_log

    prepare_dagster_home(settings)
    defs = build_definitions(settings)
    source = settings.source_path or f"{settings.rows:,} generated lines (seed {settings.seed})"
    print(f"{SALES_JOB}: {source}" + ("" if verbose else "   (make run V=1: Dagster's event stream too)"), flush=True)
    started = time.perf_counter()
    with DagsterInstance.get() as instance:
        result = execute_with_progress(defs.resolve_job_def(SALES_JOB), instance, verbose=verbose)
        log = write_run_log(instance, result.run_id, settings.data_dir / "logs")
        print_summary(result, instance, settings, wall_seconds=time.perf_counter() - started, log=log)
    return 0 if result.success else 1


def cmd_dev(settings: Settings) -> int:
    prepare_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(PROJECT_DIR / "workspace.yaml")])


def cmd_env(settings: Settings) -> int:
    from sales_assets import connections

    # quoted for `eval "$(make -s env)"`: URLs carry `&` and `;` between their parameters
    print(f"SALES_PG_URL={shlex.quote(connections.postgres(settings).start())}")
    print(f"SALES_CH_URL={shlex.quote(connections.clickhouse(settings).dsn)}")
    spark = connections.spark(settings)
    print(f"SALES_SPARK_REMOTE={shlex.quote(spark.remote or spark.embedded.url())}")
    return 0


def cmd_stop(settings: Settings) -> int:
    from sales_assets import connections
    from sales_assets.embedded.postgres import EmbeddedPostgres

    stopped = EmbeddedPostgres(settings.embedded_pg_dir).stop()
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    stopped = connections.spark(settings).embedded.stop()
    print("embedded Spark Connect server stopped" if stopped else "embedded Spark Connect server was not running")
    return 0


def cmd_spark_cluster(settings: Settings) -> int:
    from sales_assets.embedded.spark_cluster import LocalCluster

    url = LocalCluster(settings.data_dir / "spark-cluster").start()
    print(f"Spark standalone cluster up (one worker): SALES_SPARK_MASTER={url}")
    return 0


def cmd_spark_cluster_stop(settings: Settings) -> int:
    from sales_assets.embedded.spark_cluster import LocalCluster

    stopped = LocalCluster(settings.data_dir / "spark-cluster").stop()
    print("Spark cluster stopped" if stopped else "no Spark cluster was running")
    return 0


def cmd_spark_connect_server(settings: Settings, host: str, port: int) -> int:
    from sales_assets.embedded.spark_connect import serve_in_foreground
    from sales_assets.resources.spark import server_settings, spark_config

    # the same static settings the embedded server gets; state and properties under the data dir
    config = server_settings(spark_config(settings.spark_master, **settings.spark_conf))
    serve_in_foreground(config, settings.data_dir / "spark-connect-service", host, port)
    return 0  # not reached: the server replaced this process


def cmd_jvm_archive(settings: Settings) -> int:
    from sales_assets.embedded import jvm_archive
    from sales_assets.resources.spark import DRIVER_JAVA_OPTIONS, spark_config

    started = time.perf_counter()
    # as the runs' server, minus an archive already there: the new one records every class anew
    path = jvm_archive.build(spark_config("local[2]", **{"spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS}))
    print(
        f"JVM class archive for the Spark Connect server: {path} "
        f"({path.stat().st_size >> 20} MB, built in {time.perf_counter() - started:.0f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sales_assets")
    parser.add_argument(
        "command",
        choices=[
            "run",
            "dev",
            "env",
            "stop",
            "spark-cluster",
            "spark-cluster-stop",
            "spark-connect-server",
            "jvm-archive",
        ],
    )
    parser.add_argument("--host", default="127.0.0.1", help="spark-connect-server: the address to listen on")
    parser.add_argument("--port", type=int, default=15002, help="spark-connect-server: the port to listen on")
    parser.add_argument("-v", "--verbose", action="store_true", help="run: print Dagster's event stream too")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    commands = {
        "run": lambda: cmd_run(settings, verbose=args.verbose),
        "dev": lambda: cmd_dev(settings),
        "env": lambda: cmd_env(settings),
        "stop": lambda: cmd_stop(settings),
        "spark-cluster": lambda: cmd_spark_cluster(settings),
        "spark-cluster-stop": lambda: cmd_spark_cluster_stop(settings),
        "spark-connect-server": lambda: cmd_spark_connect_server(settings, args.host, args.port),
        "jvm-archive": lambda: cmd_jvm_archive(settings),
    }
    try:
        sys.exit(commands[args.command]())
    except PrerequisiteError as missing:  # what the machine lacks: one line, no traceback
        print(f"sales_assets: {missing}", file=sys.stderr)
        sys.exit(2)
