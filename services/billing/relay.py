"""What billing publishes (payload schemas in contracts/events/billing.py).

Internal events that nobody outside needs (payment started, a line refunded: the refund is
published as its account_credited) stay inside.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.billing.application import BillingApplication
from services.billing.domain import (
    Account,
    AccountConfig,
    AutoRenewal,
    OfflineApplication,
    Order,
    Statement,
)
from services.common.relay import WireEvent


def open_store() -> tuple[BillingApplication, sa.Engine]:
    app = BillingApplication()
    return app, app.engine


def _order_fields(order: Order) -> dict:
    return {
        "order_id": str(order.id),
        "order_number": order.number,
        "company_id": order.company_id,
        "order_type": order.order_type,
        "currency": order.currency,
        "total": order.total,
    }


def _application_fields(filed: OfflineApplication) -> dict:
    return {
        "application_id": str(filed.id),
        "company_id": filed.company_id,
        "applicant": filed.applicant,
        "applicant_email": getattr(filed, "applicant_email", None),
        "applicant_language": getattr(filed, "applicant_language", None),
        "payer": filed.payer,
        "currency": filed.currency,
        "amount": filed.amount,
        "reference_number": filed.reference_number,
    }


_REVIEWS = {
    OfflineApplication.Approved: "offline_application_approved",
    OfflineApplication.Returned: "offline_application_returned",
    OfflineApplication.Rejected: "offline_application_rejected",
}


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    subject = str(e.originator_id)

    def state() -> Any:
        return app.repository.get(e.originator_id, version=e.originator_version)

    if isinstance(e, (Account.Credited, Account.Debited)):
        yield WireEvent(
            "account_credited" if isinstance(e, Account.Credited) else "account_debited",
            e.company_id,
            {
                "company_id": e.company_id,
                "currency": e.currency,
                "amount": e.amount,
                "balance": e.balance,
                "reason": e.reason,
                "reference": e.reference,
                "at": e.timestamp,
            },
        )
    elif isinstance(e, Order.Created):
        yield WireEvent(
            "order_created",
            subject,
            {**_order_fields(state()), "lines": e.lines, "created_by": e.created_by},
        )
    elif isinstance(e, Order.Confirmed):
        yield WireEvent("order_confirmed", subject, _order_fields(state()))
    elif isinstance(e, Order.Paid):
        order = state()
        yield WireEvent(
            "order_paid",
            subject,
            {
                **_order_fields(order),
                "method": e.method,
                "paid_at": e.at,
                "lines": order.lines,
                "payment_reference": e.reference,
            },
        )
    elif isinstance(e, Order.Cancelled):
        yield WireEvent("order_cancelled", subject, {**_order_fields(state()), "by": e.by})
    elif isinstance(e, Order.Lapsed):
        yield WireEvent("order_lapsed", subject, {**_order_fields(state()), "at": e.at})
    elif isinstance(e, OfflineApplication.Submitted):
        yield WireEvent("offline_application_submitted", subject, _application_fields(state()))
    elif type(e) in _REVIEWS:
        yield WireEvent(
            _REVIEWS[type(e)],
            subject,
            {**_application_fields(state()), "reviewer": e.reviewer, "opinion": e.opinion},
        )
    elif isinstance(e, (AccountConfig.Created, AccountConfig.Changed)):
        yield WireEvent(
            "account_config_set", e.company_id, {"company_id": e.company_id, **e.settings}
        )
    elif isinstance(e, AccountConfig.Deleted):
        yield WireEvent("account_config_deleted", e.company_id, {"company_id": e.company_id})
    elif isinstance(e, AutoRenewal.Created) and e.outcome == "failed":
        yield WireEvent(
            "auto_renewal_failed",
            e.device_id,
            {
                "company_id": e.company_id,
                "device_id": e.device_id,
                "package_id": e.package_id,
                "expires_at": e.expires_at,
                "currency": e.currency,
                "amount": e.amount,
                "balance": e.balance,
                "missing": max(e.amount - e.balance, 0),
                "reason": e.reason,
            },
        )
    elif isinstance(e, Statement.Created):
        yield WireEvent(
            "statement_issued",
            subject,
            {
                "statement_id": subject,
                "company_id": e.company_id,
                "cycle": e.cycle,
                "period_start": e.period_start,
                "period_end": e.period_end,
                "balances": e.balances,
            },
        )
