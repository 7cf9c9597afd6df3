"""What a run needs from the machine, checked before anything starts, in one place: a Java that
Spark can use, a data directory that can be created, written and (for the embedded PostgreSQL's
own user) entered, and the free disk a run of `rows` lines needs. Each problem is one sentence:
what was found, what is needed, how to fix it. Standard library only: the Makefile runs this
module with the system Python before there is a venv (`python3 -m sales_assets.prerequisites`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

MIN_PYTHON = (3, 11)
MIN_JAVA = 17  # Spark 4
# measured at 1M rows: Parquet 27 MB, PostgreSQL 424 MB (both tables, keys, WAL); a load writes the
# new tables beside the old ones before the swap, so twice the tables, plus a margin
BYTES_PER_ROW_POSTGRES = 900
BYTES_PER_ROW_PARQUET = 60
MARGIN_BYTES = 200 * 2**20


class PrerequisiteError(Exception):
    """A machine or configuration problem: retrying cannot fix it, so it is never retried."""


def java_version(java: str) -> int | None:
    """The major version `java -version` reports (1.8 -> 8), None if it does not run."""
    try:
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if done.returncode != 0 or not found:
        return None
    major, minor = int(found.group(1)), int(found.group(2) or 0)
    return minor if major == 1 else major


def require_java(env=None) -> str:
    """The `java` Spark will run (JAVA_HOME's, else PATH's); raises unless it is Java 17+."""
    env = os.environ if env is None else env
    need = f"Spark needs Java {MIN_JAVA}+"
    fix = f"install one (Debian: apt-get install openjdk-{MIN_JAVA}-jre-headless), on PATH or in JAVA_HOME"
    if env.get("JAVA_HOME"):
        java = str(Path(env["JAVA_HOME"]) / "bin" / "java")
        where = f"JAVA_HOME={env['JAVA_HOME']}"
        if not os.access(java, os.X_OK):
            raise PrerequisiteError(
                f"{where} has no bin/java; Spark needs Java {MIN_JAVA}+: fix or unset JAVA_HOME, or {fix}"
            )
    else:
        java = shutil.which("java", path=env.get("PATH"))
        where = "PATH"
        if java is None:
            raise PrerequisiteError(f"no java on PATH and JAVA_HOME is unset; {need}: {fix}")
    version = java_version(java)
    if version is None:
        raise PrerequisiteError(
            f"{java} (from {where}) does not run or report a version; Spark needs Java {MIN_JAVA}+: {fix}"
        )
    if version < MIN_JAVA:
        raise PrerequisiteError(f"{java} (from {where}) is Java {version}; {need}: {fix}")
    return java


def require_usable_dir(path: Path, what: str = "SALES_DATA_DIR", other_user: str | None = None) -> Path:
    """Creates `path` if needed; raises unless this process can write it and, when a service runs
    as `other_user` (the embedded PostgreSQL, when run as root), that user can enter every parent."""
    path = Path(path).expanduser().absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PrerequisiteError(
            f"{what} {path} cannot be created ({exc.strerror}); point {what} at a directory you can write"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PrerequisiteError(
            f"{what} {path} is not writable by this user; point {what} at a directory you can write"
        )
    if other_user:
        for parent in [path, *path.parents]:
            if not parent.stat().st_mode & 0o001:
                raise PrerequisiteError(
                    f"the embedded PostgreSQL runs as user {other_user!r}, which cannot enter {parent} "
                    f"(mode {oct(parent.stat().st_mode & 0o777)}); set {what} to a directory other users can "
                    f"traverse (e.g. under /var/tmp or /srv), or set SALES_PG_URL to a server"
                )
    return path


def required_disk_bytes(rows: int, embedded_postgres: bool) -> int:
    per_row = BYTES_PER_ROW_PARQUET + (BYTES_PER_ROW_POSTGRES if embedded_postgres else 0)
    return rows * per_row + MARGIN_BYTES


def require_free_disk(path: Path, rows: int, embedded_postgres: bool, what: str = "SALES_DATA_DIR") -> None:
    need = required_disk_bytes(rows, embedded_postgres)
    free = shutil.disk_usage(path).free
    if free < need:
        stored = "Parquet, and the PostgreSQL tables twice while a load swaps them" if embedded_postgres else "Parquet"
        raise PrerequisiteError(
            f"{what} {path} has {free / 2**30:,.1f} GiB free; a run of {rows:,} rows needs about "
            f"{need / 2**30:,.1f} GiB ({stored}): free some space, point {what} at a larger disk, or lower SALES_ROWS"
        )


def main() -> int:
    """For the Makefile, before the venv exists: Python and Java, one line each when missing."""
    if sys.version_info < MIN_PYTHON:
        print(
            f"{sys.executable} is Python {sys.version.split()[0]}; sales_assets needs Python "
            f"{'.'.join(map(str, MIN_PYTHON))}+: install it and run make with PYTHON=/path/to/python3.11",
            file=sys.stderr,
        )
        return 1
    try:
        if not os.environ.get("SALES_SPARK_REMOTE"):  # a remote Spark Connect endpoint needs no local Java
            require_java()
    except PrerequisiteError as problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
