"""PostgreSQL: a server named by `SALES_PG_URL`, or the embedded one under `SALES_DATA_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import psycopg
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from sales_assets.embedded.postgres import EmbeddedPostgres
from sales_assets.urls import check_url, location, redact


class PostgresConnectionError(RuntimeError):
    pass


class PostgresResource(ConfigurableResource):
    """`url` (postgresql://user:pass@host:port/db) or, when unset, the embedded server kept in
    `embedded_dir`, started on demand."""

    url: Optional[str] = None
    embedded_dir: str = ".data/postgres"
    connect_timeout_s: int = 10

    _embedded_url: Optional[str] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Fail at run start, before any asset writes anything, if the server is unreachable.
        self.start()
        with self.connect() as conn:
            conn.execute("select 1")

    def start(self) -> str:
        """The URL to use; starts the embedded server when no URL is configured (a run does this
        when it sets up its resources)."""
        if not self.url:
            self._embedded_url = EmbeddedPostgres(Path(self.embedded_dir)).url()
        return self.dsn

    @property
    def dsn(self) -> str:
        """The configured URL, or the embedded server's once `start()` started it."""
        if self.url:
            check_url(self.url, ("postgresql", "postgres"), "SALES_PG_URL")
            return self.url
        if self._embedded_url is None:
            raise RuntimeError("the embedded PostgreSQL is not started: a run starts it; outside a run, call start()")
        return self._embedded_url

    @property
    def location(self) -> str:
        return location(self.dsn)

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, connect_timeout=self.connect_timeout_s)
        except psycopg.OperationalError as exc:
            # psycopg's message can quote the conninfo; keep only what names the server
            detail = str(exc).replace(self.dsn, redact(self.dsn)).splitlines()[-1].strip()
            raise PostgresConnectionError(f"cannot connect to PostgreSQL at {self.location}: {detail}") from None
