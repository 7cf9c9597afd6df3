"""A machine without what the project needs gets one clear line from a real run, not a traceback:
no Java, an old Java, a data directory that cannot be created or entered, too little disk, and
(the Makefile) an old Python, each before anything is written and never retried."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from sales_assets.contract import PG_TABLES
from sales_assets.prerequisites import MIN_JAVA, java_version, require_java
from sales_assets_tests.helpers import TEST_ENV, table_digest

PROJECT = Path(__file__).resolve().parent.parent
OLD_PYTHON = Path("/root/.pyenv/versions/3.10.13/bin/python3")  # this machine class has one


def _fake_java(root: Path, version: str) -> Path:
    """A JAVA_HOME whose `java -version` reports `version`, as an old JDK does (on stderr)."""
    (root / "bin").mkdir(parents=True)
    java = root / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2019-07-16' >&2\n")
    java.chmod(0o755)
    return root


def test_the_java_version_is_read_as_java_reports_it(tmp_path):
    assert java_version(require_java()) >= MIN_JAVA  # this machine's own Java
    assert java_version(str(_fake_java(tmp_path / "j11", "11.0.4") / "bin" / "java")) == 11
    assert java_version(str(_fake_java(tmp_path / "j8", "1.8.0_392") / "bin" / "java")) == 8


@pytest.fixture
def fresh_dir():
    """A data directory of its own (no Spark server of its own yet), traversable by other users."""
    root = Path(tempfile.mkdtemp(prefix="sales_prereq_test_"))
    root.chmod(0o755)
    yield root
    subprocess.run([sys.executable, "-m", "sales_assets", "stop"], env={**os.environ, "SALES_DATA_DIR": str(root)})
    shutil.rmtree(root, ignore_errors=True)


def _run(env: dict, *extra_env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sales_assets", "run"],
        env={**env, **{k: v for e in extra_env for k, v in e.items()}},
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def suite_tables(pg, golden_state):
    """The suite's tables (the golden state): a run that stops at a prerequisite must leave them as
    they were."""
    return lambda: {t: table_digest(pg, f"sales.{t}") for t in PG_TABLES}


@pytest.fixture
def run_env(pg, fresh_dir):
    """A run on a fresh data directory (so the Spark server must be started) against the suite's
    PostgreSQL (so a table changed by mistake would show)."""
    return {**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(fresh_dir), "SALES_PG_URL": pg.start(), "SALES_ROWS": "500"}


def _one_clear_line(done: subprocess.CompletedProcess, line: str) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output and "Stack Trace" not in output, output[-3000:]
    assert "↻" not in output, "a missing prerequisite was retried"
    assert line in done.stdout, output[-3000:]


@pytest.mark.system
@pytest.mark.parametrize("java", ["missing", "too old"])
def test_no_usable_java_fails_before_any_step_with_one_line(run_env, suite_tables, tmp_path, java):
    before = suite_tables()
    if java == "missing":
        done = _run(run_env, {"JAVA_HOME": "/nonexistent"})
        problem = "JAVA_HOME=/nonexistent has no bin/java; Spark needs Java 17+:"
    else:
        done = _run(run_env, {"JAVA_HOME": str(_fake_java(tmp_path / "jdk11", "11.0.4"))})
        problem = f"{tmp_path}/jdk11/bin/java (from JAVA_HOME={tmp_path}/jdk11) is Java 11; Spark needs Java 17+:"
    assert done.returncode == 1
    _one_clear_line(done, f"failed resource initialisation: {problem}")
    assert "✗ resources" in done.stdout and "✓" not in done.stdout  # no step ran
    assert suite_tables() == before


@pytest.mark.system
@pytest.mark.parametrize("data_dir", ["/proc/salesdata", "/etc/hostname/salesdata"])
def test_a_data_dir_that_cannot_be_created_is_one_line(data_dir):
    done = subprocess.run(
        [sys.executable, "-m", "sales_assets", "run"],
        env={**os.environ, **TEST_ENV, "SALES_DATA_DIR": data_dir},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"sales_assets: SALES_DATA_DIR {data_dir} cannot be created (")
    assert line.endswith("point SALES_DATA_DIR at a directory you can write")


@pytest.mark.system
@pytest.mark.skipif(os.geteuid() != 0, reason="the embedded PostgreSQL runs as its own user only when run as root")
def test_as_root_a_parent_the_postgres_user_cannot_enter_is_one_line():
    private = Path(tempfile.mkdtemp(prefix="sales_private_"))  # mode 0700, as mkdtemp makes it
    try:
        done = subprocess.run(
            [sys.executable, "-m", "sales_assets", "run"],
            env={**os.environ, **TEST_ENV, "SALES_DATA_DIR": str(private / "data"), "SALES_ROWS": "500"},
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 1
        _one_clear_line(
            done,
            f"failed resource initialisation: the embedded PostgreSQL runs as user 'sales_pg', which cannot enter "
            f"{private} (mode 0o700); set SALES_DATA_DIR to a directory other users can traverse",
        )
        assert not (private / "data" / "postgres" / "pgdata").exists()
    finally:
        subprocess.run(
            [sys.executable, "-m", "sales_assets", "stop"], env={**os.environ, "SALES_DATA_DIR": str(private / "data")}
        )
        shutil.rmtree(private, ignore_errors=True)


@pytest.mark.system
def test_too_little_disk_for_the_rows_fails_before_writing_never_retried(run_env, suite_tables, spark_resource):
    before = suite_tables()
    done = _run(run_env, {"SALES_ROWS": str(10**13)})  # about 8,000 TiB: no disk here has that
    assert done.returncode == 1
    _one_clear_line(done, "failed step raw_sales: SALES_DATA_DIR ")
    line = next(x for x in done.stdout.splitlines() if x.startswith("  failed step raw_sales: "))
    assert "GiB free; a run of 10,000,000,000,000 rows needs about " in line and line.endswith("or lower SALES_ROWS")
    assert suite_tables() == before
    assert not (Path(run_env["SALES_DATA_DIR"]) / "parquet" / "raw_sales").exists()


# --- the Makefile, before the venv exists ----------------------------------------------------


@pytest.fixture
def checkout(tmp_path):
    """The project's files as a fresh clone has them: no venv."""
    files = subprocess.run(["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (PROJECT / name).is_file():
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(PROJECT / name, tmp_path / name)
    return tmp_path


def _make(checkout: Path, target: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["make", "-s", "--no-print-directory", target, *[f"{k}={v}" for k, v in env.items() if k == "PYTHON"]],
        cwd=checkout,
        # a make of its own: not a sub-make of the `make test` that may be running this test
        env={
            **{k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")},
            **{k: v for k, v in env.items() if k != "PYTHON"},
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.system
@pytest.mark.parametrize("target", ["run", "test"])
def test_make_without_java_stops_before_the_venv_with_one_line(checkout, target):
    done = _make(checkout, target, JAVA_HOME="/nonexistent")
    assert done.returncode != 0
    (line, *make_says) = done.stderr.splitlines()
    assert line.startswith("JAVA_HOME=/nonexistent has no bin/java; Spark needs Java 17+")
    assert all(m.startswith("make: ***") for m in make_says), make_says
    assert not (checkout / ".venv").exists()


@pytest.mark.system
@pytest.mark.parametrize("target", ["run", "test"])
def test_make_without_python_311_stops_before_the_venv_with_one_line(checkout, target):
    done = _make(checkout, target, PYTHON="/nonexistent/python3")
    assert done.stderr.splitlines()[0].startswith("no /nonexistent/python3 on PATH; sales_assets needs Python 3.11+")
    if not OLD_PYTHON.exists():
        pytest.skip(f"no older Python at {OLD_PYTHON} on this machine")
    done = _make(checkout, target, PYTHON=str(OLD_PYTHON))
    assert done.returncode != 0
    assert done.stderr.splitlines()[0].startswith(f"{OLD_PYTHON} is Python 3.10.13; sales_assets needs Python 3.11+")
    assert not (checkout / ".venv").exists()
