"""ClickHouse through clickhouse-connect: a server over HTTP(S), or the in-process engine (chdb)."""

from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl, unquote, urlsplit

import clickhouse_connect
from dagster import ConfigurableResource, InitResourceContext, ResourceDependency
from pydantic import PrivateAttr

from sales_assets.resources.run_lock import RunLockResource
from sales_assets.urls import check_url, location, redact

# Query parameters of an http(s) URL that configure the client; every other one is a ClickHouse
# setting sent with each query (e.g. ?max_execution_time=60).
CLIENT_PARAMS = {
    "verify": "bool",
    "ca_cert": "str",
    "client_cert": "str",
    "client_cert_key": "str",
    "connect_timeout": "int",
    "send_receive_timeout": "int",
    "compress": "bool",
}


def client_kwargs(url: str) -> dict:
    """clickhouse-connect arguments for an http(s):// URL: TLS from the scheme (https, default port
    8443) and client options and settings from the query string."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    kwargs: dict = {
        "host": parts.hostname,
        "port": parts.port or (8443 if secure else 8123),
        "secure": secure,
        "username": unquote(parts.username) if parts.username else "default",
        "password": unquote(parts.password) if parts.password else "",
        "database": parts.path.strip("/") or "default",
    }
    settings = {}
    for key, value in parse_qsl(parts.query):
        kind = CLIENT_PARAMS.get(key)
        if kind == "bool":
            kwargs[key] = value.lower() in ("1", "true", "yes")
        elif kind == "int":
            kwargs[key] = int(value)
        elif kind == "str":
            kwargs[key] = value
        else:
            settings[key] = value
    if settings:
        kwargs["settings"] = settings
    return kwargs


class ClickHouseConnectionError(RuntimeError):
    pass


class ClickHouseResource(ConfigurableResource):
    """`url` (http(s)://user:pass@host:8123/db or chdb:///path) or, when unset, the in-process
    engine at `embedded_path`."""

    url: Optional[str] = None
    embedded_path: str = ".data/clickhouse"
    # The in-process engine allows one process per data path: a run holds the run lock while its
    # client is open (set up after the lock, torn down before it), and a check run alone waits.
    run_lock: ResourceDependency[RunLockResource]

    _client: Optional[object] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        if self.dsn.startswith("chdb:"):
            return  # nothing to reach; the engine opens on first use, under the run lock
        # Fail at run start, before any asset writes anything, if ClickHouse is unreachable.
        client = self.get_client()
        try:
            client.command("select 1")
        except Exception as exc:  # noqa: BLE001
            raise ClickHouseConnectionError(
                f"ClickHouse at {location(self.dsn)} does not answer: {str(exc).replace(self.dsn, redact(self.dsn))}"
            ) from None

    @property
    def dsn(self) -> str:
        if self.url:
            check_url(self.url, ("http", "https", "chdb"), "SALES_CH_URL")
            return self.url
        return f"chdb://{Path(self.embedded_path).expanduser().absolute()}"

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def get_client(self):
        """This resource's client, opened on first use and kept until `close()` (a run's end)."""
        if self._client is None:
            dsn = self.dsn
            try:
                if dsn.startswith("chdb:"):
                    self._client = clickhouse_connect.get_client(dsn=dsn)
                else:
                    self._client = clickhouse_connect.get_client(**client_kwargs(dsn))
            except Exception as exc:  # noqa: BLE001 - the driver raises many kinds; all mean "cannot reach"
                message = str(exc).replace(dsn, redact(dsn))
                raise ClickHouseConnectionError(f"cannot connect to ClickHouse at {location(dsn)}: {message}") from None
        return self._client

    def close(self) -> None:
        """Closes the client; for the in-process engine (chdb), this frees its data path for
        other processes (one process per path)."""
        if self._client is not None:
            self._client.close()
            self._client = None
