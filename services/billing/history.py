"""The history of an order or an offline application, told from its own events.

The events are the audit trail (who did what, when, with which opinion): reading them back
is cheaper than keeping a copy in a view, and it cannot drift from what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from services.billing.domain import AccountConfig, OfflineApplication, Order

Describe = Callable[[Any], tuple[str, str]]


def _created(e: Any) -> tuple[str, str]:
    lines = f", {len(e.lines)} line(s)" if e.lines else ""
    return "created", f"{e.order_type} order {e.number}: {e.total} {e.currency}{lines}"


def _reviewed(action: str) -> Describe:
    return lambda e: (action, e.opinion)


STORIES: dict[type, Describe] = {
    Order.Created: _created,
    Order.Confirmed: lambda e: ("confirmed", ""),
    Order.PaymentStarted: lambda e: ("payment_started", f"{e.method}, attempt {e.attempt_id}"),
    Order.PaymentFailed: lambda e: (
        "payment_failed",
        f"{e.method}, attempt {e.attempt_id}: {e.reason}",
    ),
    Order.Paid: lambda e: ("paid", f"by {e.method}"),
    Order.PaymentReturned: lambda e: (
        "payment_credited",
        f"{e.method} payment {e.attempt_id} of {e.amount} credited to the balance: {e.reason}",
    ),
    Order.Cancelled: lambda e: ("cancelled", ""),
    Order.Lapsed: lambda e: ("lapsed", "unpaid at its lapse time"),
    Order.LineRefunded: lambda e: (
        "line_refunded",
        f"line {e.line_id}: {e.amount} to the balance ({e.reason})",
    ),
    OfflineApplication.Created: lambda e: (
        "drafted",
        f"{e.amount} {e.currency}, reference {e.reference_number}",
    ),
    OfflineApplication.Edited: lambda e: (
        "edited",
        ", ".join(f"{k}: {v}" for k, v in sorted(e.changes.items())),
    ),
    OfflineApplication.Deleted: lambda e: ("deleted", ""),
    OfflineApplication.Submitted: lambda e: ("submitted", ""),
    OfflineApplication.Approved: _reviewed("approved"),
    OfflineApplication.Returned: _reviewed("returned"),
    OfflineApplication.Rejected: _reviewed("rejected"),
    AccountConfig.Created: lambda e: ("config_set", ""),
    AccountConfig.Changed: lambda e: ("config_set", ""),
    AccountConfig.Deleted: lambda e: ("config_deleted", ""),
}


def history(events: Iterable[Any]) -> list[dict]:
    result = []
    for e in events:
        describe = STORIES.get(type(e))
        if describe is None:
            continue
        action, detail = describe(e)
        result.append(
            {
                "action": action,
                "actor": (getattr(e, "meta", None) or {}).get("actor"),
                "detail": detail[:500],
                "at": e.timestamp,
            }
        )
    return result
