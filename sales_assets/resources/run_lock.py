"""One materialization of the sales graph at a time, across processes and machines.

Two runs at once would overwrite each other's Parquet, load cleaned_sales from one run and
rejected_sales from the other, and fight over the embedded ClickHouse engine (one process per
data path). So a run takes a PostgreSQL session advisory lock when its resources start and keeps
it until it ends; a second run waits for it (queues) and fails with a clear message after
`wait_timeout_s`. The lock lives in the database connection: if the process dies, PostgreSQL
releases it, so a crash never leaves a stale lock behind.

Who requires it, only so that it is set up (none calls it): the I/O managers, the ClickHouse
resource and `clean_sales` (which writes its two tables itself). The definitions build
it with `configure_at_launch()`, so that all of them share the one top-level lock: Dagster sets up a
fully configured resource nested in another anew, inside it, and a second lock would wait forever
for the first.
"""

import time
from typing import Optional

import psycopg
from dagster import ConfigurableResource, Failure, InitResourceContext, ResourceDependency
from pydantic import PrivateAttr

from sales_assets.resources.postgres import PostgresResource

LOCK_NAME = "sales_assets.materialization"  # two-key lock: never collides with the per-table loads' locks
APPLICATION_NAME = "sales_assets run lock"


class RunLockResource(ConfigurableResource):
    """Held from the start to the end of a run that writes anything: whatever writes requires it
    (the I/O managers, `clean_sales`), and a run (in-process executor) initializes its
    resources once, before its first step, and tears them down after its last."""

    postgres: ResourceDependency[PostgresResource]
    wait_timeout_s: float = 1800
    poll_s: float = 1.0

    _conn: Optional[psycopg.Connection] = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run_id = context.run_id or "outside a run"
        conn = self.postgres.connect()
        conn.execute("select set_config('application_name', %s, false)", (f"{APPLICATION_NAME} {run_id}",))
        started, logged = time.monotonic(), False
        while not conn.execute("select pg_try_advisory_lock(hashtext(%s), 0)", (LOCK_NAME,)).fetchone()[0]:
            holder = self._holder(conn)
            waited = time.monotonic() - started
            if waited >= self.wait_timeout_s:
                conn.close()
                raise Failure(
                    f"another materialization ({holder}) has held the sales_assets run lock for "
                    f"over {self.wait_timeout_s:g} s; not starting. Retry when it has finished.",
                    allow_retries=False,
                )
            if not logged and context.log:
                context.log.warning(f"waiting for another materialization to finish ({holder})")
                logged = True
            time.sleep(self.poll_s)
        self._conn = conn

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._conn is not None:
            self._conn.close()  # ends the session, which releases the lock
            self._conn = None

    @staticmethod
    def _holder(conn: psycopg.Connection) -> str:
        row = conn.execute(
            "select a.application_name, a.client_addr::text, a.pid from pg_locks l "
            "join pg_stat_activity a on a.pid = l.pid "
            "where l.locktype = 'advisory' and l.granted and l.classid = hashtext(%s)::oid "
            "and l.objid = 0 and l.objsubid = 2",
            (LOCK_NAME,),
        ).fetchone()
        if row is None:
            return "holder unknown"
        name, addr, pid = row
        return f"{name or 'unnamed session'}, PostgreSQL backend {pid}" + (f" from {addr}" if addr else "")
