"""Execution policies shared by the assets."""

from dagster import Backoff, RetryPolicy

# Transient faults (a dropped connection, a lost executor) get two more tries with backoff; errors in
# the input are raised as Failure(allow_retries=False), since trying again cannot fix them.
TRANSIENT_RETRIES = RetryPolicy(max_retries=2, delay=2, backoff=Backoff.EXPONENTIAL)
