"""Read views as projections of the service's own notification log.

A Projector applies events strictly in log order and moves its position in the same
transaction as the view rows, so a view is never half-applied and can always be dropped
and rebuilt (``rebuild``). Commands call ``catch_up`` after saving, so a caller reads its
own writes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from eventsourcing.application import Application

log = logging.getLogger(__name__)

Handler = Callable[[sa.Connection, Any], None]

_positions_meta = sa.MetaData()
positions = sa.Table(
    "projection_position",
    _positions_meta,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


class Projection:
    """Tables plus one handler per domain event class."""

    def __init__(self, name: str, metadata: sa.MetaData) -> None:
        self.name = name
        self.metadata = metadata
        self.handlers: dict[type, Handler] = {}

    def on(self, *event_classes: type) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for cls in event_classes:
                self.handlers[cls] = handler
            return handler

        return register

    def apply(self, conn: sa.Connection, event: Any) -> None:
        handler = self.handlers.get(type(event))
        if handler is not None:
            handler(conn, event)


class _PositionMoved(Exception):
    pass


class Projector:
    def __init__(
        self, app: Application, engine: sa.Engine, projection: Projection, page: int = 1000
    ) -> None:
        self.app = app
        self.engine = engine
        self.projection = projection
        self.page = page
        self._lock = threading.Lock()

    def setup(self) -> None:
        _positions_meta.create_all(self.engine)
        self.projection.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            found = conn.execute(
                sa.select(positions.c.position).where(positions.c.name == self.projection.name)
            ).first()
            if found is None:
                conn.execute(positions.insert().values(name=self.projection.name, position=0))

    def position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(positions.c.position).where(positions.c.name == self.projection.name)
            ).scalar_one()

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Apply every new event; return how many notifications were read."""
        total = 0
        with self._lock:
            while True:
                try:
                    done = self._step()
                except _PositionMoved:
                    continue  # another process applied this page: read on from its mark
                if done == 0:
                    return total
                total += done
                if progress:
                    progress(done)

    def _step(self) -> int:
        # read the log before taking the view's write transaction: on SQLite that
        # transaction holds the file's write lock, which the event store's writer needs
        start = self.position()
        notes = self.app.recorder.select_notifications(
            start=start, limit=self.page, inclusive_of_start=False
        )
        if not notes:
            return 0
        events = [self.app.mapper.to_domain_event(note) for note in notes]
        with self.engine.begin() as conn:
            for event in events:
                self.projection.apply(conn, event)
            moved = conn.execute(
                positions.update()
                .where(positions.c.name == self.projection.name, positions.c.position == start)
                .values(position=notes[-1].id)
            )
            if moved.rowcount != 1:
                raise _PositionMoved()  # another process applied this page: roll ours back
        return len(notes)

    def rebuild(self, progress: Callable[[int], None] | None = None) -> int:
        """Drop every view table, recreate it empty and replay the whole log into it."""
        with self._lock:
            self.projection.metadata.drop_all(self.engine)
            self.projection.metadata.create_all(self.engine)
            with self.engine.begin() as conn:
                conn.execute(
                    positions.update()
                    .where(positions.c.name == self.projection.name)
                    .values(position=0)
                )
        return self.catch_up(progress)
