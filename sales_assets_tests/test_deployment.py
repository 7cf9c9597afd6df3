"""The server deployment: Dagster's own storage on a real PostgreSQL (the compose deployment's
dagster.yaml, verbatim), and static checks of docker-compose.yml and the Dockerfile, since no
Docker engine runs here."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import yaml
from dagster import DagsterInstance

from sales_assets.resources.run_date import RUN_DATE_TAG
from sales_assets_tests.helpers import run_config

PROJECT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())


@pytest.mark.integration
def test_dagster_storage_on_real_postgres(pg, defs, data_dir, monkeypatch):
    url = urlsplit(pg.dsn)
    with pg.connect() as conn:
        if not conn.execute("select 1 from pg_database where datname = 'dagster_storage'").fetchone():
            conn.execute("create database dagster_storage")
    for key, value in {
        "DAGSTER_PG_USER": url.username,
        "DAGSTER_PG_PASSWORD": unquote(url.password),
        "DAGSTER_PG_HOST": url.hostname,
        "DAGSTER_PG_PORT": str(url.port),
        "DAGSTER_PG_DB": "dagster_storage",
    }.items():
        monkeypatch.setenv(key, value)
    home = data_dir / "dagster_pg_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(PROJECT / "docker" / "dagster.yaml", home / "dagster.yaml")
    with DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = defs.resolve_job_def("sales_job").execute_in_process(
            instance=instance, run_config=run_config(rows=400, seed=3), tags={RUN_DATE_TAG: "2026-08-01"}
        )
        assert result.success
    storage_url = url._replace(path="/dagster_storage").geturl()
    import psycopg

    with psycopg.connect(storage_url) as conn:
        assert conn.execute("select status from runs where run_id = %s", (result.run_id,)).fetchone() == ("SUCCESS",)
        keys = {
            r[0]
            for r in conn.execute(
                "select asset_key from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
                (result.run_id,),
            )
        }
    assert {k.strip('[]"') for k in keys} == {
        "raw_sales",
        "cleaned_sales",
        "rejected_sales",
        "sales_aggregates",
        "clickhouse_sales_aggregates",
    }


def test_compose_services_images_and_ports():
    services = COMPOSE["services"]
    assert set(services) == {
        "postgres",
        "clickhouse",
        "spark",
        "dagster-user-code",
        "dagster-webserver",
        "dagster-daemon",
    }
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["clickhouse"]["image"].startswith("clickhouse/clickhouse-server:")
    assert "3000:3000" in services["dagster-webserver"]["ports"]
    assert "8123:8123" in services["clickhouse"]["ports"]
    assert services["dagster-user-code"]["command"][:3] == ["dagster", "api", "grpc"]
    assert "sales_assets.definitions" in services["dagster-user-code"]["command"]


def test_compose_wires_the_project_env_to_the_servers():
    for name in ("dagster-user-code", "dagster-daemon", "dagster-webserver"):
        env = COMPOSE["services"][name]["environment"]
        assert re.fullmatch(
            r"postgresql://\$\{POSTGRES_USER:-sales\}:\$\{POSTGRES_PASSWORD\}@postgres:5432/sales", env["SALES_PG_URL"]
        )
        assert "@clickhouse:8123/sales" in env["SALES_CH_URL"] and env["SALES_CH_URL"].startswith("http://")
        assert env["DAGSTER_PG_HOST"] == "postgres" and env["DAGSTER_HOME"] == "/opt/dagster/home"
        assert env["SALES_SPARK_REMOTE"] == "sc://spark:15002"


def test_compose_runs_spark_connect_as_a_service_and_dagster_without_java():
    services = COMPOSE["services"]
    spark = services["spark"]
    assert spark["build"]["target"] == "spark"
    assert spark["command"][:4] == ["python", "-m", "sales_assets", "spark-connect-server"]
    assert spark["command"][spark["command"].index("--port") + 1] == "15002"
    assert "15002" not in " ".join(spark.get("ports", []))  # the compose network only
    assert "sales-data:/data" in spark["volumes"]  # Parquet is written where the runs read it
    assert services["dagster-user-code"]["depends_on"]["spark"]["condition"] == "service_healthy"
    for name in ("dagster-user-code", "dagster-webserver", "dagster-daemon"):
        assert services[name]["build"]["target"] == "app"


def test_compose_health_checks_dependencies_and_volumes():
    services = COMPOSE["services"]
    for name in ("postgres", "clickhouse"):
        assert services[name]["healthcheck"]["test"]
    for name in ("dagster-user-code", "dagster-daemon", "dagster-webserver"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dagster-user-code"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    declared = set(COMPOSE["volumes"])
    used = {v.split(":")[0] for s in services.values() for v in s.get("volumes", []) if not v.startswith(".")}
    assert used <= declared and {"postgres-data", "clickhouse-data"} <= declared


def test_no_secret_is_committed_in_the_deployment_files():
    text = (PROJECT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "${CLICKHOUSE_PASSWORD:?" in text
    values = re.findall(r"^\s*[A-Z_]*PASSWORD[A-Z_]*:\s*(\S+)", text, re.M)
    assert values and all(v.startswith("${") for v in values), f"a literal password among {values}"
    example = (PROJECT / ".env.example").read_text()
    assert re.search(r"^POSTGRES_PASSWORD=$", example, re.M)
    assert ".env" in (PROJECT / ".gitignore").read_text().split()


def test_dockerfile_builds_an_app_image_and_a_spark_image_with_java_17():
    text = (PROJECT / "Dockerfile").read_text()
    app, spark = text.split("\nFROM app AS spark")
    assert re.search(r"^FROM python:3\.1[1-9][^ ]* AS app$", app, re.M)
    assert "pip install" in app and "COPY sales_assets" in app and "docker/dagster.yaml" in app
    assert "openjdk" not in app  # Dagster's processes need no JVM: Spark is a service
    assert "openjdk-17-jre-headless" in spark


def test_docker_workspace_points_at_the_grpc_server():
    workspace = yaml.safe_load((PROJECT / "docker" / "workspace.yaml").read_text())
    server = workspace["load_from"][0]["grpc_server"]
    assert (server["host"], server["port"]) == ("dagster-user-code", 4000)


def test_docker_compose_config_when_a_docker_client_with_compose_exists(tmp_path):
    docker = shutil.which("docker")
    if not docker or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no Docker client with the compose plugin on this machine")
    env = tmp_path / ".env"
    env.write_text("POSTGRES_PASSWORD=x\nCLICKHOUSE_PASSWORD=y\n")
    done = subprocess.run(
        [docker, "compose", "--env-file", str(env), "-f", str(PROJECT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
