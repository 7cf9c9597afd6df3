"""PostgreSQL: a server named by `SALES_PG_URL`, or the embedded one under `SALES_DATA_DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import psycopg
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from sales_assets.resources.embedded import EmbeddedPostgres
from sales_assets.resources.urls import check_url, location, redact


class PostgresConnectionError(RuntimeError):
    pass


class PostgresResource(ConfigurableResource):
    """`url` (postgresql://user:pass@host:port/db) or, when unset, the embedded server kept in
    `embedded_dir`, started on demand."""

    url: Optional[str] = None
    embedded_dir: str = ".data/postgres"
    connect_timeout_s: int = 10

    _resolved: Optional[str] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Fail at run start, before any asset writes anything, if the server is unreachable.
        self._resolved = None
        with self.connect() as conn:
            conn.execute("select 1")

    @property
    def dsn(self) -> str:
        """The effective URL (starts the embedded server if that is what we use)."""
        if self._resolved is None:
            if self.url:
                check_url(self.url, ("postgresql", "postgres"), "SALES_PG_URL")
                self._resolved = self.url
            else:
                self._resolved = EmbeddedPostgres(Path(self.embedded_dir)).url()
        return self._resolved

    @property
    def location(self) -> str:
        return location(self.dsn)

    def connect(self, autocommit: bool = True) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn, autocommit=autocommit, connect_timeout=self.connect_timeout_s)
        except psycopg.OperationalError as exc:
            # psycopg's message can quote the conninfo; keep only what names the server
            detail = str(exc).replace(self.dsn, redact(self.dsn)).splitlines()[-1].strip()
            raise PostgresConnectionError(
                f"cannot connect to PostgreSQL at {self.location}: {detail}"
            ) from None
