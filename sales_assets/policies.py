"""Execution policies shared by the assets and the I/O managers."""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, RetryPolicy

# Transient faults (a dropped connection, a lost executor) get two more tries with backoff; errors in
# the data fail at once (`bad_data_fails_at_once`), since trying again cannot fix them.
TRANSIENT_RETRIES = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)


@contextmanager
def bad_data_fails_at_once(*errors_in_the_data: type[Exception]) -> Iterator[None]:
    """The given errors (a bad source file, rows PostgreSQL refuses) fail the step without the
    retries transient faults get."""
    try:
        yield
    except errors_in_the_data as bad_data:
        raise Failure(f"{type(bad_data).__name__}: {bad_data}", allow_retries=False) from None
