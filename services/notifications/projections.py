"""Notifications read views: the delivery log (from our events) and, fed by other
services' events, each company's push settings."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.projector import Projection
from services.common.views import UTCDateTime
from services.notifications.domain import Delivery

metadata = sa.MetaData()
deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(64), primary_key=True),
    sa.Column("template", sa.String(60), nullable=False),
    sa.Column("cause_id", sa.String(80), nullable=False),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("subject", sa.String(300), nullable=False),
    sa.Column("status", sa.String(10), nullable=False, index=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

# not a projection of our own log: kept from billing's account_config_set events
settings_meta = sa.MetaData()
push_settings = sa.Table(
    "push_settings",
    settings_meta,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("push_enabled", sa.Boolean, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("push_emails", sa.JSON, nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
)

projection = Projection("notifications.views", metadata)


def _delivery(e: object) -> sa.Update:
    return deliveries.update().where(deliveries.c.delivery_id == str(e.originator_id))  # type: ignore[attr-defined]


@projection.on(Delivery.Created)
def delivery_created(conn: sa.Connection, e: Delivery.Created) -> None:
    conn.execute(
        deliveries.insert().values(
            delivery_id=str(e.originator_id),
            template=e.template,
            cause_id=e.cause_id,
            company_id=e.company_id,
            language=e.language,
            recipients=e.recipients,
            subject=e.subject,
            status="pending",
            attempts=0,
            created_at=e.timestamp,
            changed_at=e.timestamp,
        )
    )


@projection.on(Delivery.Sent)
def delivery_sent(conn: sa.Connection, e: Delivery.Sent) -> None:
    conn.execute(
        _delivery(e).values(
            status="sent", attempts=deliveries.c.attempts + 1, changed_at=e.timestamp
        )
    )


@projection.on(Delivery.AttemptFailed)
def delivery_failed(conn: sa.Connection, e: Delivery.AttemptFailed) -> None:
    attempts = deliveries.c.attempts + 1
    conn.execute(
        _delivery(e).values(
            attempts=attempts,
            last_error=e.error[:500],
            status=sa.case(
                (sa.literal(e.permanent), "failed"),
                (attempts >= 6, "failed"),
                else_="pending",
            ),
            changed_at=e.timestamp,
        )
    )
