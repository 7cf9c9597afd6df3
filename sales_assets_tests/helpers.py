"""What several test modules share: the suite's environment, queries of the stored tables, reading
a run's events, hand-written files, a loopback webhook, the code location as the daemon loads it.
Test modules import from here, never from one another."""

from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sales_assets.contract import PG_TABLES, RAW_COLUMNS

PROJECT = Path(__file__).resolve().parent.parent

# What the tests' settings never take from a developer's environment: their own data directory and
# databases, and the run config's defaults (an exported SALES_SOURCE_PATH would make every run
# ingest that file instead of generating). Retries wait a tenth of a second, not seconds.
TEST_ENV = {
    "SALES_DATA_DIR": "",
    "SALES_PARQUET_URI": "",
    "SALES_PG_URL": "",
    "SALES_CH_URL": "",
    "SALES_SOURCE_PATH": "",
    "SALES_ROWS": "",
    "SALES_SEED": "",
    "SALES_SPARK_REMOTE": "",  # the suite's own embedded Spark Connect server, under its data dir
    "SALES_SPARK_MASTER": "local[2]",
    "SALES_SPARK_CONF": "spark.sql.shuffle.partitions=2 spark.driver.memory=1g",
    "SALES_RETRY_DELAY_SECONDS": "0.1",
}
HEADER = ",".join(RAW_COLUMNS)
ASSETS = ("raw_sales", "cleaned_sales", "rejected_sales", "sales_aggregates", "clickhouse_sales_aggregates")
# the golden materialization the suite starts its stored state from (conftest.py, `golden`)
GOLDEN_DATE = "2026-11-20"  # fixed, so the assertions do not depend on today
GOLDEN_CONFIG = {"rows": 3000, "seed": 11, "dirty_fraction": 0.05}  # every reject reason occurs
AGGREGATE_COLUMNS = "grain, region, product, orders, sales, units, revenue, avg_check, first_sale, last_sale"


def run_config(**raw_sales_config) -> dict:
    return {"ops": {"raw_sales": {"config": raw_sales_config}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the stored tables ---------------------------------------------------------------------------


def query(pg, sql: str, params=()) -> list[tuple]:
    with pg.connect() as conn:
        return conn.execute(sql, params).fetchall()


def execute(pg, sql: str) -> None:
    with pg.connect() as conn:
        conn.execute(sql)


def table_digest(pg, table: str) -> tuple[int, str]:
    """Row count and an order-independent digest of the whole content."""
    return query(pg, f"select count(*), md5(coalesce(string_agg(t::text, '|' order by t::text), '')) from {table} t")[0]


def staging_tables(pg) -> list:
    return query(pg, "select tablename from pg_tables where schemaname = 'sales' and tablename like '\\_stage%%'")


def ch_rows(ch, import_date: str) -> list[tuple]:
    return (
        ch.get_client()
        .query(
            f"select {AGGREGATE_COLUMNS} from sales.sales_aggregates where import_date = {{d:Date}} "
            "order by grain, region, product",
            parameters={"d": date.fromisoformat(import_date)},
        )
        .result_rows
    )


def stored_state(pg, ch, spark, settings, import_date: str = GOLDEN_DATE) -> tuple:
    """Everything a run may change, digested: both PostgreSQL tables and the aggregates, the
    ClickHouse snapshot of `import_date`, the raw Parquet's count and largest id."""
    raw = spark.read.parquet(f"{settings.parquet_uri}/raw_sales")
    return (
        {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES},
        ch_rows(ch, import_date),
        raw.count(),
        raw.agg({"sale_id": "max"}).first()[0],
    )


def clickhouse_staging_tables(ch) -> int:
    return int(
        ch.get_client().command("select count() from system.tables where database = 'sales' and name like '\\_stage%'")
    )


def cached_rdds(spark_resource) -> set[int]:
    """Ids of what the Spark server holds cached, from its monitoring API (a Spark Connect client
    cannot see the server's cache)."""
    return {rdd["id"] for rdd in spark_resource.embedded.running().monitoring("storage/rdd")}


def cleaning_counts(classified) -> dict[str, int]:
    """Rows per outcome of a classified frame: `kept`, `amount_repaired`, one key per reject reason
    (what the pipeline tallies while it writes the tables)."""
    from pyspark.sql import functions as F

    outcome = F.coalesce(F.col("reason"), F.lit("kept"))
    rows = (
        classified.groupBy(outcome.alias("outcome"))
        .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("amount_repaired").cast("long")).alias("repaired"))
        .collect()
    )  # one row per outcome: a handful
    counts = {r["outcome"]: r["n"] for r in rows}
    counts["amount_repaired"] = sum(r["repaired"] or 0 for r in rows)
    counts.setdefault("kept", 0)
    return counts


# --- a run's events ------------------------------------------------------------------------------


def materializations(result) -> dict[str, dict]:
    return {
        e.materialization.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def evaluations(result) -> dict[str, object]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def failure_messages(result) -> str:
    return "\n".join(e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure)


def failed_steps(result) -> list[str]:
    return [e.step_key for e in result.all_events if e.is_step_failure]


def events_of(result, kind: str, step: str) -> list:
    return [e for e in result.all_events if e.event_type_value == kind and e.step_key == step]


# --- files as users export them ------------------------------------------------------------------


def rfc4180(field: str, quote_all: bool) -> str:
    """A field as RFC 4180 writes it: quoted when it holds a comma, a quote, CR or LF. (Python's
    csv.writer leaves a lone CR unquoted in an LF file, which no reader can read back.)"""
    if quote_all or any(c in field for c in ',"\r\n'):
        return '"' + field.replace('"', '""') + '"'
    return field


def csv_bytes(rows: list[list[str]], terminator: str | list[str], bom: bool, quote_all: bool) -> bytes:
    """The header and `rows` as RFC 4180 CSV; `terminator` ends every line, or a list gives each
    line's own ending in turn (files joined with `cat` mix them)."""
    lines = [",".join(rfc4180(f, quote_all) for f in row) for row in [list(RAW_COLUMNS), *rows]]
    ends = [terminator] * len(lines) if isinstance(terminator, str) else (terminator * len(lines))[: len(lines)]
    return (("\ufeff" if bom else "") + "".join(line + end for line, end in zip(lines, ends, strict=True))).encode(
        "utf-8"
    )


def write_csv(path: Path, header, rows) -> str:
    path.write_text("\n".join([",".join(header)] + [",".join(r) for r in rows]) + "\n")
    return str(path)


# --- the world outside ---------------------------------------------------------------------------


class Webhook:
    """A real HTTP server on loopback that records what is posted to it, answering after `delay_s`."""

    def __init__(self, delay_s: float = 0.0):
        self.posts: list[dict] = []
        self.delay_s = delay_s
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(hook.delay_s)
                hook.posts.append({"path": self.path, "type": self.headers["Content-Type"], **json.loads(body)})
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/T000/B000/secret-part"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def code_location(instance, settings):
    """The code location as the daemon and the UI load it (its module, the suite's settings), in
    this process: for the freshness daemon's evaluation and the GraphQL API. Dagster has no public
    API for an in-process workspace; its own tests build one this way."""
    import pytest
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name="sales_assets.definitions", attribute="defs", working_directory=str(PROJECT)),
        location_name="sales_assets",
    )
    with pytest.MonkeyPatch.context() as env:
        for name, value in {**TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir)}.items():
            env.setenv(name, value)
        with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), instance) as workspace:
            yield workspace
