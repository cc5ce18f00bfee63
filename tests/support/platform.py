"""A slice of the platform for integration and gateway tests: chosen services (and the
gateway) as real ``nameko run`` processes on their own PostgreSQL databases and RabbitMQ
vhost, with helpers to log in, call HTTP endpoints and RPC methods.

    with Platform(amqp_uri, tmp_path, services=("catalog",), gateway=True) as platform:
        token = platform.login("support", role="support")
        status, body = platform.http("GET", "/packages", token=token)

Databases are named ``iotb_t<pid>_...`` so the session's clean-up (tests/conftest.py)
also removes what a killed run left; ``stop`` drops them at once.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import requests
from kombu import Connection, Exchange, Producer
from nameko.standalone.rpc import ClusterRpcProxy
from psycopg import sql

from gateway.users import Users
from services.common.config import StoreConfig
from services.common.consumer import declare_subscriptions, subscriptions
from services.common.store import make_engine
from tests.support.processes import (
    Process,
    free_port,
    nameko_config,
    nameko_run,
    wait_for,
)

TARGETS = {
    "catalog": "services.catalog.service:CatalogService",
    "devices": "services.devices.service:DevicesService",
    "billing": "services.billing.service:BillingService",
    "payments": "services.payments.service:PaymentsService",
    "notifications": "services.notifications.service:NotificationsService",
}
PASSWORD = "test-pass-2026"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(dbname="postgres", autocommit=True, **PG)


def service_classes(services: tuple[str, ...]) -> list[type]:
    from importlib import import_module

    classes = []
    for service in services:
        module, cls_name = TARGETS[service].split(":")
        classes.append(getattr(import_module(module), cls_name))
    return classes


def subscription_queues(services: tuple[str, ...]) -> list[str]:
    """The durable queue names of every ``@subscribe`` handler of these services."""
    return [q for cls in service_classes(services) for q, _, _ in subscriptions(cls)]


class Platform:
    def __init__(
        self,
        amqp_uri: str,
        work_dir: Path,
        services: tuple[str, ...] = ("catalog",),
        gateway: bool = True,
        env: dict[str, str] | None = None,
    ) -> None:
        self.amqp_uri = amqp_uri
        self.work_dir = work_dir
        self.services = services
        self.with_gateway = gateway
        self.prefix = f"iotb_t{os.getpid()}_p{uuid.uuid4().hex[:6]}_"
        self.address = f"127.0.0.1:{free_port()}"
        self.base_url = f"http://{self.address}"
        self.env = {
            **os.environ,
            "IOTB_STORE": "postgres",
            "IOTB_DB_PREFIX": self.prefix,
            "AMQP_URI": amqp_uri,
            "IOTB_DATA_DIR": str(work_dir),
            "IOTB_GATEWAY_ADDRESS": self.address,
            "IOTB_JWT_SECRET": uuid.uuid4().hex,
            "IOTB_RPC_TIMEOUT": "20",
            **(env or {}),
        }
        self.processes: list[Process] = []
        self._users: Users | None = None
        self._http = requests.Session()

    # -- life ----------------------------------------------------------------------------
    def stores(self) -> list[str]:
        return [*self.services, *(["gateway"] if self.with_gateway else [])]

    def store(self, service: str) -> StoreConfig:
        return StoreConfig(service=service, kind="postgres", pg_dbname=self.prefix + service)

    def start(self, timeout: float = 60.0) -> Platform:
        with _pg_admin() as conn:
            for name in self.stores():
                conn.execute(
                    sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.prefix + name))
                )
        declare_subscriptions(service_classes(self.services), self.amqp_uri)
        config = nameko_config(
            self.work_dir / "nameko.yaml", self.amqp_uri, web_address=self.address
        )
        for name in self.services:
            self.processes.append(nameko_run(name, TARGETS[name], config, self.env, self.work_dir))
        if self.with_gateway:
            self.processes.append(
                nameko_run(
                    "gateway", "gateway.service:GatewayService", config, self.env, self.work_dir
                )
            )
        try:
            wait_for(self._up, timeout=timeout, interval=0.3, what=f"{self.stores()} to answer")
        except AssertionError:
            logs = "\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)
            self.stop()
            raise AssertionError(f"the platform did not start:\n{logs}") from None
        return self

    def _up(self) -> bool:
        for process in self.processes:
            if not process.alive():
                raise AssertionError(f"{process.name} exited:\n{process.tail()}")
        if self.with_gateway:
            answer = self._http.get(self.base_url + "/health", timeout=10).json()
            up = {s["name"] for s in answer["services"] if s["up"]}
            return set(self.services) <= up and self._subscriptions_ready()
        with self.rpc(timeout=5) as rpc:
            if not all(getattr(rpc, name).health()["ok"] for name in self.services):
                return False
        return self._subscriptions_ready()

    def _subscriptions_ready(self) -> bool:
        """Every event queue of the started services exists: a message published now is
        not lost for want of a binding."""
        with Connection(self.amqp_uri) as conn, conn.channel() as channel:
            for name in subscription_queues(self.services):
                try:
                    channel.queue_declare(name, passive=True)
                except Exception:  # noqa: BLE001 - NOT_FOUND closes the channel
                    return False
        return True

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes = []
        if self._users is not None:
            self._users.engine.dispose()
            self._users = None
        self._http.close()
        with _pg_admin() as conn:
            for name in self.stores():
                dbname = self.prefix + name
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (dbname,),
                )
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))

    def __enter__(self) -> Platform:
        return self.start()

    def __exit__(
        self, kind: type | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- talking to it -------------------------------------------------------------------
    @contextmanager
    def rpc(self, timeout: float = 30) -> Iterator[Any]:
        with ClusterRpcProxy({"AMQP_URI": self.amqp_uri}, timeout=timeout) as proxy:
            yield proxy

    def publish(self, source: str, envelopes: list[dict]) -> None:
        """Publish envelopes as ``source``'s relay does (to test a subscriber)."""
        exchange = Exchange(f"{source}.events", type="topic", durable=True, delivery_mode=2)
        with Connection(self.amqp_uri) as conn:
            producer = Producer(conn.channel())
            for envelope in envelopes:
                producer.publish(
                    json.dumps(envelope),
                    exchange=exchange,
                    routing_key=envelope["type"],
                    declare=[exchange],
                    content_type="application/json",
                    content_encoding="utf-8",
                    message_id=envelope["id"],
                )

    def users(self) -> Users:
        if self._users is None:
            self._users = Users(make_engine(self.store("gateway")))
        return self._users

    def login(self, username: str, role: str | None = None, company_id: str = "vendor") -> str:
        """A bearer token for ``username``; with ``role`` the user is created first."""
        if role is not None and self.users().find(username) is None:
            self.users().create(username, PASSWORD, role, company_id)
        status, body = self.http(
            "POST", "/auth/login", body={"username": username, "password": PASSWORD}
        )
        assert status == 200, body
        return body["token"]

    def http(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        query: dict | None = None,
        raw: str | None = None,
    ) -> tuple[int, Any]:
        """One request; returns the status and the JSON body (None when there is none)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        answer = self._http.request(
            method,
            self.base_url + path,
            json=body if raw is None else None,
            data=raw,
            params=query,
            headers=headers,
            timeout=30,
        )
        return answer.status_code, (answer.json() if answer.content else None)
