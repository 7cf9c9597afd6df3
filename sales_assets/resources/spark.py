"""The run's one Spark session: dagster-pyspark's lazy resource, stopped when the run ends."""

from __future__ import annotations

import os
import sys
from typing import Any

from dagster import InitResourceContext
from dagster_pyspark import LazyPySparkResource

from sales_assets.dev import jvm_archive

# A cold run is CPU-bound on 2 cores, and a third of that CPU went to the JIT compiler. Kept after
# alternating whole-job runs (figures in docs/performance.md): the parallel collector instead of G1
# (whose concurrent threads compete with the two task threads); smaller inlining limits (less C2
# work, the tasks no slower); a metaspace threshold above what a run loads (no full collections).
DRIVER_JAVA_OPTIONS = "-XX:+UseParallelGC -XX:FreqInlineSize=100 -XX:InlineSmallCode=1000 -XX:MetaspaceSize=512m"


def spark_config(master: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "spark.master": master,
        "spark.app.name": "sales_assets",
        # a few partitions per core: the data is ~100 MB, not worth 200 shuffle tasks
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Spark 4 sizes every Arrow batch sent to Python row by row (ArrowWriter.sizeInBytes per row,
        # which walks every child vector of a struct): a fifth of the JVM's CPU in our loads. At
        # Int.MaxValue the check is skipped and batches are bounded by maxRecordsPerBatch (10,000
        # rows, ~1 MB here) alone.
        "spark.sql.execution.arrow.maxBytesPerBatch": str(2**31 - 1),
        "spark.ui.showConsoleProgress": "false",
        # the web UI costs about a second of every driver start here;
        # SALES_SPARK_CONF=spark.ui.enabled=true brings it back at http://localhost:4040
        "spark.ui.enabled": "false",
        "spark.driver.memory": "2g",
        # what is cached is small or short-lived (the aggregates; the bench's load frame): an
        # uncompressed cache filled ~40% faster here
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
    }
    # the GC and JIT settings above, then the class archive (~3-5 s off every driver start)
    config["spark.driver.extraJavaOptions"] = f"{DRIVER_JAVA_OPTIONS} {jvm_archive.java_options()}".strip()
    config.update(overrides)
    return config


class SparkResource(LazyPySparkResource):
    """Starts Spark on first use (an asset that needs no Spark pays nothing) and stops it at the
    end of the run, so a run never leaks a JVM. Tests share one session and keep it running."""

    stop_on_teardown: bool = True
    log_level: str = "ERROR"

    def _init_session(self) -> None:
        # Python workers must run this interpreter (it has pyarrow and the ADBC driver); PySpark
        # reads only the environment for it. On a multi-host cluster, set PYSPARK_PYTHON.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        master = str(self.spark_config.get("spark.master", ""))
        if master.startswith("local") or "//127.0.0.1:" in master or "//localhost:" in master:
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # everything is on this machine
        super()._init_session()
        self._spark_session.sparkContext.setLogLevel(self.log_level)

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self.stop_on_teardown and self._spark_session is not None:
            self._spark_session.stop()
            self._spark_session = None
