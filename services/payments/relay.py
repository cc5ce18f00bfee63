"""What the payments service publishes: attempt events mapped to wire events
(contracts/events/payments.py). One ``Succeeded`` event is one ``payment_succeeded``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.common.relay import WireEvent
from services.payments.application import PaymentsApplication
from services.payments.domain import PaymentAttempt


def open_store() -> tuple[PaymentsApplication, sa.Engine]:
    app = PaymentsApplication()
    return app, app.engine


def _attempt_fields(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "attempt_id": str(attempt.id),
        "purpose": attempt.purpose,
        "reference_id": attempt.reference_id,
        "company_id": attempt.company_id,
        "method": attempt.method,
        "amount": attempt.amount,
        "currency": attempt.currency,
        "out_trade_no": attempt.out_trade_no,
    }


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    kinds = (
        PaymentAttempt.Succeeded,
        PaymentAttempt.Failed,
        PaymentAttempt.Closed,
        PaymentAttempt.Mismatched,
    )
    if not isinstance(e, kinds):
        return
    # what the attempt is for never changes after it starts: the current state has it
    attempt = app.repository.get(e.originator_id)
    subject = str(e.originator_id)
    fields = _attempt_fields(attempt)
    if isinstance(e, PaymentAttempt.Succeeded):
        yield WireEvent(
            "payment_succeeded",
            subject,
            {
                **fields,
                "provider_trade_no": e.provider_trade_no,
                "paid_at": e.paid_at,
                "late": e.late,
                "source": e.source,
            },
        )
    elif isinstance(e, PaymentAttempt.Failed):
        yield WireEvent(
            "payment_failed", subject, {**fields, "reason": e.reason, "status": "failed"}
        )
    elif isinstance(e, PaymentAttempt.Closed):
        yield WireEvent(
            "payment_failed", subject, {**fields, "reason": e.reason, "status": "closed"}
        )
    else:
        yield WireEvent(
            "payment_mismatch",
            subject,
            {
                **fields,
                "reason": e.reason,
                "reported_amount": None if e.reported_amount is None else str(e.reported_amount),
                "reported_currency": e.reported_currency,
            },
        )
