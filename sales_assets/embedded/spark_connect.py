"""Embedded Spark Connect server for a machine without a Spark endpoint.

Started on first use from the installed pyspark distribution (its `SparkConnectServer`, through
`spark-submit`), listening on 127.0.0.1 only, and left running between runs as a dev service like
the embedded PostgreSQL (`make stop` ends both). Runs are thin clients: they pay a connection, not
a JVM start. Everything lives under `root` (`SALES_DATA_DIR/spark-connect`):

- `token`: the secret clients must present (owner-only): Spark Connect runs whatever code a client
  sends, as this user, so loopback alone would let any local user in;
- `server.json`: pid, ports, and what the server was started with;
- `spark-defaults.conf`, `server.log`, and `events.log` (starts, and why a server was restarted).

What it was started with covers the static settings, the Python the workers run and this package's
source:
Python workers outlive a run and keep the modules they imported, so a changed `sales_assets`
restarts the server before the next run uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pyspark

from sales_assets.embedded.service_files import exclusive_lock, read_or_create_secret
from sales_assets.prerequisites import require_java, require_usable_dir

SPARK_HOME = Path(pyspark.__file__).parent
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
HOST = "127.0.0.1"
# pyspark sends a token without TLS only to the host literally named `localhost`
CLIENT_HOST = "localhost"
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the sales_assets the workers import


class EmbeddedSparkError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
        return True


def _listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (Linux /proc/net: state 0A is LISTEN)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def _process_listens(pid: int, port: int) -> bool:
    inodes = _listening_inodes(port)
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def package_fingerprint(package_dir: Path = PACKAGE_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(str(path.relative_to(package_dir)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    ui_port: int
    started_with: dict  # what `EmbeddedSparkConnect.described()` was at its start

    @property
    def ui_url(self) -> str:
        return f"http://{HOST}:{self.ui_port}"

    @property
    def location(self) -> str:
        """Where the server listens, for messages: never the token."""
        return f"{CLIENT_HOST}:{self.port}"

    def monitoring(self, path: str):
        """The server's monitoring REST API, `/api/v1/applications/<app>/<path>` (storage/rdd,
        executors...): what a client cannot ask over Spark Connect."""
        base = f"{self.ui_url}/api/v1/applications"
        with urllib.request.urlopen(base, timeout=10) as answer:
            app = json.load(answer)[0]["id"]
        with urllib.request.urlopen(f"{base}/{app}/{path}", timeout=10) as answer:
            return json.load(answer)

    def rss_bytes(self) -> int:
        """The server process's resident memory."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


class EmbeddedSparkConnect:
    """One Spark Connect server per `root`. `conf` holds the static settings (master, driver memory,
    JVM options...) it is started with; `python_path` adds directories the workers import from."""

    def __init__(self, root: str | Path, conf: dict[str, str], python_path: tuple[str, ...] = ()):
        self.root = Path(root).expanduser().absolute()
        self.conf = dict(conf)
        self.python_path = tuple(python_path)
        self.state_file = self.root / "server.json"
        self.token_file = self.root / "token"
        self.conf_file = self.root / "spark-defaults.conf"
        self.log_file = self.root / "server.log"

    # -- public API -------------------------------------------------------------------------
    def url(self, start_timeout_s: float = 180) -> str:
        """Starts the server if it is not running (or runs outdated code) and returns its
        `sc://` URL, token included: hand it to a session builder, never to a log."""
        require_usable_dir(self.root.parent)  # a sentence, not an OSError from deep in the lock
        with self._lock():
            state = self.running()
            wanted = self.described()
            if state is not None and state.started_with != wanted:
                changed = sorted(k for k in wanted if state.started_with.get(k) != wanted[k])
                self._note(f"restarting server {state.pid}: changed since its start: {', '.join(changed)}")
            if state is None or state.started_with != wanted:
                port = self._recorded_port()  # kept across restarts: a URL from `make env` stays valid
                self._stop(state)
                state = self._start(start_timeout_s, port)
            token = read_or_create_secret(self.token_file)
        return f"sc://{CLIENT_HOST}:{state.port}/;token={token}"

    def running(self) -> ServerState | None:
        """The recorded server if it is alive and really ours: the recorded pid belongs to this
        user, was started with this root's settings and listens on the recorded port. A server of
        another user or another data directory on that port is never taken for ours."""
        try:
            state = ServerState(**json.loads(self.state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None
        try:
            if os.stat(f"/proc/{state.pid}").st_uid != os.geteuid():
                return None
            cmdline = Path(f"/proc/{state.pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        if str(self.conf_file).encode() not in cmdline or not _process_listens(state.pid, state.port):
            return None
        return state

    def described(self) -> dict:
        """What a running server must have been started with to serve the next run: its static
        settings, the workers' Python and import path, pyspark, and the source they import."""
        return json.loads(
            json.dumps(
                {
                    "conf": self.conf,
                    "python": sys.executable,
                    "python_path": list(self.python_path),
                    "pyspark": pyspark.__version__,
                    "package": package_fingerprint(),
                    "python_path_source": [package_fingerprint(Path(p)) for p in self.python_path],
                },
                sort_keys=True,
            )
        )

    def _note(self, line: str) -> None:
        """Server lifecycle events, kept across restarts (server.log is new with each start)."""
        with open(self.root / "events.log", "a") as out:
            out.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}: {line}\n")

    def stop(self, grace_s: float = 30) -> bool:
        """Stops the server (SIGTERM, then SIGKILL after `grace_s`); returns whether one was running."""
        with self._lock():
            state = self.running()
            self._stop(state, grace_s)
            return state is not None

    # -- internals --------------------------------------------------------------------------
    def _lock(self):
        return exclusive_lock(self.root)

    def _stop(self, state: ServerState | None, grace_s: float = 30) -> None:
        if state is not None:
            try:
                os.killpg(state.pid, signal.SIGTERM)
                deadline = time.monotonic() + grace_s
                while time.monotonic() < deadline and Path(f"/proc/{state.pid}").exists():
                    _reap(state.pid)
                    time.sleep(0.2)
                else:
                    if Path(f"/proc/{state.pid}").exists():
                        os.killpg(state.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.state_file.unlink(missing_ok=True)

    def _start(self, timeout_s: float, port: int | None) -> ServerState:
        require_java()  # spark-submit's own message for a missing or old Java is a stack trace
        token = read_or_create_secret(self.token_file)
        port = port if port and _port_is_free(port) else _free_port()
        ui_port = _free_port()
        conf = {
            **self.conf,
            "spark.connect.grpc.binding.address": HOST,
            "spark.connect.grpc.binding.port": str(port),
            "spark.ui.port": str(ui_port),
            "spark.ui.killEnabled": "false",  # the UI has no login: it may show, never act
        }
        self.conf_file.write_text("".join(f"{key} {value}\n" for key, value in sorted(conf.items())))
        env = server_environment(self.python_path)
        env["SPARK_LOCAL_IP"] = HOST  # the web UI and the block manager bind to loopback too
        # in the environment, not on the command line: /proc/PID/cmdline is world-readable
        env["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = token
        with open(self.log_file, "wb") as log:
            proc = subprocess.Popen(
                server_command(self.conf_file),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives this process, like a service
            )
        state = ServerState(pid=proc.pid, port=port, ui_port=ui_port, started_with=self.described())
        deadline = time.monotonic() + timeout_s
        while not _process_listens(proc.pid, port):
            if proc.poll() is not None:
                raise EmbeddedSparkError(
                    f"the embedded Spark Connect server exited with code {proc.returncode} while starting; "
                    f"the end of {self.log_file}:\n{self._log_tail()}"
                )
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                raise EmbeddedSparkError(
                    f"the embedded Spark Connect server did not listen on {HOST}:{port} within {timeout_s:.0f} s; "
                    f"the end of {self.log_file}:\n{self._log_tail()}"
                )
            time.sleep(0.2)
        self.state_file.write_text(json.dumps(state.__dict__))
        self._note(f"started server {proc.pid} on {HOST}:{port} (master {self.conf.get('spark.master', 'default')})")
        return state

    def _recorded_port(self) -> int | None:
        try:
            return int(json.loads(self.state_file.read_text())["port"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def server_command(properties_file: Path) -> list[str]:
    return [
        str(SPARK_HOME / "bin" / "spark-submit"),
        "--class",
        SERVER_CLASS,
        "--name",
        "sales_assets Spark Connect server",
        "--properties-file",
        str(properties_file),
    ]


def server_environment(python_path: tuple[str, ...] = ()) -> dict[str, str]:
    env = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        # the workers run this interpreter: it has pyarrow, the ADBC driver and this package
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join((*python_path, env.get("PYTHONPATH", ""))).rstrip(os.pathsep)
    return env


def serve_in_foreground(conf: dict[str, str], root: Path, host: str, port: int, ui_port: int = 4040) -> None:
    """Replaces this process with a Spark Connect server on host:port, with the project's static
    settings (a service's entry point: the compose `spark` service). It requires the token in
    `SPARK_CONNECT_AUTHENTICATE_TOKEN` when that is set."""
    root.mkdir(parents=True, exist_ok=True)
    properties = root / "spark-defaults.conf"
    conf = {
        **conf,
        "spark.connect.grpc.binding.address": host,
        "spark.connect.grpc.binding.port": str(port),
        "spark.ui.port": str(ui_port),
        "spark.ui.killEnabled": "false",
    }
    properties.write_text("".join(f"{key} {value}\n" for key, value in sorted(conf.items())))
    command = server_command(properties)
    os.execve(command[0], command, server_environment())


def _reap(pid: int) -> None:
    """Collects the exit status when the server is our own child (else it would linger as a zombie)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
