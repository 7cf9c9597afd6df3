"""The run's Spark session, always over Spark Connect: to the endpoint `SALES_SPARK_REMOTE` names,
or to the embedded server under `SALES_DATA_DIR` (started on first use, kept running)."""

import logging
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

from dagster import InitResourceContext
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr
from pyspark.sql import SparkSession
from pyspark.sql.connect.client.retries import DefaultPolicy

from sales_assets.embedded import jvm_archive
from sales_assets.embedded.spark_connect import EmbeddedSparkConnect, ServerState

# A cold server is CPU-bound on 2 cores, much of it in the JIT compiler. Kept after alternating
# whole-job runs (figures in docs/performance.md): the parallel collector instead of G1
# (whose concurrent threads compete with the two task threads); smaller inlining limits (less C2
# work, the tasks no slower); a metaspace threshold above what a run loads (no full collections).
DRIVER_JAVA_OPTIONS = "-XX:+UseParallelGC -XX:FreqInlineSize=100 -XX:InlineSmallCode=1000 -XX:MetaspaceSize=512m"
DEFAULT_CONNECT_PORT = 15002


class SparkConnectUnavailable(RuntimeError):
    pass


def spark_config(master: str, **overrides: Any) -> dict[str, Any]:
    """Every Spark setting of a run. `spark.sql.*` settings are the run's own (set on its session);
    the others are static and go to the embedded server when it starts."""
    config = {
        "spark.master": master,
        "spark.app.name": "sales_assets",
        # a few partitions per core: the data is ~100 MB, not worth 200 shuffle tasks
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Spark 4 sizes every Arrow batch sent to Python row by row (ArrowWriter.sizeInBytes per row,
        # which walks every child vector of a struct): a large share of the JVM's CPU in our loads. At
        # Int.MaxValue the check is skipped and batches are bounded by maxRecordsPerBatch (10,000
        # rows, ~1 MB here) alone.
        "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1),
        # what is cached is small or short-lived (the aggregates; the bench's load frame): not
        # worth compressing (docs/performance.md)
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        "spark.ui.showConsoleProgress": "false",
        # the server starts once, so its web UI costs nothing per run (its URL is in the run's logs)
        "spark.ui.enabled": "true",
        "spark.driver.memory": "2g",
    }
    # the GC and JIT settings above, then the class archive (a faster JVM start)
    config["spark.driver.extraJavaOptions"] = f"{DRIVER_JAVA_OPTIONS} {jvm_archive.java_options()}".strip()
    if cores := _local_cores(master):
        config["spark.default.parallelism"] = str(cores)  # what runs read: no job to find it out
    config.update(overrides)
    return config


def _local_cores(master: str) -> int | None:
    """The task slots of a `local[N]` / `local[*]` master; None for a cluster's."""
    if master == "local":
        return 1
    if not master.startswith("local["):
        return None
    inside = master[len("local[") :].split(",")[0].rstrip("]")
    return (os.cpu_count() or 1) if inside == "*" else int(inside)


def session_settings(config: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in config.items() if key.startswith("spark.sql.")}


def server_settings(config: dict[str, Any]) -> dict[str, str]:
    return {key: str(value) for key, value in config.items() if not key.startswith("spark.sql.")}


def endpoint(url: str) -> tuple[str, int]:
    """host and port of an `sc://` URL (its token and other parameters are never shown)."""
    parts = urlsplit(url)
    if parts.scheme != "sc" or not parts.hostname:
        raise ValueError("SALES_SPARK_REMOTE must look like sc://host:port (with ;token=... if the server wants one)")
    return parts.hostname, parts.port or DEFAULT_CONNECT_PORT


class SparkResource(LazyPySparkResource):
    """Every run gets its own Spark Connect session, released when the run ends (pass or fail):
    its temp views and settings go with it. `remote` (`sc://host:port`) names an endpoint; unset,
    the embedded server under `embedded_dir` is used, started with `spark_config`'s static
    settings."""

    remote: Optional[str] = None
    embedded_dir: str = ".data/spark-connect"
    connect_timeout_s: int = 20  # a run that cannot reach Spark fails within this

    _server: Optional[ServerState] = PrivateAttr(default=None)

    @property
    def embedded(self) -> EmbeddedSparkConnect:
        return EmbeddedSparkConnect(Path(self.embedded_dir), server_settings(self.spark_config))

    @property
    def location(self) -> str:
        """host:port of the endpoint, for logs and errors (never the token)."""
        if self.remote:
            host, port = endpoint(self.remote)
            return f"{host}:{port}"
        return self._server.location if self._server else f"embedded server in {self.embedded_dir}"

    @property
    def ui_url(self) -> Optional[str]:
        """The embedded server's web UI (a remote endpoint's is its operators' business)."""
        return self._server.ui_url if self._server else None

    def answers(self) -> bool:
        """Whether the endpoint still accepts connections (after a failure: was it the server?)."""
        if self.remote:
            host, port = endpoint(self.remote)
        elif self._server:
            host, port = "127.0.0.1", self._server.port
        else:
            return False
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError:
            return False
        return True

    def setup_for_execution(self, context: InitResourceContext) -> None:
        # Connect at run start: an endpoint that does not answer fails the run before any step.
        session = self.spark_session
        ui = f"; Spark web UI {self.ui_url}" if self.ui_url else ""
        context.log.info(f"Spark Connect session {session.session_id} at {self.location} (Spark {session.version}){ui}")

    def _init_session(self) -> None:
        if self._spark_session is not None:  # `spark_session` calls this on every access
            return
        if self.remote:
            url = self.remote
        else:
            url = self.embedded.url()
            self._server = self.embedded.running()
        host, port = endpoint(url)
        try:
            socket.create_connection((host, port), timeout=min(10, self.connect_timeout_s)).close()
        except OSError as exc:
            raise SparkConnectUnavailable(f"cannot reach Spark Connect at {self.location}: {exc}") from None
        self._spark_session = self._connect(url)

    def _connect(self, url: str) -> SparkSession:
        started = time.monotonic()
        session = SparkSession.builder.remote(url).create()
        if not self.remote:
            # the embedded server is on this machine: if it dies mid-run, say so within seconds
            # instead of retrying for the ten minutes a remote cluster is granted
            session.client.set_retry_policies([DefaultPolicy(max_retries=4, max_backoff=2000)])

        def handshake() -> None:
            for key, value in session_settings(self.spark_config).items():
                session.conf.set(key, value)

        pool = ThreadPoolExecutor(1)
        try:
            pool.submit(handshake).result(timeout=max(1.0, self.connect_timeout_s - (time.monotonic() - started)))
        except FutureTimeout:
            session.client.close()  # ends the client's retries
            raise SparkConnectUnavailable(
                f"Spark Connect at {self.location} accepted a connection but did not answer within "
                f"{self.connect_timeout_s} s"
            ) from None
        finally:
            pool.shutdown(wait=False)
        return session

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        session = self._spark_session
        if session is None:
            return
        if not self.remote:
            # Cached frames live in the server's shared cache, not in the session: a run's assets
            # unpersist what they cache, and this catches what a failure left behind. Only on the
            # embedded server, which serves this project's runs alone (one at a time).
            try:
                session.catalog.clearCache()
            except Exception as exc:  # noqa: BLE001 - a dead server has nothing cached
                context.log.warning(f"could not clear the Spark cache at {self.location}: {exc}")
        self._release(session)

    def _release(self, session: SparkSession) -> None:
        # pyspark releases finished results in the background; the ones still queued when the
        # session closes fail with SESSION_CLOSED and log a harmless warning: not for the user
        logging.getLogger("pyspark.sql.connect.logging").setLevel(logging.ERROR)
        session.stop()  # releases the server-side session: its temp views and settings
        self._spark_session = None
