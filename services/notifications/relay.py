"""What the notifications service publishes."""

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


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    if isinstance(e, Delivery.Sent):
        delivery = app.repository.get(e.originator_id, version=e.originator_version)
        yield WireEvent(
            "mail_sent",
            str(e.originator_id),
            {
                "delivery_id": str(e.originator_id),
                "template": delivery.template,
                "language": delivery.language,
                "recipients": delivery.recipients,
                "cause_id": delivery.cause_id,
            },
        )
