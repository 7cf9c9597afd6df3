"""Execution policies shared by the assets and the I/O managers."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, RetryPolicy
from pyspark.errors import PySparkException

from sales_assets.prerequisites import PrerequisiteError
from sales_assets.resources.spark import SparkResource


def transient_retries(delay_s: float) -> RetryPolicy:
    """Transient faults (a dropped connection, a lost executor) get two more tries, after `delay_s`
    and then 3x it (SALES_RETRY_DELAY_SECONDS); errors in the data fail at once
    (`bad_data_fails_at_once`), since trying again cannot fix them."""
    return RetryPolicy(max_retries=2, delay=delay_s, backoff=Backoff.EXPONENTIAL)


@contextmanager
def bad_data_fails_at_once(*errors_in_the_data: type[Exception]) -> Iterator[None]:
    """The given errors (a bad source file, rows PostgreSQL refuses) fail the step without the
    retries transient faults get."""
    try:
        yield
    except errors_in_the_data as bad_data:
        # a missing prerequisite is already a whole sentence; a data error's class name says what kind
        text = str(bad_data) if isinstance(bad_data, PrerequisiteError) else f"{type(bad_data).__name__}: {bad_data}"
        raise Failure(text, allow_retries=False) from None


@contextmanager
def lost_spark_server_fails_at_once(spark: SparkResource) -> Iterator[None]:
    """A Spark Connect server that stops answering mid-step (killed, out of memory) takes the run's
    session with it: trying the step again in this run cannot help, so it fails at once and says
    what happened. Tables stay as they were: every load commits all or nothing."""
    try:
        yield
    except PySparkException as exc:
        if spark.answers():
            raise
        cause = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        after = "the next run starts a new embedded server" if not spark.remote else "check the Spark service"
        raise Failure(
            f"the Spark Connect server at {spark.location} stopped answering during this step ({cause}); "
            f"every table keeps its last complete data; {after}",
            allow_retries=False,
        ) from None
