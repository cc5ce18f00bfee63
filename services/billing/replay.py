"""Rebuilding every billing view from the event store, in parallel on PostgreSQL.

Every view row belongs to exactly one aggregate (a balance to its account, an order line to
its order, ...), and an aggregate's events only ever touch its own rows. So the log can be
split by aggregate: each worker process replays the events of its share of the aggregates,
in log order, into the same (emptied) views, and the results cannot collide. The
projector's position moves to the end once every worker is done; events written meanwhile
are then applied by the ordinary catch-up.

Run it with the billing service stopped. An interrupted replay leaves half-built views:
run it again (it starts by dropping them).
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable
from typing import Any

import psycopg
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent

from services.billing.batching import ViewBatch
from services.common.config import StoreConfig
from services.common.projector import Projection, positions
from services.common.store import make_engine

PAGE = 5000


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _replay_share(
    app: Any,
    config: StoreConfig,
    projection: Projection,
    share: int,
    shares: int,
    high: int,
    done: Any,
) -> None:
    """One worker: the events of aggregates whose id hashes to ``share``, up to ``high``."""
    engine = make_engine(config)  # never the parent's connections
    table = app.recorder.events_table_name
    to_event = app.mapper.to_domain_event
    handlers = projection.handlers
    try:
        with psycopg.connect(
            host=config.pg_host,
            port=config.pg_port,
            user=config.pg_user,
            password=config.pg_password or None,
            dbname=config.pg_dbname,
        ) as source:
            # binary rows: the state arrives as bytes, nothing to decode from hex
            with source.cursor(name="replay", binary=True) as cursor:
                cursor.itersize = PAGE
                cursor.execute(
                    f"SELECT originator_id, originator_version, topic, state FROM {table} "  # noqa: S608 - the recorder's own table name
                    "WHERE notification_id <= %s "
                    "AND (hashtext(originator_id::text) & 2147483647) %% %s = %s "
                    "ORDER BY notification_id",
                    (high, shares, share),
                )
                while rows := cursor.fetchmany(PAGE):
                    with engine.begin() as conn:
                        batch = ViewBatch(conn)
                        for originator_id, version, topic, state in rows:
                            event = to_event(StoredEvent(originator_id, version, topic, state))
                            handler = handlers.get(type(event))
                            if handler is not None:
                                handler(batch, event)  # type: ignore[arg-type]
                        batch.flush()
                    done.put(len(rows))
    finally:
        engine.dispose()


def parallel_rebuild(
    app: Any,
    engine: sa.Engine,
    projection: Projection,
    config: StoreConfig,
    workers: int,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Drop and recreate the views, replay the log with ``workers`` processes; returns how
    many events were replayed (before the final catch-up)."""
    projection.metadata.drop_all(engine)
    projection.metadata.create_all(engine)
    # a bulk load builds each secondary index once at the end, faster than row by row
    indexes = [i for t in projection.metadata.sorted_tables for i in t.indexes]
    for index in indexes:
        index.drop(engine)
    high = app.recorder.max_notification_id() or 0
    with engine.begin() as conn:
        conn.execute(
            positions.update().where(positions.c.name == projection.name).values(position=0)
        )
    try:
        return _replay(app, engine, projection, config, workers, high, progress)
    finally:
        for index in indexes:
            index.create(engine)


def _replay(
    app: Any,
    engine: sa.Engine,
    projection: Projection,
    config: StoreConfig,
    workers: int,
    high: int,
    progress: Callable[[int], None] | None,
) -> int:
    if high == 0:
        return 0
    context = multiprocessing.get_context("fork")  # the children share the loaded code
    done = context.Queue()
    children = [
        context.Process(
            target=_replay_share,
            args=(app, config, projection, share, workers, high, done),
            daemon=True,
        )
        for share in range(workers)
    ]
    for child in children:
        child.start()
    replayed = 0
    try:
        while any(c.is_alive() for c in children) or not done.empty():
            try:
                count = done.get(timeout=0.2)
            except queue.Empty:
                continue
            replayed += count
            if progress:
                progress(count)
    finally:
        for child in children:
            child.join()
    failed = [c.exitcode for c in children if c.exitcode != 0]
    if failed:
        raise RuntimeError(f"replay workers failed (exit codes {failed}): run replay again")
    with engine.begin() as conn:
        conn.execute(
            positions.update().where(positions.c.name == projection.name).values(position=high)
        )
    return replayed
