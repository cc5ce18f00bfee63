"""Notifications use cases: decide what to tell whom, make each mail once, send it.

Exactly once: every mail is a Delivery whose id derives from what it is about (the order
of a receipt, the statement, the company and local day of a digest, ...). A redelivered or
replayed event finds that delivery already made and changes nothing; sending is claimed
before SMTP is called, so two workers never send the same delivery.

Push settings decide: a company without a config, or with push off, gets nothing. Device
changes are gathered (one row per event) into digests: one mail per company per local day
for expiry reminders and for expiries, one per short window for suspensions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from uuid import UUID

import sqlalchemy as sa

from contracts.envelope import Envelope
from services.common import clock
from services.common.actor import Actor
from services.common.errors import Forbidden, NotFound
from services.common.scope import company, scope_meta, subtree_ids, upsert_company
from services.common.store import IntegrityError, ServiceApplication
from services.common.views import row_dict
from services.notifications.config import NotificationSettings, zone
from services.notifications.documents import StatementFiles, event_only_workbook
from services.notifications.domain import (
    DAILY_KINDS,
    SENDING_LEASE,
    Delivery,
    daily_period,
)
from services.notifications.mailer import Mailer, PermanentFailure, TemporaryFailure, build_message
from services.notifications.projections import (
    batch_items,
    delivery_log,
    expiry_watch,
    facts_meta,
    mail_batches,
    mail_settings,
    paid_orders,
    projection,
)
from services.notifications.templates import Context, render

log = logging.getLogger(__name__)

BATCH_EVENTS = {
    "expiry_reminders": "devices.device_expiring",
    "devices_expired": "devices.device_expired",
    "device_status": "devices.device_suspended/device_reenabled",
}


@dataclass(frozen=True)
class Audience:
    """Who hears about a company, in which language and time zone."""

    company_id: str
    name: str
    push_enabled: bool
    language: str
    emails: list[str]
    tz: tzinfo


def event_name(envelope: Envelope) -> str:
    return f"{envelope.source}.{envelope.type}"


class NotificationsApplication(ServiceApplication):
    service = "notifications"
    projection = projection

    def __init__(
        self,
        *args: object,
        mailer: Mailer | None = None,
        settings: NotificationSettings | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        facts_meta.create_all(self.engine)
        scope_meta.create_all(self.engine)
        self.mailer = mailer or Mailer()
        self.settings = settings or NotificationSettings.from_env()

    # -- facts from other services -----------------------------------------------------------
    def record_company(self, sequence: int, data: dict) -> None:
        with self.engine.begin() as conn:
            upsert_company(
                conn, data["company_id"], data["parent_id"], data["name"], data["region"], sequence
            )

    def record_account_config(self, sequence: int, data: dict) -> None:
        self._settings_row(
            sequence,
            data["company_id"],
            push_enabled=bool(data["push_enabled"]),
            language=data["language"],
            push_emails=list(data["push_emails"]),
            timezone=data.get("timezone"),
            deleted=False,
        )

    def forget_account_config(self, sequence: int, data: dict) -> None:
        """A deleted config stops every mail; the row stays as a tombstone, so an older
        config_set arriving late cannot bring it back."""
        self._settings_row(
            sequence,
            data["company_id"],
            push_enabled=False,
            language="zh",
            push_emails=[],
            timezone=None,
            deleted=True,
        )

    def _settings_row(self, sequence: int, company_id: str, **values: object) -> None:
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(mail_settings.c.sequence).where(mail_settings.c.company_id == company_id)
            ).first()
            if row is None:
                conn.execute(
                    mail_settings.insert().values(
                        company_id=company_id, sequence=sequence, **values
                    )
                )
            elif row.sequence < sequence:
                conn.execute(
                    mail_settings.update()
                    .where(mail_settings.c.company_id == company_id)
                    .values(sequence=sequence, **values)
                )

    def audience(self, company_id: str) -> Audience | None:
        with self.engine.connect() as conn:
            settings = conn.execute(
                sa.select(mail_settings).where(mail_settings.c.company_id == company_id)
            ).first()
            found = company(conn, company_id)
        if settings is None or settings.deleted:
            return None
        return Audience(
            company_id=company_id,
            name=found.name if found is not None else company_id,
            push_enabled=settings.push_enabled,
            language=settings.language,
            emails=list(settings.push_emails),
            tz=zone(settings.timezone or self.settings.timezone),
        )

    # -- making and sending a mail -----------------------------------------------------------
    def _make(
        self,
        key: str,
        template: str,
        audience: Audience,
        event: str,
        cause_id: str,
        data: dict,
        about: list[str],
        attachments: Callable[[Audience], list[dict]] | None = None,
    ) -> Delivery | None:
        """Make the delivery ``key`` once and try to send it; None if it already exists.
        Without an address the delivery is recorded as skipped ("no address")."""
        if self.find(Delivery.create_id(key)) is not None:
            return None  # made before: a redelivered or replayed event
        now = clock.now()
        context = Context(
            audience.language, audience.tz, audience.name, now, self.settings.reminder_days
        )
        rendered = render(template, context, data)
        skipped = None if audience.emails else "no address"
        delivery = Delivery(
            key=key,
            template=template,
            company_id=audience.company_id,
            language=audience.language,
            recipients=audience.emails,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            event=event,
            cause_id=cause_id,
            about=about,
            # asked for only now: the mail is really made (fetching may take an RPC)
            attachments=attachments(audience) if attachments and not skipped else [],
            skipped=skipped,
            created_at=now,
        )
        try:
            self.save(delivery)
        except IntegrityError:
            return None  # another worker made it first
        if delivery.status == "pending":
            self.dispatch(delivery.id)
        return delivery

    def _mail_company(
        self,
        key: str,
        template: str,
        company_id: str,
        event: str,
        cause_id: str,
        data: dict,
        about: list[str],
        attachments: Callable[[Audience], list[dict]] | None = None,
    ) -> Delivery | None:
        """A mail to a company's push addresses, if it wants mail at all."""
        audience = self.audience(company_id)
        if audience is None or not audience.push_enabled:
            return None  # push off (or no config): nothing is sent, nothing recorded
        return self._make(key, template, audience, event, cause_id, data, about, attachments)

    def dispatch(self, delivery_id: UUID) -> str | None:
        """One attempt to send a due delivery; returns its status after, None if not due."""
        now = clock.now()
        delivery: Delivery | None = self.find(delivery_id)
        if delivery is None or not delivery.due(now):
            return None
        delivery.start_attempt(now)
        try:
            self.save(delivery)
        except IntegrityError:
            return None  # another worker claimed this attempt
        message = build_message(
            self.mailer.sender,
            delivery.recipients,
            delivery.subject,
            delivery.text,
            delivery.html,
            str(delivery.id),
            delivery.attachments,
            date=now,
        )
        try:
            self.mailer.send(message, delivery.recipients)
        except TemporaryFailure as exc:
            log.warning("delivery %s failed, will retry: %s", delivery.id, exc)
            delivery.fail(clock.now(), str(exc), permanent=False, backoff=self.settings.backoff)
        except PermanentFailure as exc:
            log.error("delivery %s failed permanently: %s", delivery.id, exc)
            delivery.fail(clock.now(), str(exc), permanent=True)
        else:
            delivery.sent(at=clock.now())
        self.save(delivery)
        return delivery.status

    def retry_due(self) -> int:
        """Attempt every delivery whose pause is over, and any claim a crash left behind."""
        self.catch_up()  # deliveries made by other replicas
        now = clock.now()
        with self.engine.connect() as conn:
            ids = conn.execute(
                sa.select(delivery_log.c.delivery_id).where(
                    sa.or_(
                        sa.and_(
                            delivery_log.c.status == "pending",
                            sa.or_(
                                delivery_log.c.retry_at.is_(None), delivery_log.c.retry_at <= now
                            ),
                        ),
                        sa.and_(
                            delivery_log.c.status == "sending",
                            delivery_log.c.claimed_at <= now - SENDING_LEASE,
                        ),
                    )
                )
            ).scalars()
            due = list(ids)
        return sum(1 for delivery_id in due if self.dispatch(UUID(delivery_id)) is not None)

    def tick(self) -> None:
        """What the timer does: mail the digests that are due, then retry failed mails."""
        self.close_due_batches()
        self.retry_due()

    # -- receipts ----------------------------------------------------------------------------
    def record_paid_order(self, data: dict) -> None:
        with self.engine.begin() as conn:
            exists = conn.execute(
                sa.select(paid_orders.c.order_id).where(paid_orders.c.order_id == data["order_id"])
            ).first()
            if exists is None:
                conn.execute(
                    paid_orders.insert().values(
                        order_id=data["order_id"],
                        order_type=data["order_type"],
                        method=data.get("method"),
                        package_names={
                            line["line_id"]: line.get("package_name") for line in data["lines"]
                        },
                    )
                )

    def _paid_order(self, order_id: str) -> sa.Row | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(paid_orders).where(paid_orders.c.order_id == order_id)
            ).first()

    def order_paid(self, envelope: Envelope) -> Delivery | None:
        """Value-added orders get their receipt when paid; renewals wait for the devices
        service to apply them (the receipt then says what was renewed)."""
        data = envelope.data
        self.record_paid_order(data)
        if data["order_type"] != "value_added":
            return None
        names = {line["line_id"]: line["package_name"] for line in data["lines"]}
        return self._receipt(envelope, "value_added_receipt", {**data, "package_names": names})

    def renewal_applied(self, envelope: Envelope) -> Delivery | None:
        data = dict(envelope.data)
        paid = self._paid_order(data["order_id"])
        # value-added lines name the binding they extended
        value_added = any(line.get("binding_id") for line in data["lines"])
        order_type = data.get("order_type") or (
            paid.order_type if paid else ("value_added" if value_added else "renewal")
        )
        if paid is not None:
            data.setdefault("method", paid.method)
            data.setdefault("package_names", paid.package_names)
        template = "value_added_receipt" if order_type == "value_added" else "renewal_receipt"
        return self._receipt(envelope, template, data)

    def _receipt(self, envelope: Envelope, template: str, data: dict) -> Delivery | None:
        # keyed by the order: one receipt per order, whichever event brings it first
        return self._mail_company(
            f"receipt:{data['order_id']}",
            template,
            data["company_id"],
            event_name(envelope),
            envelope.id,
            data,
            [line["device_id"] for line in data["lines"]],
        )

    # -- balance -----------------------------------------------------------------------------
    CREDIT_TEMPLATES = {
        "recharge": "balance_credited",
        "offline_application": "balance_credited",
        "refund": "refund_credited",
        "overpayment": "refund_credited",
    }

    def account_credited(self, envelope: Envelope) -> Delivery | None:
        data = envelope.data
        template = self.CREDIT_TEMPLATES.get(data["reason"])
        if template is None:
            return None
        data = {**data, "at": data.get("at") or envelope.time}
        key = f"credit:{data['company_id']}:{data['reason']}:{data['reference']}:{data['currency']}"
        return self._mail_company(
            key, template, data["company_id"], event_name(envelope), envelope.id, data, []
        )

    def auto_renewal_failed(self, envelope: Envelope) -> Delivery | None:
        data = envelope.data
        key = f"auto_renewal_failed:{data['device_id']}:{data['expires_at'].isoformat()}"
        return self._mail_company(
            key,
            "auto_renewal_failed",
            data["company_id"],
            event_name(envelope),
            envelope.id,
            data,
            [data["device_id"]],
        )

    # -- offline applications: to the applicant ----------------------------------------------
    def application_reviewed(self, envelope: Envelope) -> Delivery | None:
        """The applicant is told the decision and the opinion. The event names the
        applicant by user name; only an ``applicant_email`` makes a mail possible, otherwise
        the delivery is recorded as skipped ("no address")."""
        data = envelope.data
        company_audience = self.audience(data["company_id"])
        with self.engine.connect() as conn:
            found = company(conn, data["company_id"])
        language = data.get("applicant_language") or (
            company_audience.language if company_audience else "zh"
        )
        address = data.get("applicant_email")
        applicant = Audience(
            company_id=data["company_id"],
            name=found.name if found is not None else data["company_id"],
            push_enabled=True,  # a workflow mail to staff, not the company's push
            language=language if language in ("zh", "en") else "zh",
            emails=[address] if address else [],
            tz=company_audience.tz if company_audience else zone(self.settings.timezone),
        )
        return self._make(
            f"application:{data['application_id']}:{envelope.type}:{envelope.sequence}",
            envelope.type,  # offline_application_approved / _returned / _rejected
            applicant,
            event_name(envelope),
            envelope.id,
            data,
            [data["application_id"]],
        )

    # -- statements --------------------------------------------------------------------------
    def statement_issued(
        self, envelope: Envelope, files: StatementFiles | None = None
    ) -> Delivery | None:
        data = envelope.data

        def workbook(audience: Audience) -> list[dict]:
            # asked for only when the mail is really made (push on, not made before)
            if files is not None:
                return [files.workbook(data, audience.name, audience.language, audience.tz)]
            return [event_only_workbook(data, audience.name, audience.language, audience.tz)]

        return self._mail_company(
            f"statement:{data['statement_id']}",
            "statement",
            data["company_id"],
            event_name(envelope),
            envelope.id,
            data,
            [data["statement_id"]],
            workbook,
        )

    # -- device changes, gathered into digests -----------------------------------------------
    def device_expiring(self, envelope: Envelope) -> None:
        data = envelope.data
        expires_at: datetime = data["expires_at"]
        key = f"expiring:{data['device_id']}:{expires_at.isoformat()}:{data.get('days_before')}"

        def effect(conn: sa.Connection) -> None:
            self._watch(conn, data["device_id"], data["company_id"], expires_at)
            self._add_item(conn, "expiry_reminders", data, key, expires_at)

        self._gathering(effect)

    def device_expired(self, envelope: Envelope) -> None:
        data = envelope.data
        expires_at: datetime = data["expires_at"]

        def effect(conn: sa.Connection) -> None:
            self._unwatch(conn, data["device_id"], until=expires_at)
            self._drop_pending(conn, data["device_id"], "expiry_reminders")
            key = f"expired:{data['device_id']}:{expires_at.isoformat()}"
            self._add_item(conn, "devices_expired", data, key, expires_at)

        self._gathering(effect)

    def device_status_changed(self, envelope: Envelope, change: str) -> None:
        """``change``: suspended or reenabled. Suspended devices leave the reminders."""
        data = envelope.data

        def effect(conn: sa.Connection) -> None:
            if change == "suspended":
                self._unwatch(conn, data["device_id"])
                self._drop_pending(conn, data["device_id"], "expiry_reminders")
            key = f"{envelope.type}:{envelope.subject}:{envelope.sequence}"
            at = data.get("at") or envelope.time
            self._add_item(
                conn, "device_status", data, key, at, change=change, reason=data.get("reason")
            )

        self._gathering(effect)

    def device_renewed(self, envelope: Envelope) -> None:
        """A renewed device needs no reminder, and is no longer expired."""
        data = envelope.data

        def effect(conn: sa.Connection) -> None:
            self._unwatch(conn, data["device_id"], until=data["new_expires_at"], before=True)
            self._drop_pending(conn, data["device_id"], "expiry_reminders", "devices_expired")

        self._gathering(effect)

    def device_expiry_changed(self, envelope: Envelope) -> None:
        """Support moved an expiry: reminders follow the new date (the window decides)."""
        data = envelope.data

        def effect(conn: sa.Connection) -> None:
            conn.execute(
                expiry_watch.update()
                .where(expiry_watch.c.device_id == data["device_id"])
                .values(expires_at=data["new_expires_at"])
            )
            self._drop_pending(conn, data["device_id"], "expiry_reminders")

        self._gathering(effect)

    def _gathering(self, effect: Callable[[sa.Connection], None], attempts: int = 5) -> None:
        # two workers opening a company's batch at once collide on the one-open-batch
        # index; the loser runs again and joins the winner's batch
        for attempt in range(attempts):
            try:
                with self.engine.begin() as conn:
                    effect(conn)
                return
            except sa.exc.IntegrityError:
                if attempt == attempts - 1:
                    raise

    def _watch(self, conn: sa.Connection, device_id: str, company_id: str, at: datetime) -> None:
        row = conn.execute(
            sa.select(expiry_watch.c.expires_at).where(expiry_watch.c.device_id == device_id)
        ).first()
        if row is None:
            conn.execute(
                expiry_watch.insert().values(
                    device_id=device_id, company_id=company_id, expires_at=at
                )
            )
        elif row.expires_at != at:
            conn.execute(
                expiry_watch.update()
                .where(expiry_watch.c.device_id == device_id)
                .values(company_id=company_id, expires_at=at)
            )

    def _unwatch(
        self,
        conn: sa.Connection,
        device_id: str,
        until: datetime | None = None,
        before: bool = False,
    ) -> None:
        query = expiry_watch.delete().where(expiry_watch.c.device_id == device_id)
        if until is not None:
            # an older event must not forget a newer expiry
            limit = (
                expiry_watch.c.expires_at < until if before else expiry_watch.c.expires_at <= until
            )
            query = query.where(limit)
        conn.execute(query)

    def _drop_pending(self, conn: sa.Connection, device_id: str, *kinds: str) -> None:
        open_batches = sa.select(mail_batches.c.batch_key).where(mail_batches.c.state == "open")
        conn.execute(
            batch_items.update()
            .where(
                batch_items.c.device_id == device_id,
                batch_items.c.kind.in_(kinds),
                batch_items.c.batch_key.in_(open_batches),
            )
            .values(dropped=True)
        )

    def _add_item(
        self,
        conn: sa.Connection,
        kind: str,
        data: dict,
        item_key: str,
        at: datetime,
        change: str | None = None,
        reason: str | None = None,
    ) -> None:
        exists = conn.execute(
            sa.select(batch_items.c.item_key).where(batch_items.c.item_key == item_key)
        ).first()
        if exists is not None:
            return  # this event was gathered before
        conn.execute(
            batch_items.insert().values(
                item_key=item_key,
                batch_key=self._open_batch(conn, kind, data["company_id"]),
                kind=kind,
                company_id=data["company_id"],
                device_id=data["device_id"],
                at=at,
                change=change,
                reason=(reason or None) and reason[:300],
                dropped=False,
            )
        )

    def _open_batch(self, conn: sa.Connection, kind: str, company_id: str) -> str:
        """The company's open batch of this kind (locked against closing meanwhile), or a
        new one: for a daily kind the first local day without a digest yet."""
        found = conn.execute(
            sa.select(mail_batches.c.batch_key)
            .where(
                mail_batches.c.company_id == company_id,
                mail_batches.c.kind == kind,
                mail_batches.c.state == "open",
            )
            .with_for_update()
        ).first()
        if found is not None:
            return found.batch_key
        now = clock.now()
        if kind in DAILY_KINDS:
            tz = self._company_zone(conn, company_id)
            taken = set(
                conn.execute(
                    sa.select(mail_batches.c.period).where(
                        mail_batches.c.company_id == company_id,
                        mail_batches.c.kind == kind,
                        mail_batches.c.period >= now.astimezone(tz).date().isoformat(),
                    )
                ).scalars()
            )
            period, not_before = daily_period(now, tz, taken)
            due = max(now, not_before or now) + self.settings.digest_delay
        else:
            period, due = now.isoformat(), now + self.settings.status_window
        batch_key = f"{kind}:{company_id}:{period}"
        conn.execute(
            mail_batches.insert().values(
                batch_key=batch_key,
                kind=kind,
                company_id=company_id,
                period=period,
                state="open",
                due_at=due,
            )
        )
        return batch_key

    def _company_zone(self, conn: sa.Connection, company_id: str) -> tzinfo:
        name = conn.execute(
            sa.select(mail_settings.c.timezone).where(mail_settings.c.company_id == company_id)
        ).scalar()
        return zone(name or self.settings.timezone)

    def close_due_batches(self) -> int:
        """Mail every batch whose gathering time is over (and any a crash left closing)."""
        now = clock.now()
        with self.engine.connect() as conn:
            due = conn.execute(
                sa.select(mail_batches).where(
                    sa.or_(
                        sa.and_(mail_batches.c.state == "open", mail_batches.c.due_at <= now),
                        sa.and_(
                            mail_batches.c.state == "closing",
                            mail_batches.c.claimed_at <= now - SENDING_LEASE,
                        ),
                    )
                )
            ).all()
        closed = 0
        for batch in due:
            if not self._claim_batch(batch, now):
                continue  # another worker took it
            self._mail_batch(batch)
            with self.engine.begin() as conn:
                conn.execute(
                    mail_batches.update()
                    .where(mail_batches.c.batch_key == batch.batch_key)
                    .values(state="closed")
                )
            closed += 1
        return closed

    def _claim_batch(self, batch: sa.Row, now: datetime) -> bool:
        # from here on no event joins it: its items are fixed, so a retried close after a
        # crash renders the same mail and collides with it if it was made
        claimed = (
            mail_batches.c.claimed_at.is_(None)
            if batch.claimed_at is None
            else mail_batches.c.claimed_at == batch.claimed_at
        )
        with self.engine.begin() as conn:
            moved = conn.execute(
                mail_batches.update()
                .where(
                    mail_batches.c.batch_key == batch.batch_key,
                    mail_batches.c.state == batch.state,
                    claimed,
                )
                .values(state="closing", claimed_at=now)
            )
            return moved.rowcount == 1

    def _mail_batch(self, batch: sa.Row) -> Delivery | None:
        now = clock.now()
        with self.engine.connect() as conn:
            items = conn.execute(
                sa.select(batch_items)
                .where(batch_items.c.batch_key == batch.batch_key, sa.not_(batch_items.c.dropped))
                .order_by(batch_items.c.at, batch_items.c.device_id)
            ).all()
            watched = []
            if batch.kind == "expiry_reminders" and items:
                # every device of the company expiring within the window, not only today's
                horizon = now + timedelta(days=self.settings.reminder_days)
                watched = conn.execute(
                    sa.select(expiry_watch).where(
                        expiry_watch.c.company_id == batch.company_id,
                        expiry_watch.c.expires_at > now,
                        expiry_watch.c.expires_at <= horizon,
                    )
                ).all()
        if not items:
            return None
        if batch.kind == "device_status":
            data = {
                "changes": [
                    {"device_id": i.device_id, "change": i.change, "at": i.at, "reason": i.reason}
                    for i in items
                ]
            }
            about = sorted({i.device_id for i in items})
        else:
            latest: dict[str, datetime] = {}
            known = [(w.device_id, w.expires_at) for w in watched]
            for device_id, at in [*known, *((i.device_id, i.at) for i in items)]:
                latest[device_id] = max(at, latest.get(device_id, at))
            devices = sorted(latest.items(), key=lambda pair: (pair[1], pair[0]))
            data = {"devices": [{"device_id": d, "expires_at": at} for d, at in devices]}
            about = [d for d, _ in devices]
        return self._mail_company(
            batch.batch_key,
            batch.kind,
            batch.company_id,
            BATCH_EVENTS[batch.kind],
            batch.batch_key,
            data,
            about,
        )

    # -- the delivery log --------------------------------------------------------------------
    def _visible(self, conn: sa.Connection, actor: Actor) -> set[str] | None:
        """Companies whose mails ``actor`` may read; None for all (admins)."""
        if actor.is_system or actor.role == "admin":
            return None
        return subtree_ids(conn, actor.company_id)

    def delivery_log(self, actor: Actor, filters: dict) -> list[dict]:
        self.catch_up()
        with self.engine.connect() as conn:
            visible = self._visible(conn, actor)
            query = sa.select(delivery_log)
            if filters.get("company_id"):
                if visible is not None and filters["company_id"] not in visible:
                    raise Forbidden("that company is outside your company and its subsidiaries")
                query = query.where(delivery_log.c.company_id == filters["company_id"])
            elif visible is not None:
                query = query.where(delivery_log.c.company_id.in_(visible))
            for name in ("status", "template"):
                if filters.get(name):
                    query = query.where(delivery_log.c[name] == filters[name])
            if filters.get("since"):
                query = query.where(delivery_log.c.created_at >= filters["since"])
            if filters.get("until"):
                query = query.where(delivery_log.c.created_at < filters["until"])
            query = query.order_by(
                delivery_log.c.created_at.desc(), delivery_log.c.delivery_id
            ).limit(filters.get("limit") or 200)
            return [row_dict(r) for r in conn.execute(query)]

    def delivery(self, actor: Actor, delivery_id: str) -> dict:
        self.catch_up()
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(delivery_log).where(delivery_log.c.delivery_id == delivery_id)
            ).first()
            visible = self._visible(conn, actor)
        if row is None or (visible is not None and row.company_id not in visible):
            raise NotFound(f"delivery {delivery_id} not found")
        return row_dict(row)
