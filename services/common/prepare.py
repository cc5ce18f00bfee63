"""Prepare every service's store: create the PostgreSQL databases (when IOTB_STORE is
postgres) and each service's tables, and declare every subscriber's RabbitMQ queue (so
events published before a service first starts wait for it). Safe to run again.

    python -m services.common.prepare            # create
    python -m services.common.prepare --drop     # drop the databases (tests clean up)
"""

from __future__ import annotations

import argparse
import importlib

import psycopg
from psycopg import sql

from services.common.config import SERVICES, store_config

STORES = (*SERVICES, "gateway")


def _admin_conn(dbname: str = "postgres") -> psycopg.Connection:
    config = store_config("gateway")
    return psycopg.connect(
        host=config.pg_host,
        port=config.pg_port,
        user=config.pg_user,
        password=config.pg_password or None,
        dbname=dbname,
        autocommit=True,
    )


def create_databases() -> None:
    with _admin_conn() as conn:
        for name in STORES:
            dbname = store_config(name).pg_dbname
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))


def drop_databases() -> None:
    with _admin_conn() as conn:
        for name in STORES:
            dbname = store_config(name).pg_dbname
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (dbname,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(dbname)))


def create_tables() -> None:
    for name in SERVICES:
        relay = importlib.import_module(f"services.{name}.relay")
        app, engine = relay.open_store()  # creates the event store and view tables
        app.close()
    from gateway.users import Users

    Users().engine.dispose()


SERVICE_CLASSES = {
    "catalog": "services.catalog.service:CatalogService",
    "devices": "services.devices.service:DevicesService",
    "billing": "services.billing.service:BillingService",
    "payments": "services.payments.service:PaymentsService",
    "notifications": "services.notifications.service:NotificationsService",
}


def service_classes() -> list[type]:
    classes = []
    for target in SERVICE_CLASSES.values():
        module, name = target.split(":")
        classes.append(getattr(importlib.import_module(module), name))
    return classes


def declare_topology() -> int:
    from services.common.consumer import declare_subscriptions

    return declare_subscriptions(service_classes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop", action="store_true")
    args = parser.parse_args()
    kind = store_config("gateway").kind
    if args.drop:
        if kind == "postgres":
            drop_databases()
        return
    if kind == "postgres":
        create_databases()
    create_tables()
    queues = declare_topology()
    print(f"stores ready ({kind}); {queues} subscriber queues declared")


if __name__ == "__main__":
    main()
