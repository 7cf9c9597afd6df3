"""A one-worker Spark standalone cluster on 127.0.0.1, from the installed pyspark distribution
(`make spark-cluster` / `make spark-cluster-stop`), for running the graph with
SALES_SPARK_MASTER=spark://127.0.0.1:7077 on executors in a JVM of their own."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).parent
HOST = "127.0.0.1"


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"nothing listens on {HOST}:{port} after {timeout:.0f} s")


class LocalCluster:
    """Master and worker processes, their pids and logs under `root`."""

    def __init__(self, root: str | Path, port: int = 7077, ui_port: int = 8080, cores: int = 2, memory: str = "3g"):
        self.root = Path(root)
        self.port, self.ui_port, self.cores, self.memory = port, ui_port, cores, memory

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def _spawn(self, name: str, args: list[str]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_WORKER_DIR": str(self.root / "work"),
        }
        with open(self.root / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        (self.root / f"{name}.pid").write_text(str(proc.pid))

    def _alive(self, name: str) -> int | None:
        pid_file = self.root / f"{name}.pid"
        if not pid_file.exists():
            return None
        pid = int(pid_file.read_text())
        try:
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def start(self) -> str:
        if not self._alive("master"):
            self._spawn(
                "master",
                [
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                    "--webui-port",
                    str(self.ui_port),
                ],
            )
        _wait_for_port(self.port, 60)
        if not self._alive("worker"):
            self._spawn(
                "worker",
                [
                    "org.apache.spark.deploy.worker.Worker",
                    self.master_url,
                    "--host",
                    HOST,
                    "--cores",
                    str(self.cores),
                    "--memory",
                    self.memory,
                    "--webui-port",
                    "0",
                ],
            )
        self._wait_for_worker(60)
        return self.master_url

    def _wait_for_worker(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        log = self.root / "worker.log"
        while time.monotonic() < deadline:
            if log.exists() and "Successfully registered with master" in log.read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise TimeoutError(f"the Spark worker did not register with {self.master_url}; see {log}")

    def stop(self) -> bool:
        stopped = False
        for name in ("worker", "master"):
            pid = self._alive(name)
            if pid:
                os.killpg(pid, signal.SIGTERM)
                for _ in range(40):
                    if not self._alive(name):
                        break
                    time.sleep(0.25)
                else:
                    os.killpg(pid, signal.SIGKILL)
                stopped = True
            (self.root / f"{name}.pid").unlink(missing_ok=True)
        return stopped
