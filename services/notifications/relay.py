"""What the notifications service publishes: mail_sent, and mail_failed when a mail failed
for good."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.common.relay import WireEvent
from services.notifications.application import NotificationsApplication
from services.notifications.domain import Delivery


def open_store() -> tuple[NotificationsApplication, sa.Engine]:
    app = NotificationsApplication()
    return app, app.engine


def _delivery_fields(delivery: Delivery) -> dict:
    return {
        "delivery_id": str(delivery.id),
        "template": delivery.template,
        "language": delivery.language,
        "recipients": delivery.recipients,
        "cause_id": delivery.cause_id,
        "company_id": delivery.company_id,
        "event": delivery.event,
        "attempts": delivery.attempts,
    }


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    if isinstance(e, Delivery.Sent):
        delivery = app.repository.get(e.originator_id, version=e.originator_version)
        yield WireEvent(
            "mail_sent", str(e.originator_id), {**_delivery_fields(delivery), "at": e.at}
        )
    elif isinstance(e, Delivery.AttemptFailed) and getattr(e, "retry_at", None) is None:
        delivery = app.repository.get(e.originator_id, version=e.originator_version)
        yield WireEvent(
            "mail_failed",
            str(e.originator_id),
            {**_delivery_fields(delivery), "error": e.error, "at": e.at},
        )
