"""ClickHouse over HTTP(S): URL handling and client settings are unit-tested; a real server is
used when SALES_TEST_CH_HTTP_URL names one (no modern ClickHouse server runs on this machine, and
none is faked)."""

from __future__ import annotations

import os

import pytest

from sales_assets.resources.clickhouse import ClickHouseConnectionError, ClickHouseResource, client_kwargs
from sales_assets.resources.postgres import PostgresResource
from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets.resources.run_lock import RunLockResource
from sales_assets_tests.helpers import run_config


def test_http_url_gives_plain_client_on_8123():
    assert client_kwargs("http://sales:pw@ch.local/sales") == {
        "host": "ch.local",
        "port": 8123,
        "secure": False,
        "username": "sales",
        "password": "pw",
        "database": "sales",
    }


def test_https_url_gives_tls_client_options_and_settings():
    kwargs = client_kwargs(
        "https://u%40corp:p%2Fw@ch.example:9443/analytics?verify=false&ca_cert=/etc/ca.pem"
        "&connect_timeout=7&compress=true&max_execution_time=60&async_insert=1"
    )
    assert kwargs["secure"] is True and kwargs["port"] == 9443
    assert (kwargs["username"], kwargs["password"]) == ("u@corp", "p/w")
    assert kwargs["database"] == "analytics"
    assert kwargs["verify"] is False and kwargs["ca_cert"] == "/etc/ca.pem"
    assert kwargs["connect_timeout"] == 7 and kwargs["compress"] is True
    assert kwargs["settings"] == {"max_execution_time": "60", "async_insert": "1"}


def test_defaults_without_user_or_database():
    kwargs = client_kwargs("https://ch.example")
    assert (kwargs["port"], kwargs["username"], kwargs["password"], kwargs["database"]) == (
        8443,
        "default",
        "",
        "default",
    )


def test_unreachable_http_server_is_one_clear_error_without_password():
    resource = ClickHouseResource(
        url="http://sales:do-not-show@127.0.0.1:1/sales?connect_timeout=2",
        run_lock=RunLockResource(postgres=PostgresResource()),
    )
    with pytest.raises(ClickHouseConnectionError) as err:
        resource.get_client()
    assert "127.0.0.1:1" in str(err.value) and "do-not-show" not in str(err.value)


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("SALES_TEST_CH_HTTP_URL"),
    reason="set SALES_TEST_CH_HTTP_URL=http(s)://user:pass@host:port/db to test a real ClickHouse server",
)
def test_clickhouse_part_of_the_graph_against_a_real_server(settings, spark_resource, instance, monkeypatch):
    from sales_assets.definitions import build_definitions
    from sales_assets.settings import Settings

    url = os.environ["SALES_TEST_CH_HTTP_URL"]
    monkeypatch.setenv("SALES_CH_URL", url)
    on_server = Settings.from_env({"SALES_DATA_DIR": str(settings.data_dir), "SALES_CH_URL": url})
    job = build_definitions(on_server, spark=spark_resource).resolve_job_def("sales_job")
    result = job.execute_in_process(
        instance=instance, run_config=run_config(rows=500, seed=1), tags={RUN_DATE_TAG: "2026-07-07"}
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
