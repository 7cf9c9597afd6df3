"""`python -m sales_assets run|dev|env|stop|...`: what the make targets call."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from sales_assets.settings import Settings

PROJECT_DIR = Path(__file__).resolve().parent.parent


def prepare_dagster_home(settings: Settings) -> Path:
    """A persistent Dagster instance under SALES_DATA_DIR (unless DAGSTER_HOME is set), so runs
    from `make run` show up in `make dev`."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        shutil.copyfile(PROJECT_DIR / "dagster.yaml", config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def cmd_run(settings: Settings) -> int:
    from dagster import DagsterInstance

    from sales_assets.definitions import build_definitions
    from sales_assets.jobs import SALES_JOB
    from sales_assets.summary import print_summary

    prepare_dagster_home(settings)
    defs = build_definitions(settings)
    started = time.perf_counter()
    with DagsterInstance.get() as instance:
        result = defs.resolve_job_def(SALES_JOB).execute_in_process(instance=instance, raise_on_error=False)
        print_summary(result, instance, settings, wall_seconds=time.perf_counter() - started)
    return 0 if result.success else 1


def cmd_dev(settings: Settings) -> int:
    prepare_dagster_home(settings)
    dagster = Path(sys.executable).with_name("dagster")
    os.execv(str(dagster), [str(dagster), "dev", "-w", str(PROJECT_DIR / "workspace.yaml")])


def cmd_env(settings: Settings) -> int:
    from sales_assets.definitions import clickhouse_resource, postgres_resource

    # quoted for `eval "$(make -s env)"`: URLs carry `&` between their query parameters
    print(f"SALES_PG_URL={shlex.quote(postgres_resource(settings, in_definitions=False).start())}")
    print(f"SALES_CH_URL={shlex.quote(clickhouse_resource(settings, in_definitions=False).dsn)}")
    return 0


def cmd_stop(settings: Settings) -> int:
    from sales_assets.dev.embedded_postgres import EmbeddedPostgres

    stopped = EmbeddedPostgres(settings.embedded_pg_dir).stop()
    print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
    return 0


def cmd_spark_cluster(settings: Settings) -> int:
    from sales_assets.dev.spark_cluster import LocalCluster

    url = LocalCluster(settings.data_dir / "spark-cluster").start()
    print(f"Spark standalone cluster up (one worker): SALES_SPARK_MASTER={url}")
    return 0


def cmd_spark_cluster_stop(settings: Settings) -> int:
    from sales_assets.dev.spark_cluster import LocalCluster

    stopped = LocalCluster(settings.data_dir / "spark-cluster").stop()
    print("Spark cluster stopped" if stopped else "no Spark cluster was running")
    return 0


def cmd_jvm_archive(settings: Settings) -> int:
    from sales_assets.dev import jvm_archive
    from sales_assets.resources.spark import DRIVER_JAVA_OPTIONS, spark_config

    started = time.perf_counter()
    # as the runs' driver, minus an archive already there: the new one records every class anew
    path = jvm_archive.build(spark_config("local[2]", **{"spark.driver.extraJavaOptions": DRIVER_JAVA_OPTIONS}))
    print(
        f"JVM class archive for the Spark driver: {path} "
        f"({path.stat().st_size >> 20} MB, built in {time.perf_counter() - started:.0f} s)"
    )
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sales_assets")
    parser.add_argument(
        "command", choices=["run", "dev", "env", "stop", "spark-cluster", "spark-cluster-stop", "jvm-archive"]
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    commands = {
        "run": cmd_run,
        "dev": cmd_dev,
        "env": cmd_env,
        "stop": cmd_stop,
        "spark-cluster": cmd_spark_cluster,
        "spark-cluster-stop": cmd_spark_cluster_stop,
        "jvm-archive": cmd_jvm_archive,
    }
    sys.exit(commands[args.command](settings))
