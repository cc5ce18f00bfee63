"""The ledger: accounts with a balance per currency, orders, offline recharge applications
and billing account configs (C1-C4, F1, S1, S2)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

REGIONS = ("china", "other")
CYCLES = ("monthly", "quarterly")
LANGUAGES = ("zh", "en")


class LedgerRefused(Exception):
    """A rule of the ledger refuses the change (the message says which)."""


class InsufficientBalance(LedgerRefused):
    pass


class Account(Aggregate):
    """One per company. Balances change only by credits and debits, each with a reason
    (order, recharge, offline_application, refund) and a reference."""

    def __init__(self, company_id: str) -> None:
        self.company_id = company_id
        self.balances: dict[str, Decimal] = {}
        self.references: list[str] = []

    @staticmethod
    def create_id(company_id: str) -> UUID:
        return account_id(company_id)

    def balance(self, currency: str) -> Decimal:
        return self.balances.get(currency, Decimal("0.00"))

    @event("Credited")
    def credit(self, currency: str, amount: Decimal, reason: str, reference: str) -> None:
        if amount <= 0:
            raise LedgerRefused("a credit must be positive")
        self.balances[currency] = self.balance(currency) + amount
        self.references.append(f"credit:{reference}")

    def debit(self, currency: str, amount: Decimal, reason: str, reference: str) -> None:
        if amount <= 0:
            raise LedgerRefused("a debit must be positive")
        if self.balance(currency) < amount:
            raise InsufficientBalance(
                f"the {currency} balance {self.balance(currency)} does not cover {amount}"
            )
        self._debited(currency=currency, amount=amount, reason=reason, reference=reference)

    @event("Debited")
    def _debited(self, currency: str, amount: Decimal, reason: str, reference: str) -> None:
        self.balances[currency] = self.balance(currency) - amount
        self.references.append(f"debit:{reference}")

    def has(self, kind: str, reference: str) -> bool:
        return f"{kind}:{reference}" in self.references


def account_id(company_id: str) -> UUID:
    return stable_id("account", company_id)


class Order(Aggregate):
    """A renewal, value-added or recharge order. created -> confirmed -> paid, or
    cancelled, or lapsed. Prices are copied in at creation: catalog changes never alter it."""

    def __init__(
        self,
        number: str,
        company_id: str,
        order_type: str,
        currency: str,
        lines: list[dict],
        total: Decimal,
        created_by: str,
        created_at: datetime,
    ) -> None:
        self.number = number
        self.company_id = company_id
        self.order_type = order_type
        self.currency = currency
        self.lines = lines
        self.total = total
        self.created_by = created_by
        self.created_at = created_at
        self.status = "created"
        self.method: str | None = None
        self.paid_at: datetime | None = None

    @staticmethod
    def create_id(number: str) -> UUID:
        return stable_id("order", number)

    def _require(self, *states: str) -> None:
        if self.status not in states:
            raise LedgerRefused(f"the order is {self.status}, not {' or '.join(states)}")

    def confirm(self, at: datetime) -> None:
        self._require("created")
        self._confirmed(at=at)

    @event("Confirmed")
    def _confirmed(self, at: datetime) -> None:
        self.status = "confirmed"

    def pay(self, method: str, at: datetime, reference: str | None = None) -> None:
        self._require("confirmed")
        self._paid(method=method, at=at, reference=reference)

    @event("Paid")
    def _paid(self, method: str, at: datetime, reference: str | None) -> None:
        self.status = "paid"
        self.method = method
        self.paid_at = at

    def cancel(self, at: datetime, by: str) -> None:
        self._require("created", "confirmed")
        self._cancelled(at=at, by=by)

    @event("Cancelled")
    def _cancelled(self, at: datetime, by: str) -> None:
        self.status = "cancelled"


class OfflineApplication(Aggregate):
    """S1/F1: sales files a bank-transfer recharge; finance approves, returns or rejects.

    draft -> submitted -> approved | returned (-> edited, submitted again) | rejected.
    """

    def __init__(
        self,
        company_id: str,
        payer: str,
        currency: str,
        amount: Decimal,
        reference_number: str,
        applicant: str,
        remark: str,
    ) -> None:
        self.company_id = company_id
        self.payer = payer
        self.currency = currency
        self.amount = amount
        self.reference_number = reference_number
        self.applicant = applicant
        self.remark = remark
        self.status = "draft"
        self.reviewer: str | None = None
        self.opinion: str | None = None

    def _require(self, *states: str) -> None:
        if self.status not in states:
            raise LedgerRefused(f"the application is {self.status}, not {' or '.join(states)}")

    def submit(self, by: str) -> None:
        self._require("draft", "returned")
        if by != self.applicant:
            raise LedgerRefused("only the applicant may submit the application")
        self._submitted(by=by)

    @event("Submitted")
    def _submitted(self, by: str) -> None:
        self.status = "submitted"

    def _review(self, reviewer: str, opinion: str) -> None:
        self._require("submitted")
        if reviewer == self.applicant:
            raise LedgerRefused("nobody may review their own application")
        if not opinion.strip():
            raise LedgerRefused("a review needs an opinion")

    def approve(self, reviewer: str, opinion: str, at: datetime) -> None:
        self._review(reviewer, opinion)
        self._approved(reviewer=reviewer, opinion=opinion, at=at)

    @event("Approved")
    def _approved(self, reviewer: str, opinion: str, at: datetime) -> None:
        self.status = "approved"
        self.reviewer = reviewer
        self.opinion = opinion

    def return_to_applicant(self, reviewer: str, opinion: str, at: datetime) -> None:
        self._review(reviewer, opinion)
        self._returned(reviewer=reviewer, opinion=opinion, at=at)

    @event("Returned")
    def _returned(self, reviewer: str, opinion: str, at: datetime) -> None:
        self.status = "returned"
        self.reviewer = reviewer
        self.opinion = opinion

    def reject(self, reviewer: str, opinion: str, at: datetime) -> None:
        self._review(reviewer, opinion)
        self._rejected(reviewer=reviewer, opinion=opinion, at=at)

    @event("Rejected")
    def _rejected(self, reviewer: str, opinion: str, at: datetime) -> None:
        self.status = "rejected"
        self.reviewer = reviewer
        self.opinion = opinion


class AccountConfig(Aggregate):
    """C4/S2: the billing set-up of a company (one per company)."""

    def __init__(self, company_id: str, settings: dict) -> None:
        self.company_id = company_id
        self.settings = settings
        self.deleted = False

    @staticmethod
    def create_id(company_id: str) -> UUID:
        return stable_id("account-config", company_id)

    @event("Changed")
    def change(self, settings: dict) -> None:
        self.settings = settings
        self.deleted = False


def payment_methods(region: str, currency: str, purpose: str = "order") -> list[str]:
    """The methods a company may use: China pays CNY by balance, WeChat Pay or Alipay;
    other regions pay CNY by balance and USD by PayPal. A recharge cannot use the balance."""
    if region == "china":
        methods = ["balance", "wechat_pay", "alipay"] if currency == "CNY" else []
    else:
        methods = ["balance"] if currency == "CNY" else (["paypal"] if currency == "USD" else [])
    if purpose == "recharge":
        methods = [m for m in methods if m != "balance"]
    return methods
