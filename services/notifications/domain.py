"""Deliveries: one mail about one cause (an event), sent once."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

MAX_ATTEMPTS = 6


class Delivery(Aggregate):
    """A mail to send. Its id derives from (template, cause), so a redelivered or replayed
    event can never create a second mail."""

    def __init__(
        self,
        template: str,
        cause_id: str,
        company_id: str,
        language: str,
        recipients: list[str],
        subject: str,
        text: str,
        html: str,
    ) -> None:
        self.template = template
        self.cause_id = cause_id
        self.company_id = company_id
        self.language = language
        self.recipients = recipients
        self.subject = subject
        self.text = text
        self.html = html
        self.status = "pending"
        self.attempts = 0

    @staticmethod
    def create_id(template: str, cause_id: str) -> UUID:
        return stable_id("delivery", f"{template}:{cause_id}")

    @event("Sent")
    def sent(self, at: datetime) -> None:
        self.status = "sent"
        self.attempts += 1

    @event("AttemptFailed")
    def attempt_failed(self, at: datetime, error: str, permanent: bool) -> None:
        self.attempts += 1
        if permanent or self.attempts >= MAX_ATTEMPTS:
            self.status = "failed"
