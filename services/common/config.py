"""Configuration from the environment, with defaults that run on one machine.

Variables (all optional):
  IOTB_STORE        sqlite (default) or postgres
  IOTB_DATA_DIR     where SQLite files, mails and the demo clock live (default ./var)
  IOTB_PG_DSN       base PostgreSQL URL (default postgresql://postgres@127.0.0.1:5432)
  IOTB_DB_PREFIX    database name prefix, one database per service (default iotb_)
  AMQP_URI          RabbitMQ (default amqp://guest:guest@127.0.0.1:5672//)
  IOTB_CLOCK_FILE   JSON file that shifts the service clock (demo and tests only)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

SERVICES = ("catalog", "devices", "billing", "payments", "notifications")


def env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def data_dir() -> Path:
    path = Path(env("IOTB_DATA_DIR", str(Path.cwd() / "var")))
    path.mkdir(parents=True, exist_ok=True)
    return path


def amqp_uri() -> str:
    return env("AMQP_URI", "amqp://guest:guest@127.0.0.1:5672//")


@dataclass(frozen=True)
class StoreConfig:
    """Where one service keeps its event store and its read views (the same database)."""

    service: str
    kind: str  # "sqlite" or "postgres"
    sqlite_path: Path | None = None
    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    pg_password: str = ""
    pg_dbname: str = ""

    @property
    def sqlalchemy_url(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:///{self.sqlite_path}"
        auth = self.pg_user + (f":{self.pg_password}" if self.pg_password else "")
        return f"postgresql+psycopg://{auth}@{self.pg_host}:{self.pg_port}/{self.pg_dbname}"

    def eventsourcing_env(self) -> dict[str, str]:
        if self.kind == "sqlite":
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.pg_dbname,
            "POSTGRES_HOST": self.pg_host,
            "POSTGRES_PORT": str(self.pg_port),
            "POSTGRES_USER": self.pg_user,
            "POSTGRES_PASSWORD": self.pg_password,
            "POSTGRES_POOL_SIZE": env("IOTB_PG_POOL_SIZE", "5"),
            "POSTGRES_MAX_OVERFLOW": "10",
            "POSTGRES_CONN_MAX_AGE": "",
            "POSTGRES_LOCK_TIMEOUT": "5",
            # large atomic saves hang in psycopg's pipeline mode: see services/common/recorder.py
            "APPLICATION_RECORDER_TOPIC": "services.common.recorder:UnpipelinedRecorder",
        }


def store_config(service: str) -> StoreConfig:
    kind = env("IOTB_STORE", "sqlite")
    if kind not in ("sqlite", "postgres"):
        raise ValueError(f"IOTB_STORE must be sqlite or postgres, not {kind!r}")
    if kind == "sqlite":
        folder = data_dir() / "stores"
        folder.mkdir(parents=True, exist_ok=True)
        return StoreConfig(service=service, kind="sqlite", sqlite_path=folder / f"{service}.db")
    url = urlparse(env("IOTB_PG_DSN", "postgresql://postgres@127.0.0.1:5432"))
    return StoreConfig(
        service=service,
        kind="postgres",
        pg_host=url.hostname or "127.0.0.1",
        pg_port=url.port or 5432,
        pg_user=url.username or "postgres",
        pg_password=url.password or "",
        pg_dbname=env("IOTB_DB_PREFIX", "iotb_") + service,
    )
