"""Deliveries: one mail about one thing that happened, made once and sent once.

A delivery's id derives from its key (the order for a receipt, the statement, the company
and local day for a digest, ...), so a redelivered or replayed event collides with the
delivery it already made instead of making a second mail.

Sending is claimed first (an event saved with optimistic concurrency), so two workers or
replicas that both find a delivery due cannot both hand it to SMTP; a claim left behind by
a crashed worker lapses after SENDING_LEASE.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

# pause after the 1st, 2nd, ... failed attempt; the 6th failure is final
BACKOFF_SECONDS: tuple[int, ...] = (5, 30, 120, 600, 1800)
MAX_ATTEMPTS = 6
SENDING_LEASE = timedelta(minutes=5)


class DeliveryRefused(Exception):
    pass


class Delivery(Aggregate):
    """A mail to ``recipients`` in ``language`` made from ``template`` about ``cause_id``."""

    def __init__(
        self,
        key: str = "",
        template: str = "",
        company_id: str = "",
        language: str = "zh",
        recipients: list[str] | None = None,
        subject: str = "",
        text: str = "",
        html: str = "",
        event: str = "",
        cause_id: str = "",
        about: list[str] | None = None,
        attachments: list[dict] | None = None,
        skipped: str | None = None,
        created_at: datetime | None = None,
    ) -> None:
        # defaults keep deliveries recorded before these fields existed readable
        self.key = key
        self.template = template
        self.company_id = company_id
        self.language = language
        self.recipients = list(recipients or [])
        self.subject = subject
        self.text = text
        self.html = html
        self.event = event
        self.cause_id = cause_id
        self.about = list(about or [])
        self.attachments = list(attachments or [])  # {filename, content_type, content_b64}
        self.status = "skipped" if skipped else "pending"
        self.reason = skipped
        self.attempts = 0
        self.retry_at: datetime | None = None
        self.claimed_at: datetime | None = None
        self.sent_at: datetime | None = None
        self.last_error: str | None = None

    @staticmethod
    def create_id(key: str) -> UUID:
        return stable_id("delivery", key)

    def due(self, now: datetime) -> bool:
        """May an attempt start now? (pending and past its pause, or a lapsed claim)"""
        if self.status == "pending":
            return self.retry_at is None or self.retry_at <= now
        if self.status == "sending":
            return self.claimed_at is None or self.claimed_at + SENDING_LEASE <= now
        return False

    def start_attempt(self, at: datetime) -> None:
        if not self.due(at):
            raise DeliveryRefused(f"delivery {self.id} is {self.status}, not due")
        self._attempt_started(at=at)

    @event("AttemptStarted")
    def _attempt_started(self, at: datetime) -> None:
        self.status = "sending"
        self.claimed_at = at

    @event("Sent")
    def sent(self, at: datetime) -> None:
        self.status = "sent"
        self.attempts += 1
        self.sent_at = at
        self.retry_at = None

    def fail(
        self,
        at: datetime,
        error: str,
        permanent: bool,
        backoff: Sequence[int] = BACKOFF_SECONDS,
    ) -> None:
        """Record a failed attempt: a temporary failure is tried again after a growing
        pause, a permanent one (or the last allowed attempt) is final."""
        attempts = self.attempts + 1
        retry_at = None
        if not permanent and attempts < MAX_ATTEMPTS:
            retry_at = at + timedelta(seconds=backoff[min(attempts, len(backoff)) - 1])
        self.attempt_failed(at=at, error=error[:500], permanent=permanent, retry_at=retry_at)

    @event("AttemptFailed")
    def attempt_failed(
        self, at: datetime, error: str, permanent: bool, retry_at: datetime | None = None
    ) -> None:
        self.attempts += 1
        self.last_error = error
        self.retry_at = retry_at
        self.status = "pending" if retry_at is not None else "failed"


# -- grouping -------------------------------------------------------------------------------
DAILY_KINDS = ("expiry_reminders", "devices_expired")  # one mail per company per local day
WINDOW_KINDS = ("device_status",)  # changes within a short window share a mail


def local_day_start(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def daily_period(now: datetime, tz: tzinfo, taken: set[str]) -> tuple[str, datetime | None]:
    """The local day a new daily digest belongs to: today, or (when today's digest is
    already made) the first free day after it, which may not start before that day begins.
    Returns the period and the earliest time it may be sent (None: as soon as gathered)."""
    day = now.astimezone(tz).date()
    not_before = None
    while day.isoformat() in taken:
        day += timedelta(days=1)
        not_before = local_day_start(day, tz)
    return day.isoformat(), not_before


def days_left(expires_at: datetime, now: datetime, tz: tzinfo) -> int:
    """Whole calendar days between today and the expiry day, in the company's zone."""
    return (expires_at.astimezone(tz).date() - now.astimezone(tz).date()).days
