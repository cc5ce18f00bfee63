"""Notifications use cases: decide what to tell whom, record it once, send it."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

import sqlalchemy as sa

from services.common import clock
from services.common.actor import Actor
from services.common.scope import company, scope_meta, subtree_ids, upsert_company
from services.common.store import IntegrityError, ServiceApplication
from services.common.views import row_dict
from services.notifications.domain import Delivery
from services.notifications.mailer import Mailer, PermanentFailure, TemporaryFailure, build_message
from services.notifications.projections import deliveries, projection, push_settings, settings_meta
from services.notifications.templates import render_receipt

RETRY_BACKOFF_SECONDS = (0, 5, 30, 120, 600, 1800)


class NotificationsApplication(ServiceApplication):
    service = "notifications"
    projection = projection

    def __init__(self, *args: object, mailer: Mailer | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        settings_meta.create_all(self.engine)
        scope_meta.create_all(self.engine)
        self.mailer = mailer or Mailer()

    # -- facts from other services -------------------------------------------------------
    def record_company(self, sequence: int, data: dict) -> None:
        with self.engine.begin() as conn:
            upsert_company(
                conn, data["company_id"], data["parent_id"], data["name"], data["region"], sequence
            )

    def record_push_settings(self, sequence: int, data: dict) -> None:
        values = {
            "push_enabled": data["push_enabled"],
            "language": data["language"],
            "push_emails": list(data["push_emails"]),
            "sequence": sequence,
        }
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(push_settings.c.sequence).where(
                    push_settings.c.company_id == data["company_id"]
                )
            ).first()
            if row is None:
                conn.execute(push_settings.insert().values(company_id=data["company_id"], **values))
            elif row.sequence < sequence:
                conn.execute(
                    push_settings.update()
                    .where(push_settings.c.company_id == data["company_id"])
                    .values(**values)
                )

    # -- mails ---------------------------------------------------------------------------
    def _audience(self, company_id: str) -> tuple[sa.Row | None, str]:
        with self.engine.connect() as conn:
            settings = conn.execute(
                sa.select(push_settings).where(push_settings.c.company_id == company_id)
            ).first()
            found = company(conn, company_id)
        return settings, (found.name if found is not None else company_id)

    def renewal_receipt(self, message_id: str, data: dict) -> bool:
        """One receipt per applied order; nothing when push is off or nobody is listed."""
        settings, company_name = self._audience(data["company_id"])
        if settings is None or not settings.push_enabled or not settings.push_emails:
            return False
        subject, text, html = render_receipt(settings.language, company_name, data)
        delivery = Delivery(
            template="renewal_receipt",
            cause_id=message_id,
            company_id=data["company_id"],
            language=settings.language,
            recipients=list(settings.push_emails),
            subject=subject,
            text=text,
            html=html,
        )
        try:
            self.save(delivery)
        except IntegrityError:
            return False  # this event was already turned into a mail
        self.send(delivery.id)
        return True

    def send(self, delivery_id: UUID) -> None:
        delivery: Delivery = self.repository.get(delivery_id)
        if delivery.status != "pending":
            return
        message = build_message(
            self.mailer.sender,
            delivery.recipients,
            delivery.subject,
            delivery.text,
            delivery.html,
            str(delivery.id),
        )
        try:
            self.mailer.send(message)
        except (TemporaryFailure, PermanentFailure) as exc:
            delivery.attempt_failed(
                at=clock.now(), error=str(exc), permanent=isinstance(exc, PermanentFailure)
            )
        else:
            delivery.sent(at=clock.now())
        try:
            self.save(delivery)
        except IntegrityError:
            pass  # another worker recorded this attempt's outcome first

    def retry_pending(self) -> int:
        """Send again what failed temporarily, after a growing pause."""
        now = clock.now()
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    deliveries.c.delivery_id, deliveries.c.attempts, deliveries.c.changed_at
                ).where(deliveries.c.status == "pending")
            ).all()
        retried = 0
        for row in rows:
            pause = RETRY_BACKOFF_SECONDS[min(row.attempts, len(RETRY_BACKOFF_SECONDS) - 1)]
            if row.changed_at + timedelta(seconds=pause) <= now:
                self.send(UUID(row.delivery_id))
                retried += 1
        return retried

    def delivery_log(self, actor: Actor, company_id: str | None = None) -> list[dict]:
        with self.engine.connect() as conn:
            query = sa.select(deliveries).order_by(deliveries.c.created_at.desc())
            if actor.role != "admin" or company_id:
                allowed = subtree_ids(conn, actor.company_id) if not actor.is_system else None
                if company_id:
                    query = query.where(deliveries.c.company_id == company_id)
                if allowed is not None:
                    query = query.where(deliveries.c.company_id.in_(allowed))
            return [row_dict(r) for r in conn.execute(query.limit(500))]
