"""Billing's reactions to other services' events. Each takes effect exactly once: the
effect and its inbox record are saved in one atomic write (``handle_once``), keyed by what
makes the fact unique (the payment attempt, the envelope, the device's expiry).

A mixin of BillingApplication: the same store, the same rules.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.billing.domain import (
    AutoRenewal,
    LedgerRefused,
    Order,
    payment_methods,
    renewal_months,
)
from services.billing.queries import config_row, region_of
from services.common import clock
from services.common.domain import current_meta, event_meta
from services.common.scope import upsert_company

if TYPE_CHECKING:
    from services.billing.application import BillingApplication, CatalogPort

    _Base = BillingApplication
else:
    _Base = object


class Reactions(_Base):
    def record_company(self, sequence: int, data: dict) -> None:
        """devices.company_registered: the company tree that scope checks use."""
        with self.engine.begin() as conn:
            upsert_company(
                conn, data["company_id"], data["parent_id"], data["name"], data["region"], sequence
            )

    # -- payments ------------------------------------------------------------------------
    def on_payment_succeeded(self, data: dict) -> bool:
        """payments.payment_succeeded: pay the order (a recharge also credits the balance).

        If the order cannot take the money any more (already paid, cancelled, lapsed) or the
        amount does not match, the money is credited to the balance: none is silently kept.
        Keyed by the attempt id, so a second report of the same payment changes nothing.
        """
        attempt_id = data["attempt_id"]
        amount: Decimal = data["amount"]
        currency, method, paid_at = data["currency"], data["method"], data["paid_at"]

        def effect() -> list:
            order = self.find_as(Order, data["reference_id"])
            if order is not None and attempt_id in (
                order.payment_reference,
                *order.returned_payments,
            ):
                return []  # this payment already took effect
            account = self.load_account(order.company_id if order else data["company_id"])
            matches = (
                order is not None
                and order.status == "confirmed"
                and order.total == amount
                and order.currency == currency
            )
            if matches:
                order.pay(method, paid_at, reference=attempt_id)
                if order.order_type != "recharge":
                    return [order]
                account.credit(
                    currency=currency, amount=amount, reason="recharge", reference=str(order.id)
                )
                return [order, account]
            if order is None:
                why, reason = "no such order", "overpayment"
            elif order.status == "paid":
                why, reason = "the order was already paid", "overpayment"
            elif order.status in ("cancelled", "lapsed"):
                why, reason = f"the order was {order.status}", "refund"
            else:
                why, reason = f"{amount} {currency} does not match the order", "overpayment"
            account.credit(currency=currency, amount=amount, reason=reason, reference=attempt_id)
            if order is None:
                return [account]
            order.return_payment(attempt_id, method, amount, why, clock.now())
            return [order, account]

        return self.handle_once("billing.payment_succeeded", attempt_id, effect)

    def on_payment_failed(self, data: dict) -> bool:
        """payments.payment_failed: noted in the order's history; the next try gets a new
        attempt."""

        def effect() -> list:
            order = self.find_as(Order, data["reference_id"])
            if order is None or order.status != "confirmed":
                return []
            changed = order.payment_failed(
                data["attempt_id"], data["method"], data["reason"], clock.now()
            )
            return [order] if changed else []

        return self.handle_once("billing.payment_failed", data["attempt_id"], effect)

    # -- devices -------------------------------------------------------------------------
    def on_renewal_applied(self, message_id: str, data: dict) -> bool:
        """devices.renewal_applied: refund every refused line to the balance, once."""
        refused = {
            line["line_id"]: line.get("reason") or "could not be carried out"
            for line in data["lines"]
            if line["outcome"] == "refused"
        }
        if not refused:
            return False

        def effect() -> list:
            order = self.find_as(Order, data["order_id"])
            if order is None or order.status != "paid":
                return []
            account = self.load_account(order.company_id)
            for line_id, reason in refused.items():
                if line_id in order.refunded:
                    continue
                try:
                    amount = order.refund_line(line_id, reason, clock.now())
                except LedgerRefused:
                    continue  # not a line of this order: nothing to give back
                account.credit(
                    currency=order.currency,
                    amount=amount,
                    reason="refund",
                    reference=f"{order.id}:{line_id}",
                )
            return [order, account] if order.pending_events else []

        return self.handle_once("billing.renewal_applied", message_id, effect)

    def on_device_expired(self, data: dict, catalog: CatalogPort) -> bool:
        """devices.device_expired: with auto-renewal on, renew from the balance for the
        package's default period; if the balance does not cover it, record the failure
        (published as auto_renewal_failed). Exactly once per device and expiry."""
        company_id, device_id = data["company_id"], data["device_id"]
        package_id, expires_at = data.get("package_id"), data["expires_at"]
        with self.engine.connect() as conn:
            config = config_row(conn, company_id)
            region = region_of(conn, company_id)
        if config is None or not config["auto_renewal"] or not package_id:
            return False
        renewal_id = AutoRenewal.create_id(device_id, expires_at)
        if self.find(renewal_id) is not None:
            return False
        quote = catalog.quote(package_id, 1)
        months = renewal_months(quote["pricing"])
        if months != 1:
            quote = catalog.quote(package_id, months)
        amount, currency = Decimal(str(quote["amount"])), quote["currency"]
        number = f"A-{str(renewal_id).replace('-', '')[:20].upper()}"

        def effect() -> list[Any]:
            if self.find(renewal_id) is not None:
                return []  # another message about the same expiry got here first
            now = clock.now()
            account = self.load_account(company_id)
            balance = account.balance(currency)
            outcome = {
                "device_id": device_id,
                "company_id": company_id,
                "expires_at": expires_at,
                "package_id": package_id,
                "currency": currency,
                "amount": amount,
                "balance": balance,
            }
            if "balance" not in payment_methods(region, currency):
                return [
                    AutoRenewal(
                        **outcome,
                        outcome="failed",
                        reason=f"the balance cannot pay {currency} in this region",
                    )
                ]
            if not account.covers(currency, amount):
                return [
                    AutoRenewal(**outcome, outcome="failed", reason="the balance does not cover it")
                ]
            order = Order(
                number=number,
                company_id=company_id,
                order_type="renewal",
                currency=currency,
                lines=[
                    {
                        "line_id": f"{number}-1",
                        "device_id": device_id,
                        "package_id": package_id,
                        "package_name": quote["name"],
                        "months": months,
                        "unit_price": Decimal(str(quote["unit_price"])),
                        "amount": amount,
                    }
                ],
                total=amount,
                created_by="auto-renewal",
                created_at=now,
            )
            order.confirm(now)
            order.pay("balance", now, reference=str(renewal_id))
            account.debit(currency=currency, amount=amount, reason="order", reference=str(order.id))
            return [
                order,
                account,
                AutoRenewal(**outcome, outcome="renewed", order_id=str(order.id)),
            ]

        with event_meta(**{**current_meta(), "actor": "auto-renewal"}):
            return self.handle_once(
                "billing.device_expired", f"{device_id}@{expires_at.isoformat()}", effect
            )
