"""Shared fixtures. Integration and end-to-end tests talk to the real PostgreSQL and
RabbitMQ on 127.0.0.1; each test run creates its own databases and RabbitMQ vhost (names
carry the process id) and removes them at the end, so the suite can run twice in a row."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from services.common.config import StoreConfig

RUN = f"iotb_t{os.getpid()}"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
_counter = itertools.count(1)


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(dbname="postgres", autocommit=True, **PG)


def _rabbitmqctl(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)


def _drop_databases(prefix: str) -> None:
    with _pg_admin() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
            )
        ]
        for name in names:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


def _dead_run(name: str) -> bool:
    """Names look like iotb_t<pid>_...: true when that test run's process is gone."""
    match = re.match(r"iotb_t(\d+)_", name)
    if not match or int(match.group(1)) == os.getpid():
        return False
    return not Path(f"/proc/{match.group(1)}").exists()


@pytest.fixture(scope="session", autouse=True)
def _clean_up() -> Iterator[None]:
    """Remove what this run creates when it ends, and what killed runs left behind."""
    with _pg_admin() as conn:
        stale = [
            r[0]
            for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'iotb_t%'")
        ]
    for name in filter(_dead_run, stale):
        _drop_databases(name)
    vhosts = _rabbitmqctl("list_vhosts", "--quiet", "--no-table-headers")
    for name in filter(_dead_run, vhosts.stdout.split()):
        _rabbitmqctl("delete_vhost", name)
    yield
    _drop_databases(RUN + "_")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("var")
    os.environ["IOTB_DATA_DIR"] = str(path)
    return path


def new_pg_store(service: str) -> StoreConfig:
    """A fresh, empty PostgreSQL database for one service (dropped at the end of the run)."""
    dbname = f"{RUN}_{next(_counter)}_{service}"
    with _pg_admin() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return StoreConfig(service=service, kind="postgres", pg_dbname=dbname)


@pytest.fixture
def pg_store():
    """Factory: ``pg_store("billing")`` gives a StoreConfig for a new, empty database."""
    return new_pg_store


@pytest.fixture(scope="module")
def amqp_uri() -> Iterator[str]:
    """A RabbitMQ vhost of this test module's own: queues, bindings and backlogs never
    leak from one module's services into another's."""
    vhost = f"{RUN}_{uuid.uuid4().hex[:6]}"
    created = _rabbitmqctl("add_vhost", vhost)
    if created.returncode != 0:
        pytest.fail(f"cannot create a RabbitMQ vhost with rabbitmqctl: {created.stderr.strip()}")
    _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
    _rabbitmqctl("delete_vhost", vhost)
