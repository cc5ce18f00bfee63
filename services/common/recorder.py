"""The PostgreSQL event recorder, without psycopg's pipeline mode, and with COPY for
large saves.

eventsourcing 9.5 inserts a save's events as one array parameter inside a psycopg
pipeline. With the pure-Python psycopg build this project uses (the C build can stall
eventlet), that pipeline stops flushing a statement larger than the socket takes at once:
a save of more than ~20,000 events (~6 MB) then waits forever (server in ClientRead).
Dumping the array in pure Python also costs ~30 us an event.

Bulk work saves up to 100,000 events atomically (devices' S3 imports), so every service's
PostgreSQL store uses this recorder (services/common/config.py). It does
the same work - lock the table (notification ids commit in order), notify, insert, in one
transaction - with ordinary round trips, and streams saves of ``COPY_FROM`` events or
more with COPY in PostgreSQL's text format. Select it with APPLICATION_RECORDER_TOPIC.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

TOPIC = "services.common.recorder:UnpipelinedRecorder"
COPY_FROM = 2000
PIECE = 1 << 20
_TEXT_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class UnpipelinedRecorder(PostgresApplicationRecorder):
    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
                if not stored_events:
                    return None
                if len(stored_events) < COPY_FROM:
                    self._insert_stored_events(curs, stored_events, **kwargs)
                    return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                self._lock_table(curs)
                self._notify_channel(curs)
                self._copy(curs, stored_events)
                return None  # the caller gets no recordings; nothing here reads them

    def _copy(self, curs: Any, stored_events: Sequence[StoredEvent]) -> None:
        statement = SQL(
            "COPY {schema}.{table} (originator_id, originator_version, topic, state) FROM STDIN"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))
        with curs.copy(statement) as copy:
            lines: list[str] = []
            for event in stored_events:
                topic = event.topic.translate(_TEXT_ESCAPES)
                # bytea in hex form; COPY's own escaping doubles the backslash
                head = f"{event.originator_id}\t{event.originator_version}\t{topic}\t\\\\x"
                if len(event.state) > PIECE:  # e.g. an import's record: stream it in pieces
                    copy.write("".join(lines) + head)
                    lines.clear()
                    for start in range(0, len(event.state), PIECE):
                        copy.write(event.state[start : start + PIECE].hex())
                    copy.write("\n")
                    continue
                lines.append(f"{head}{event.state.hex()}\n")
                if len(lines) == 5000:
                    copy.write("".join(lines))
                    lines.clear()
            if lines:
                copy.write("".join(lines))
