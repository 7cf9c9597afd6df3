"""PostgreSQL refusing the data (no retry can fix it) told apart from every other fault."""

from __future__ import annotations

import re

# SQLSTATE classes in which PostgreSQL refuses the data itself (22 data exception, 23 integrity
# violation): the same rows fail the same way on every try.
_REFUSED_CLASSES = ("22", "23")
# how a task words such an error: Spark hands the driver the worker's traceback as text only
_REFUSED_MARK = "PostgreSQL refused rows of "
_REFUSED = re.compile(re.escape(_REFUSED_MARK) + r"\S+ \(SQLSTATE \w{5}\): [^\n]*")


class RefusedByPostgres(ValueError):
    """PostgreSQL refused rows of a load (a data exception or an integrity violation): an error in
    the data, which no retry can fix. The previous tables stay."""


def refusal(exc: BaseException, table: str) -> str | None:
    """One line naming the table, the SQLSTATE and PostgreSQL's message (with its DETAIL and
    CONTEXT: the column, the COPY line), when `exc` from psycopg or ADBC is PostgreSQL refusing the
    data; None for any other error."""
    state = str(getattr(exc, "sqlstate", None) or "")
    if state[:2] not in _REFUSED_CLASSES:
        return None
    message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return f"{_REFUSED_MARK}{table} (SQLSTATE {state}): {message}"


def refusal_in_task(exc: BaseException) -> RefusedByPostgres | None:
    """The refusal a Spark task reported, found in the error Spark raised on the driver."""
    if found := _REFUSED.search(str(exc)):
        return RefusedByPostgres(found[0])
    return None
