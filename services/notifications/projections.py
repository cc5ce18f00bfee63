"""Notifications read views.

- ``delivery_log``: a projection of our own Delivery events (drop and rebuild at will).
- Facts kept from other services' events, each row written idempotently (it carries the
  sequence it was written at, or is keyed by the event it came from): push settings per
  company (billing's account configs), paid orders (for receipt details), reminders and
  other device changes gathered into daily or short-window digests, and the devices known
  to expire soon.
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.projector import Projection
from services.common.views import UTCDateTime
from services.notifications.domain import Delivery

metadata = sa.MetaData()
delivery_log = sa.Table(
    "delivery_log",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(300), nullable=False),
    sa.Column("template", sa.String(60), nullable=False, index=True),
    sa.Column("event", sa.String(100), nullable=False),
    sa.Column("cause_id", sa.String(300), nullable=False),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("about", sa.JSON, nullable=False),
    sa.Column("attachments", sa.JSON, nullable=False),
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.Column("reason", sa.String(200)),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("retry_at", UTCDateTime),
    sa.Column("claimed_at", UTCDateTime),
)

projection = Projection("notifications.delivery_log", metadata)


def _row(e: object) -> sa.Update:
    return delivery_log.update().where(delivery_log.c.delivery_id == str(e.originator_id))  # type: ignore[attr-defined]


@projection.on(Delivery.Created)
def delivery_created(conn: sa.Connection, e: Delivery.Created) -> None:
    at = getattr(e, "created_at", None) or e.timestamp
    skipped = getattr(e, "skipped", None)
    conn.execute(
        delivery_log.insert().values(
            delivery_id=str(e.originator_id),
            key=getattr(e, "key", "") or "",
            template=e.template,
            event=getattr(e, "event", "") or "",
            cause_id=e.cause_id,
            company_id=e.company_id,
            language=e.language,
            recipients=list(e.recipients or []),
            subject=e.subject,
            about=list(getattr(e, "about", None) or []),
            attachments=[a["filename"] for a in getattr(e, "attachments", None) or []],
            status="skipped" if skipped else "pending",
            reason=skipped,
            attempts=0,
            created_at=at,
            changed_at=at,
        )
    )


@projection.on(Delivery.AttemptStarted)
def attempt_started(conn: sa.Connection, e: Delivery.AttemptStarted) -> None:
    conn.execute(_row(e).values(status="sending", claimed_at=e.at, changed_at=e.at))


@projection.on(Delivery.Sent)
def delivery_sent(conn: sa.Connection, e: Delivery.Sent) -> None:
    conn.execute(
        _row(e).values(
            status="sent",
            attempts=delivery_log.c.attempts + 1,
            sent_at=e.at,
            retry_at=None,
            changed_at=e.at,
        )
    )


@projection.on(Delivery.AttemptFailed)
def delivery_failed(conn: sa.Connection, e: Delivery.AttemptFailed) -> None:
    retry_at = getattr(e, "retry_at", None)
    conn.execute(
        _row(e).values(
            status="pending" if retry_at is not None else "failed",
            attempts=delivery_log.c.attempts + 1,
            last_error=e.error[:500],
            retry_at=retry_at,
            changed_at=e.at,
        )
    )


# -- facts from other services ----------------------------------------------------------------
facts_meta = sa.MetaData()

mail_settings = sa.Table(
    "mail_settings",
    facts_meta,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("push_enabled", sa.Boolean, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("push_emails", sa.JSON, nullable=False),
    sa.Column("timezone", sa.String(64)),
    sa.Column("deleted", sa.Boolean, nullable=False),  # a tombstone: later events only
    sa.Column("sequence", sa.Integer, nullable=False),
)

paid_orders = sa.Table(
    "paid_orders",
    facts_meta,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("order_type", sa.String(20), nullable=False),
    sa.Column("method", sa.String(20)),
    sa.Column("package_names", sa.JSON, nullable=False),  # line id -> package name
)

# gathered device changes: one row per event, in the batch (digest) that mails it
mail_batches = sa.Table(
    "mail_batches",
    facts_meta,
    sa.Column("batch_key", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("company_id", sa.String(64), nullable=False),
    sa.Column("period", sa.String(100), nullable=False),
    sa.Column("state", sa.String(10), nullable=False),  # open, closing, closed
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime),
    sa.Index(
        "one_open_batch",
        "company_id",
        "kind",
        unique=True,
        postgresql_where=sa.text("state = 'open'"),
        sqlite_where=sa.text("state = 'open'"),
    ),
    sa.Index("batches_due", "state", "due_at"),
)

batch_items = sa.Table(
    "mail_batch_items",
    facts_meta,
    sa.Column("item_key", sa.String(300), primary_key=True),  # the event that brought it
    sa.Column("batch_key", sa.String(200), nullable=False, index=True),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("company_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),  # expiry, or when the change happened
    sa.Column("change", sa.String(20)),
    sa.Column("reason", sa.String(300)),
    sa.Column("dropped", sa.Boolean, nullable=False, default=False),
)

# devices that devices told us expire soon, until renewed, expired, suspended or moved
expiry_watch = sa.Table(
    "expiry_watch",
    facts_meta,
    sa.Column("device_id", sa.String(64), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
