"""The executor side of a write: each Spark task streams its rows into one binary COPY per table."""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from sales_assets.pg_transfer.errors import refusal

_ABORT = object()

RESULT_SCHEMA = "kind string, name string, value string, n long"
_RESULT_ARROW = pa.schema([("kind", pa.string()), ("name", pa.string()), ("value", pa.string()), ("n", pa.int64())])


@dataclass(frozen=True)
class CopyTarget:
    """Where the rows of one struct column of the frame go: a staging table of `schema`."""

    column: str  # the struct column, named after its table
    schema: str
    stage: str
    arrow_schema: pa.Schema


class CopyFeed:
    """One table's binary COPY (ADBC `adbc_ingest`) in its own thread, fed batch by batch, so a
    partition streams into several tables at once without buffering any of them. The connection
    opens with the first batch: a table no row of the partition goes to costs nothing."""

    def __init__(self, dsn: str, target: CopyTarget):
        self._dsn, self.target = dsn, target
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.rows = 0

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while (item := self._queue.get()) is not None:
            if item is _ABORT:  # fail the COPY, so its transaction rolls back and the connection closes
                raise RuntimeError("partition failed upstream")
            yield item

    def _copy(self) -> None:
        import adbc_driver_postgresql.dbapi as adbc

        target = self.target
        try:
            reader = pa.RecordBatchReader.from_batches(target.arrow_schema, self._batches())
            with adbc.connect(self._dsn) as conn:
                with conn.cursor() as cur:
                    cur.adbc_ingest(target.stage, reader, mode="append", db_schema_name=target.schema)
                conn.commit()
        except BaseException as exc:  # noqa: BLE001 - handed to the feeding thread, raised at its next put
            self._error = exc
            try:
                if refused := refusal(exc, f"{target.schema}.{target.column}"):
                    self._error = RuntimeError(refused)
                    self._error.__cause__ = exc
            except Exception:  # noqa: BLE001 - wording it must never cost the error itself
                pass

    def _put(self, item) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def put(self, batch: pa.RecordBatch) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._copy, name=f"copy {self.target.stage}", daemon=True)
            self._thread.start()
        self.rows += batch.num_rows
        self._put(batch)

    def close(self) -> None:
        """Ends the COPY and waits for its commit; raises what the COPY raised."""
        if self._thread is None:
            return
        self._put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        if self._thread is None or self._error is not None:
            return
        try:
            self._put(_ABORT)
        except BaseException:  # noqa: BLE001 - the COPY failed on its own meanwhile: nothing to stop
            pass
        self._thread.join()


def copy_partition_fn(dsn: str, targets: list[CopyTarget], tally: tuple[str, ...]):
    """The `mapInArrow` function of a write: each row goes to the tables whose struct column is set
    on it; a task returns its rows per table and the value counts of the `tally` columns."""

    def copy_partition(batches):
        import pyarrow.compute as pc

        feeds = {target.column: CopyFeed(dsn, target) for target in targets}
        counts: collections.Counter = collections.Counter()
        try:
            for batch in batches:
                for column, feed in feeds.items():
                    routed = batch.column(column)
                    if routed.null_count == len(routed):
                        continue
                    if routed.null_count:
                        routed = routed.filter(routed.is_valid())
                    feed.put(pa.RecordBatch.from_struct_array(routed).cast(feed.target.arrow_schema))
                for name in tally:
                    for entry in pc.value_counts(batch.column(name).cast(pa.string())).to_pylist():
                        counts[(name, entry["values"])] += entry["counts"]
            for feed in feeds.values():
                feed.close()
        except BaseException:
            for feed in feeds.values():
                feed.abort()
            raise
        results = [("rows", column, None, feed.rows) for column, feed in feeds.items()]
        results += [("tally", name, value, n) for (name, value), n in counts.items()]
        yield pa.RecordBatch.from_pylist(
            [dict(zip(_RESULT_ARROW.names, r, strict=True)) for r in results], schema=_RESULT_ARROW
        )

    return copy_partition
