"""One service's storage: an eventsourcing Application (the event store and its notification
log, which is the outbox) and a SQLAlchemy engine on the same database for read views.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import sqlalchemy as sa
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Transcoder, Transcoding

from services.common.config import StoreConfig, store_config
from services.common.domain import Aggregate, stable_id
from services.common.errors import Conflict
from services.common.projector import Projection, Projector

log = logging.getLogger(__name__)

INBOX_NAMESPACE = uuid5(NAMESPACE_URL, "https://iot-billing.example/inbox")

__all__ = [
    "AggregateNotFoundError",
    "IntegrityError",
    "ServiceApplication",
    "make_engine",
    "stable_id",
]


class DecimalAsStr(Transcoding):
    type = Decimal
    name = "decimal_str"

    def encode(self, obj: Decimal) -> str:
        return str(obj)

    def decode(self, data: str) -> Decimal:
        return Decimal(data)


class Handled(Aggregate):
    """Inbox record: message ``message_id`` took effect in consumer ``consumer``.

    Saved in the same atomic write as the effect, so a redelivered message collides on this
    aggregate's id and the whole write is refused: the effect happens once.
    """

    def __init__(self, consumer: str, message_id: str) -> None:
        self.consumer = consumer
        self.message_id = message_id

    @staticmethod
    def create_id(consumer: str, message_id: str) -> UUID:
        return uuid5(INBOX_NAMESPACE, f"{consumer}:{message_id}")


class ServiceApplication(Application):
    """Base of every service's application: Decimal transcoding, snapshots, inbox, retries."""

    service: str = ""
    projection: Projection | None = None

    def __init__(self, config: StoreConfig | None = None, env: dict | None = None) -> None:
        self.store = config or store_config(self.service)
        merged = {**self.store.eventsourcing_env(), "CREATE_TABLE": "y", **(env or {})}
        super().__init__(env=merged)
        self.engine = make_engine(self.store)
        self.projector: Projector | None = None
        if self.projection is not None:
            self.projector = Projector(self, self.engine, self.projection)
            self.projector.setup()

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        recordings = super().save(*objs, **kwargs)
        if self.projector is not None:
            self.projector.catch_up()  # the caller reads its own writes
        return recordings

    def catch_up(self) -> int:
        return self.projector.catch_up() if self.projector is not None else 0

    def close(self) -> None:
        super().close()
        self.engine.dispose()

    def register_transcodings(self, transcoder: Transcoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DecimalAsStr())

    # -- loading -------------------------------------------------------------------------
    def find(self, aggregate_id: UUID) -> Any | None:
        try:
            return self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    # -- writing -------------------------------------------------------------------------
    def save_new(self, *aggregates: Aggregate, what: str = "it") -> None:
        """Save newly created aggregates whose ids are stable: a second create is a Conflict."""
        try:
            self.save(*aggregates)
        except IntegrityError as exc:
            raise Conflict(f"{what} already exists") from exc

    def retrying(self, command: Callable[[], Sequence[Aggregate]], attempts: int = 50) -> None:
        """Run ``command`` (load, decide, return what to save) with optimistic concurrency.

        Another writer saving the same aggregate first makes our save collide; we reload
        and decide again, so rules such as "a balance never goes negative" hold under load.
        """
        for attempt in range(attempts):
            aggregates = command()
            if not aggregates:
                return
            try:
                self.save(*aggregates)
                return
            except IntegrityError:
                time.sleep(min(0.002 * (attempt + 1), 0.05))
        raise Conflict("too many concurrent changes, try again")

    def handle_once(
        self,
        consumer: str,
        message_id: str,
        effect: Callable[[], Sequence[Aggregate]],
        attempts: int = 50,
    ) -> bool:
        """Apply a message's effect exactly once; True if it took effect now."""
        handled_id = Handled.create_id(consumer, message_id)
        for attempt in range(attempts):
            if handled_id in self.repository:
                return False
            aggregates = list(effect())
            try:
                self.save(Handled(consumer=consumer, message_id=message_id), *aggregates)
                return True
            except IntegrityError:
                # either a duplicate got there first (checked at the loop's top) or a
                # concurrent writer changed one of our aggregates: decide again
                time.sleep(min(0.002 * (attempt + 1), 0.05))
        raise Conflict(f"could not apply message {message_id} in {consumer}")


def make_engine(config: StoreConfig) -> sa.Engine:
    if config.kind == "sqlite":
        engine = sa.create_engine(
            config.sqlalchemy_url, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # take the write lock at BEGIN, so two writers queue instead of deadlocking
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return sa.create_engine(config.sqlalchemy_url, pool_pre_ping=True, pool_size=5)
