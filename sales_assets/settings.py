"""Runtime configuration from the environment (the table in the README's Configuration section), read in one place."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path


def _int_env(env, name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw.replace("_", ""))
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _seconds_env(env, name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not seconds >= 0:
        raise ValueError(f"{name} must be 0 or more seconds, got {raw!r}")
    return seconds


def _spark_conf_env(env) -> dict[str, str]:
    """`SALES_SPARK_CONF='spark.ui.enabled=true spark.executor.memory=4g'`: Spark settings over
    the defaults, shell-quoted where a value has spaces."""
    conf = {}
    for item in shlex.split(env.get("SALES_SPARK_CONF", "")):
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("spark."):
            raise ValueError(f"SALES_SPARK_CONF takes spark.key=value items, got {item!r}")
        conf[key] = value
    return conf


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    parquet_uri: str  # a local directory or any URI Spark writes (hdfs://, s3a://): the Parquet assets
    pg_url: str | None
    ch_url: str | None
    spark_remote: str | None
    spark_master: str
    rows: int
    seed: int
    source_path: str | None
    schedule_cron: str
    timezone: str
    freshness_grace_minutes: int = 120  # after a schedule tick, how long until its load counts as missing
    max_runtime_s: int = 3600  # a run still going after this is failed (run monitoring), freeing the run lock
    retry_delay_s: float = 2.0  # a step failed by a transient fault tries again after this, then 3x it
    # Slack-compatible incoming webhook for failed runs (a secret: kept out of repr); unset: logged
    alert_webhook: str | None = field(default=None, repr=False)
    ui_url: str = "http://localhost:3000"  # the Dagster UI, for links in alerts
    spark_conf: dict[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def from_env(cls, env=None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("SALES_DATA_DIR") or "./.data").expanduser().absolute()
        return cls(
            data_dir=data_dir,
            # apart from SALES_DATA_DIR: on a multi-host cluster the Parquet must be shared storage,
            # while the embedded databases and Dagster's state stay on the driver's disk
            parquet_uri=env.get("SALES_PARQUET_URI") or str(data_dir / "parquet"),
            pg_url=env.get("SALES_PG_URL") or None,
            ch_url=env.get("SALES_CH_URL") or None,
            spark_remote=env.get("SALES_SPARK_REMOTE") or None,
            spark_master=env.get("SALES_SPARK_MASTER") or "local[*]",
            rows=_int_env(env, "SALES_ROWS", 1_000_000),
            seed=_int_env(env, "SALES_SEED", 42),
            source_path=env.get("SALES_SOURCE_PATH") or None,
            schedule_cron=env.get("SALES_SCHEDULE_CRON") or "0 2 * * *",
            timezone=env.get("SALES_TIMEZONE") or "UTC",
            freshness_grace_minutes=_int_env(env, "SALES_FRESHNESS_GRACE_MINUTES", 120),
            max_runtime_s=_int_env(env, "SALES_MAX_RUNTIME_SECONDS", 3600),
            retry_delay_s=_seconds_env(env, "SALES_RETRY_DELAY_SECONDS", 2.0),
            alert_webhook=env.get("SALES_ALERT_WEBHOOK") or None,
            ui_url=(env.get("SALES_UI_URL") or "http://localhost:3000").rstrip("/"),
            spark_conf=_spark_conf_env(env),
        )

    @property
    def embedded_pg_dir(self) -> Path:
        return self.data_dir / "postgres"

    @property
    def embedded_ch_path(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def embedded_spark_dir(self) -> Path:
        return self.data_dir / "spark-connect"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"
