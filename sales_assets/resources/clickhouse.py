"""ClickHouse through clickhouse-connect: a server over HTTP(S), or the in-process engine (chdb)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Optional
from urllib.parse import parse_qsl, unquote, urlsplit

import clickhouse_connect
import pyarrow as pa
from dagster import ConfigurableResource, InitResourceContext

from sales_assets.resources.urls import check_url, location, redact
from sales_assets.tables import checked_identifier

DATABASE = "sales"
AGGREGATES_TABLE = "sales_aggregates"

# The ClickHouse table, defined once: the DDL below and the column schema the UI shows.
AGGREGATES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("grain", "String"), ("region", "Nullable(String)"), ("product", "Nullable(String)"),
    ("orders", "UInt64"), ("sales", "UInt64"), ("units", "UInt64"),
    ("revenue", "Decimal(18, 2)"), ("avg_check", "Decimal(18, 2)"),
    # Date32 (1900-2299): sales dates of real files reach before 1970, where Date starts
    ("first_sale", "Date32"), ("last_sale", "Date32"), ("import_date", "Date"), ("loaded_at", "DateTime"),
)

AGGREGATES_DDL = (
    f"create table if not exists {DATABASE}.{{name}} ("
    + ", ".join(f"{name} {type_}" for name, type_ in AGGREGATES_COLUMNS)
    + ") engine = MergeTree partition by import_date "
    "order by (import_date, grain, ifNull(region, ''), ifNull(product, ''))"
)

# Query parameters of an http(s) URL that configure the client; every other one is a ClickHouse
# setting sent with each query (e.g. ?max_execution_time=60).
CLIENT_PARAMS = {"verify": "bool", "ca_cert": "str", "client_cert": "str", "client_cert_key": "str",
                 "connect_timeout": "int", "send_receive_timeout": "int", "compress": "bool"}


def client_kwargs(url: str) -> dict:
    """clickhouse-connect arguments for an http(s):// URL: TLS from the scheme (https, default port
    8443) and client options and settings from the query string."""
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    kwargs: dict = {
        "host": parts.hostname, "port": parts.port or (8443 if secure else 8123), "secure": secure,
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


# chdb allows one engine per data path per process: share the client within the process.
_clients: dict[str, object] = {}


def close_embedded_engines() -> None:
    """Closes this process's in-process engines, so that another process can open their path."""
    for dsn in [d for d in _clients if d.startswith("chdb:")]:
        _clients.pop(dsn).close()


class ClickHouseConnectionError(RuntimeError):
    pass


class ClickHouseResource(ConfigurableResource):
    """`url` (http(s)://user:pass@host:8123/db or chdb:///path) or, when unset, the in-process
    engine at `embedded_path`."""

    url: Optional[str] = None
    embedded_path: str = ".data/clickhouse"

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

    def get_client(self):
        dsn = self.dsn
        if dsn not in _clients:
            try:
                if dsn.startswith("chdb:"):
                    _clients[dsn] = clickhouse_connect.get_client(dsn=dsn)
                else:
                    _clients[dsn] = clickhouse_connect.get_client(**client_kwargs(dsn))
            except Exception as exc:  # noqa: BLE001 - the driver raises many kinds; all mean "cannot reach"
                message = str(exc).replace(dsn, redact(dsn))
                raise ClickHouseConnectionError(
                    f"cannot connect to ClickHouse at {location(dsn)}: {message}"
                ) from None
        return _clients[dsn]

    def ensure_tables(self) -> None:
        """Creates the table, or brings an existing one to today's column types (a table made
        before the dates became Date32 is altered in place, its snapshots kept)."""
        client = self.get_client()
        client.command(f"create database if not exists {DATABASE}")
        client.command(AGGREGATES_DDL.format(name=AGGREGATES_TABLE))
        existing = dict(client.query(
            "select name, type from system.columns where database = {db:String} and table = {t:String}",
            parameters={"db": DATABASE, "t": AGGREGATES_TABLE}).result_rows)
        for name, type_ in AGGREGATES_COLUMNS:
            if existing.get(name) == "Date" and type_ == "Date32":
                # widening Date to Date32 keeps every value; ClickHouse rewrites the column's parts
                client.command(f"alter table {DATABASE}.{AGGREGATES_TABLE} modify column {name} {type_}",
                               settings={"mutations_sync": 1})

    def replace_snapshot(self, snapshot: pa.Table, import_date: date, token: str) -> int:
        """Makes `snapshot` the whole content of `import_date`'s partition, atomically: the rows
        go to a staging table first, then one `REPLACE PARTITION` swaps them in, so readers see
        the old snapshot or the new one and a re-run never adds rows twice."""
        client = self.get_client()
        self.ensure_tables()
        stage = checked_identifier(f"_stage_{AGGREGATES_TABLE}_{token}")
        # a killed run's stage outlives it; loads are serialized by the run lock, so any stage
        # here now is a leftover
        for (leftover,) in client.query(
                "select name from system.tables where database = {db:String} and startsWith(name, {prefix:String})",
                parameters={"db": DATABASE, "prefix": f"_stage_{AGGREGATES_TABLE}_"}).result_rows:
            client.command(f"drop table if exists {DATABASE}.{checked_identifier(leftover)}")
        client.command(AGGREGATES_DDL.format(name=stage))
        try:
            if snapshot.num_rows:
                client.insert_arrow(f"{DATABASE}.{stage}", snapshot)
            staged = client.command(f"select count() from {DATABASE}.{stage}")
            if int(staged) != snapshot.num_rows:
                raise RuntimeError(f"staged {staged} rows into ClickHouse, expected {snapshot.num_rows}")
            partition = f"partition id '{import_date:%Y%m%d}'"
            if snapshot.num_rows:
                client.command(f"alter table {DATABASE}.{AGGREGATES_TABLE} replace {partition} from {DATABASE}.{stage}")
            else:  # an all-rejected run: the date's snapshot is empty (REPLACE refuses an empty source)
                client.command(f"alter table {DATABASE}.{AGGREGATES_TABLE} drop {partition}")
        finally:
            client.command(f"drop table if exists {DATABASE}.{stage}")
        return snapshot.num_rows
