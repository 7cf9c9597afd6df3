"""Bad input fails the run before any table is touched, with a message that names the problem;
a good CSV is ingested instead of generating."""

from __future__ import annotations

import gzip
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from sales_assets.contract import RAW_COLUMNS
from sales_assets.definitions import build_definitions
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.settings import Settings
from sales_assets_tests.helpers import (
    GOLDEN_DATE,
    TEST_ENV,
    failure_messages,
    materializations,
    query,
    run_config,
    write_csv,
)

pytestmark = pytest.mark.integration
RUN_DATE = GOLDEN_DATE


def failed_in_raw_sales(result) -> str:
    """The run failed in `raw_sales` (and nowhere else), stored nothing; returns its error."""
    assert not result.success
    assert [e.step_key for e in result.all_events if e.is_step_failure] == ["raw_sales"]
    assert not materializations(result)
    return failure_messages(result)


def test_missing_source_file(run_job, snapshot_of_everything, tmp_path):
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(tmp_path / "nope.csv"))
    assert "nope.csv does not exist" in failed_in_raw_sales(result)
    assert snapshot_of_everything()


def test_file_without_the_raw_columns(run_job, snapshot_of_everything, tmp_path):
    path = write_csv(tmp_path / "partial.csv", ["sale_id", "product", "amount"], [["1", "X", "2.00"]])
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=path)
    assert "lacks column(s) order_id, customer_id" in failed_in_raw_sales(result)
    assert snapshot_of_everything()


def test_empty_file(run_job, snapshot_of_everything, tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(path))
    assert "is empty" in failed_in_raw_sales(result)
    assert snapshot_of_everything()


HEADER = ",".join(RAW_COLUMNS)
A_LINE = "1,10,7,W,T,Kazan,1,2.00,2.00,2026-09-01"


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("header.csv", (HEADER + "\n").encode(), "has no data lines"),
        ("garbage.csv", b"\x00\x01\x02\xff\xfe garbage \x00" * 50, "is not valid UTF-8"),
        ("semicolons.csv", b"a;b;c\n1;2;3\n", "lacks column(s) sale_id, order_id"),
        # unreadable as what its name says it is
        (
            "cut.csv.gz",
            gzip.compress(f"{HEADER}\n{A_LINE}\n".encode())[:40],
            "source_path",
        ),
        ("broken.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1", "cannot read source_path"),
    ],
)
def test_a_bad_file_fails_in_raw_sales_and_touches_nothing(
    run_job, snapshot_of_everything, tmp_path, name, content, expected
):
    path = tmp_path / name
    path.write_bytes(content)
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(path))
    message = failed_in_raw_sales(result)
    assert str(path) in message and expected in message, message
    assert snapshot_of_everything()


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_a_file_without_read_permission_fails_in_raw_sales(run_job, snapshot_of_everything, tmp_path):
    path = tmp_path / "secret.csv"
    path.write_text(f"{HEADER}\n{A_LINE}\n")
    path.chmod(0)
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False, source_path=str(path))
    assert f"source_path {path} is not readable" in failed_in_raw_sales(result)
    assert snapshot_of_everything()


@pytest.mark.parametrize("rows", [0, -3, 364])  # at least a line a date
def test_too_few_rows(run_job, snapshot_of_everything, rows):
    with pytest.raises(Exception, match="rows"):
        result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, rows=rows)
        assert not result.success  # pragma: no cover - config validation raises first
    assert snapshot_of_everything()


def _run_with(env: dict, settings, spark_resource, instance, monkeypatch):
    """A whole run of the real definitions with `env` over the suite's settings."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    bad = Settings.from_env({**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(settings.data_dir), **env})
    job = build_definitions(bad, spark=spark_resource).resolve_job_def("sales_job")
    result = job.execute_in_process(
        instance=instance, run_config=run_config(rows=400), tags={RUN_DATE_TAG: RUN_DATE}, raise_on_error=False
    )
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_START"]  # failed at run start
    assert not materializations(result)
    return "\n".join(str(e.event_specific_data) + (e.message or "") for e in result.all_events)


@pytest.mark.parametrize(
    "variable, url, named",
    [  # nothing listens on port 1
        ("SALES_PG_URL", "postgresql://sales:hunter2secret@127.0.0.1:1/sales", "127.0.0.1:1"),
        ("SALES_CH_URL", "http://sales:hunter2secret@127.0.0.1:1/sales", "ClickHouse at 127.0.0.1:1"),
    ],
)
def test_an_unreachable_server_fails_the_run_at_start_and_hides_the_password(
    snapshot_of_everything, settings, spark_resource, instance, monkeypatch, variable, url, named
):
    text = _run_with({variable: url}, settings, spark_resource, instance, monkeypatch)
    assert named in text
    assert "hunter2secret" not in text
    assert snapshot_of_everything()


def test_wrong_postgres_password_fails_before_anything_and_hides_it(
    snapshot_of_everything, settings, spark_resource, instance, pg, monkeypatch
):
    parts = urlsplit(pg.dsn)
    url = parts._replace(netloc=f"{parts.username}:hunter2wrong@{parts.hostname}:{parts.port}").geturl()
    text = _run_with({"SALES_PG_URL": url}, settings, spark_resource, instance, monkeypatch)
    assert f"{parts.hostname}:{parts.port}" in text and "password authentication failed" in text
    assert "hunter2wrong" not in text
    assert snapshot_of_everything()


class _ClickHouseRefusingThePassword(BaseHTTPRequestHandler):
    """Answers every request as a ClickHouse server does a wrong password (HTTP 516 and its
    exception text). A stand-in: no ClickHouse server can run on this machine, and chdb has no users."""

    seen: list = []

    def _refuse(self):
        self.seen.append(self.headers.get("Authorization") or self.headers.get("X-ClickHouse-Key"))
        body = (
            b"Code: 516. DB::Exception: sales: Authentication failed: password is incorrect, "
            b"or there is no user with such name. (AUTHENTICATION_FAILED) (version 24.8.4.13 (official build))\n"
        )
        self.send_response(516)
        self.send_header("X-ClickHouse-Exception-Code", "516")
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args):
        pass


def test_wrong_clickhouse_password_fails_before_anything_and_hides_it(
    snapshot_of_everything, settings, spark_resource, instance, monkeypatch
):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClickHouseRefusingThePassword)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        url = f"http://sales:hunter2wrong@127.0.0.1:{port}/sales"
        text = _run_with({"SALES_CH_URL": url}, settings, spark_resource, instance, monkeypatch)
    finally:
        server.shutdown()
    assert _ClickHouseRefusingThePassword.seen and all(_ClickHouseRefusingThePassword.seen), "no password was sent"
    assert f"ClickHouse at 127.0.0.1:{port}" in text and "Authentication failed" in text, text[-3000:]
    assert "hunter2wrong" not in text
    assert snapshot_of_everything()


def test_a_csv_source_is_ingested(run_job, pg, tmp_path):
    header = list(RAW_COLUMNS) + ["note"]  # an extra column is ignored
    rows = [
        ["1", "100", "7", " gizmo ", "tools", "kazan ", "2", "3.50", "7.00", "2026-09-01 10:00:00", "a"],
        ["2", "100", "7", "Gizmo", "Tools", "Kazan", "1", "3.50", "", "2026-09-01 10:00:00", "b"],
        ["3", "101", "8", "Widget", "Tools", "Omsk", "0", "9.99", "0.00", "2026-09-02 11:00:00", "c"],
        ["3", "101", "8", "Widget", "Tools", "Omsk", "1", "9.99", "9.99", "2026-09-02 11:00:00", "d"],
        ["4", "102", "9", "Widget", "Tools", "Omsk", "1", "9.99", "9.99", "2026-12-02 11:00:00", "e"],
    ]
    path = write_csv(tmp_path / "sales.csv", header, rows)
    result = run_job(tags={RUN_DATE_TAG: RUN_DATE}, source_path=path)
    assert result.success
    cleaned = query(pg, "select sale_id, product, region, amount::text from sales.cleaned_sales order by 1")
    assert cleaned == [(1, "Gizmo", "Kazan", "7.00"), (2, "Gizmo", "Kazan", "3.50"), (3, "Widget", "Omsk", "9.99")]
    rejected = query(pg, "select sale_id, reason from sales.rejected_sales order by 1")
    assert rejected == [("3", "non_positive_quantity"), ("4", "future_date")]
    aggregates = query(
        pg,
        "select orders, sales, units, revenue::text, avg_check::text from sales.sales_aggregates "
        "where grain = 'region' and region = 'Kazan'",
    )
    assert aggregates == [(1, 2, 3, "10.50", "10.50")]
