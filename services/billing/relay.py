"""What billing publishes (contracts/events/billing.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.billing.application import BillingApplication
from services.billing.domain import Account, AccountConfig, OfflineApplication, Order
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
        "payer": filed.payer,
        "currency": filed.currency,
        "amount": filed.amount,
        "reference_number": filed.reference_number,
    }


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    def state() -> Any:
        return app.repository.get(e.originator_id, version=e.originator_version)

    if isinstance(e, (Account.Credited, Account.Debited)):
        account = state()
        kind = "account_credited" if isinstance(e, Account.Credited) else "account_debited"
        yield WireEvent(
            kind,
            account.company_id,
            {
                "company_id": account.company_id,
                "currency": e.currency,
                "amount": e.amount,
                "balance": account.balance(e.currency),
                "reason": e.reason,
                "reference": e.reference,
            },
        )
    elif isinstance(e, Order.Created):
        yield WireEvent(
            "order_created", str(e.originator_id), {**_order_fields(state()), "lines": e.lines}
        )
    elif isinstance(e, Order.Confirmed):
        yield WireEvent("order_confirmed", str(e.originator_id), _order_fields(state()))
    elif isinstance(e, Order.Paid):
        order = state()
        yield WireEvent(
            "order_paid",
            str(e.originator_id),
            {**_order_fields(order), "method": e.method, "paid_at": e.at, "lines": order.lines},
        )
    elif isinstance(e, OfflineApplication.Submitted):
        yield WireEvent(
            "offline_application_submitted", str(e.originator_id), _application_fields(state())
        )
    elif isinstance(e, OfflineApplication.Approved):
        yield WireEvent(
            "offline_application_approved",
            str(e.originator_id),
            {**_application_fields(state()), "reviewer": e.reviewer, "opinion": e.opinion},
        )
    elif isinstance(e, (AccountConfig.Created, AccountConfig.Changed)):
        config = state()
        yield WireEvent(
            "account_config_set",
            config.company_id,
            {"company_id": config.company_id, **config.settings},
        )
