"""The same graph on a Spark standalone cluster (the embedded Spark Connect server's master; executors
in a JVM of their own, started from the installed pyspark distribution) gives exactly the tables
local mode gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from sales_assets.contract import PG_TABLES
from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.embedded.spark_cluster import LocalCluster
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect
from sales_assets_tests.helpers import free_port

pytestmark = [pytest.mark.system, pytest.mark.cluster]

CH_DUMP = """
import json, sys, clickhouse_connect
c = clickhouse_connect.get_client(dsn=sys.argv[1])
rows = c.query("select grain, region, product, orders, sales, units, toString(revenue), toString(avg_check), "
               "toString(first_sale), toString(last_sale), toString(import_date) from sales.sales_aggregates "
               "order by grain, region, product").result_rows
print(json.dumps(rows))
"""


def _run(data_dir: Path, master: str) -> None:
    env = {
        **os.environ,
        "SALES_DATA_DIR": str(data_dir),
        "SALES_SPARK_MASTER": master,
        "SALES_ROWS": "2500",
        "SALES_SEED": "77",
        "SALES_PG_URL": "",
        "SALES_CH_URL": "",
        "SALES_SOURCE_PATH": "",
        "SALES_SPARK_REMOTE": "",  # each run dir's own embedded Spark Connect server, with that master
    }
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets", "run"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SUCCESS" in done.stdout


def _pg_digest(data_dir: Path) -> dict:
    with psycopg.connect(EmbeddedPostgres(data_dir / "postgres").url()) as conn:
        return {
            t: conn.execute(
                f"select count(*), md5(string_agg(t::text, '|' order by t::text)) from sales.{t} t"
            ).fetchone()
            for t in PG_TABLES
        }


def _ch_rows(data_dir: Path) -> list:
    out = subprocess.run(
        [sys.executable, "-c", CH_DUMP, f"chdb://{data_dir / 'clickhouse'}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.fixture(scope="module")
def two_runs():
    root = Path(tempfile.mkdtemp(prefix="sales_cluster_test_"))
    root.chmod(0o755)
    cluster = LocalCluster(root / "spark-cluster", port=free_port(), ui_port=free_port())
    local_dir, cluster_dir = root / "local", root / "cluster"
    try:
        _run(local_dir, "local[2]")
        _run(cluster_dir, cluster.start())
        yield local_dir, cluster_dir, cluster
    finally:
        cluster.stop()
        for d in (local_dir, cluster_dir):
            EmbeddedPostgres(d / "postgres").stop()
            EmbeddedSparkConnect(d / "spark-connect", {}).stop()


def test_the_cluster_ran_the_job_on_its_executors(two_runs):
    _, _, cluster = two_runs
    apps = list((cluster.root / "work").glob("app-*"))
    assert apps, "no application ran on the standalone worker"
    assert any(p.name == "stderr" for app in apps for p in app.rglob("*"))


def test_cluster_mode_gives_exactly_the_local_tables(two_runs):
    local_dir, cluster_dir, _ = two_runs
    local, on_cluster = _pg_digest(local_dir), _pg_digest(cluster_dir)
    assert local["cleaned_sales"][0] > 2000
    assert on_cluster == local
    assert _ch_rows(cluster_dir) == _ch_rows(local_dir) != []
