"""The ledger, in the words of the product: accounts with a balance per currency, orders
(renewal, value-added, recharge), offline recharge applications, billing account configs,
auto-renewals and statements (C1-C4, F1, F2, S1, S2).

Every figure a user sees is a projection of these aggregates' events. Events carry the
figures after the change (an account's balance, an order's refunded total), so views and
the wire never have to reconstruct state.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common import clock
from services.common.domain import Aggregate, stable_id

REGIONS = ("china", "other")
CYCLES = ("monthly", "quarterly")
LANGUAGES = ("zh", "en")
ORDER_TYPES = ("renewal", "value_added", "recharge")
# why money moved; every entry also names what it refers to (order, recharge, ...)
CREDIT_REASONS = ("recharge", "offline_application", "refund", "overpayment")
DEBIT_REASONS = ("order",)
ZERO = Decimal("0.00")


class LedgerRefused(Exception):
    """A rule of the ledger refuses the change (the message says which)."""


class InsufficientBalance(LedgerRefused):
    pass


class LedgerAggregate(Aggregate):
    """Billing aggregates stamp their events with the service clock, so statements and
    "balance as of" agree with the time every service sees (tests and the demo shift it)."""

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return clock.now()

    class Created(Event, Aggregate.Created):
        pass


# -- accounts -------------------------------------------------------------------------------
class Account(LedgerAggregate):
    """One per company. Balances change only by credits and debits, each with a reason and a
    reference; a balance never goes negative."""

    def __init__(self, company_id: str) -> None:
        self.company_id = company_id
        self.balances: dict[str, Decimal] = {}

    @staticmethod
    def create_id(company_id: str) -> UUID:
        return account_id(company_id)

    def balance(self, currency: str) -> Decimal:
        return self.balances.get(currency, ZERO)

    def credit(self, currency: str, amount: Decimal, reason: str, reference: str) -> None:
        if amount <= 0:
            raise LedgerRefused("a credit must be positive")
        if reason not in CREDIT_REASONS:
            raise LedgerRefused(f"unknown credit reason {reason!r}")
        self._credited(
            company_id=self.company_id,
            currency=currency,
            amount=amount,
            reason=reason,
            reference=reference,
            balance=self.balance(currency) + amount,
        )

    @event("Credited")
    def _credited(
        self,
        company_id: str,
        currency: str,
        amount: Decimal,
        reason: str,
        reference: str,
        balance: Decimal,
    ) -> None:
        self.balances[currency] = balance

    def covers(self, currency: str, amount: Decimal) -> bool:
        return self.balance(currency) >= amount

    def debit(self, currency: str, amount: Decimal, reason: str, reference: str) -> None:
        if amount <= 0:
            raise LedgerRefused("a debit must be positive")
        if reason not in DEBIT_REASONS:
            raise LedgerRefused(f"unknown debit reason {reason!r}")
        if not self.covers(currency, amount):
            raise InsufficientBalance(
                f"the {currency} balance {self.balance(currency)} does not cover {amount}"
            )
        self._debited(
            company_id=self.company_id,
            currency=currency,
            amount=amount,
            reason=reason,
            reference=reference,
            balance=self.balance(currency) - amount,
        )

    @event("Debited")
    def _debited(
        self,
        company_id: str,
        currency: str,
        amount: Decimal,
        reason: str,
        reference: str,
        balance: Decimal,
    ) -> None:
        self.balances[currency] = balance


def account_id(company_id: str) -> UUID:
    return stable_id("account", company_id)


# -- orders ---------------------------------------------------------------------------------
class Order(LedgerAggregate):
    """A renewal, value-added or recharge order: created -> confirmed -> paid, or cancelled,
    or lapsed (unpaid at ``lapse_at``). Prices are copied in at creation, so catalog changes
    never alter an order. A recharge has no lines."""

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
        lapse_at: datetime | None = None,
    ) -> None:
        self.number = number
        self.company_id = company_id
        self.order_type = order_type
        self.currency = currency
        self.lines = lines
        self.total = total
        self.created_by = created_by
        self.created_at = created_at
        self.lapse_at = lapse_at
        self.status = "created"
        self.method: str | None = None
        self.paid_at: datetime | None = None
        self.payment_reference: str | None = None
        self.attempts: dict[str, dict] = {}  # attempt id -> method, status
        self.refunded: dict[str, Decimal] = {}  # line id -> amount credited back
        self.returned_payments: list[str] = []  # attempt ids credited to the balance

    @staticmethod
    def create_id(number: str) -> UUID:
        return stable_id("order", number)

    @property
    def is_open(self) -> bool:
        return self.status in ("created", "confirmed")

    @property
    def refunded_total(self) -> Decimal:
        return sum(self.refunded.values(), ZERO)

    def _require(self, *states: str) -> None:
        if self.status not in states:
            raise LedgerRefused(f"the order is {self.status}, not {' or '.join(states)}")

    def confirm(self, at: datetime) -> None:
        self._require("created")
        self._confirmed(at=at)

    @event("Confirmed")
    def _confirmed(self, at: datetime) -> None:
        self.status = "confirmed"

    def failed_attempts(self, method: str) -> int:
        return sum(
            1 for a in self.attempts.values() if a["method"] == method and a["status"] == "failed"
        )

    def start_payment(self, method: str, attempt_id: str, at: datetime) -> None:
        """An external payment began (the payments service holds the attempt)."""
        self._require("confirmed")
        if attempt_id in self.attempts:
            return  # the payments service answered with the attempt it already had
        self._payment_started(method=method, attempt_id=attempt_id, at=at)

    @event("PaymentStarted")
    def _payment_started(self, method: str, attempt_id: str, at: datetime) -> None:
        self.attempts[attempt_id] = {"method": method, "status": "pending"}

    def payment_failed(self, attempt_id: str, method: str, reason: str, at: datetime) -> bool:
        known = self.attempts.get(attempt_id)
        if known is not None and known["status"] == "failed":
            return False
        self._payment_failed(attempt_id=attempt_id, method=method, reason=reason, at=at)
        return True

    @event("PaymentFailed")
    def _payment_failed(self, attempt_id: str, method: str, reason: str, at: datetime) -> None:
        self.attempts[attempt_id] = {"method": method, "status": "failed"}

    def pay(self, method: str, at: datetime, reference: str | None = None) -> None:
        """Only a confirmed order can be paid."""
        self._require("confirmed")
        self._paid(method=method, at=at, reference=reference)

    @event("Paid")
    def _paid(self, method: str, at: datetime, reference: str | None) -> None:
        self.status = "paid"
        self.method = method
        self.paid_at = at
        self.payment_reference = reference
        if reference in self.attempts:
            self.attempts[reference] = {**self.attempts[reference], "status": "succeeded"}

    def return_payment(
        self, attempt_id: str, method: str, amount: Decimal, reason: str, at: datetime
    ) -> None:
        """A provider's payment that cannot pay this order (already paid, cancelled, lapsed,
        or the wrong amount) goes to the balance: no money is silently kept."""
        if attempt_id in self.returned_payments:
            raise LedgerRefused(f"payment {attempt_id} was already credited to the balance")
        self._payment_returned(
            attempt_id=attempt_id, method=method, amount=amount, reason=reason, at=at
        )

    @event("PaymentReturned")
    def _payment_returned(
        self, attempt_id: str, method: str, amount: Decimal, reason: str, at: datetime
    ) -> None:
        self.returned_payments.append(attempt_id)

    def cancel(self, at: datetime, by: str) -> None:
        self._require("created", "confirmed")
        self._cancelled(at=at, by=by)

    @event("Cancelled")
    def _cancelled(self, at: datetime, by: str) -> None:
        self.status = "cancelled"

    def is_due_to_lapse(self, now: datetime) -> bool:
        return self.is_open and self.lapse_at is not None and self.lapse_at <= now

    def lapse(self, at: datetime) -> None:
        self._require("created", "confirmed")
        if not self.is_due_to_lapse(at):
            raise LedgerRefused("the order is not due to lapse yet")
        self._lapsed(at=at)

    @event("Lapsed")
    def _lapsed(self, at: datetime) -> None:
        self.status = "lapsed"

    def line(self, line_id: str) -> dict:
        for line in self.lines:
            if line["line_id"] == line_id:
                return line
        raise LedgerRefused(f"the order has no line {line_id}")

    def refund_line(self, line_id: str, reason: str, at: datetime) -> Decimal:
        """A paid line that cannot be fulfilled is refunded to the balance, once."""
        self._require("paid")
        line = self.line(line_id)
        if line_id in self.refunded:
            raise LedgerRefused(f"line {line_id} was already refunded")
        amount = line["amount"]
        self._line_refunded(
            line_id=line_id,
            amount=amount,
            reason=reason,
            refunded_total=self.refunded_total + amount,
            at=at,
        )
        return amount

    @event("LineRefunded")
    def _line_refunded(
        self, line_id: str, amount: Decimal, reason: str, refunded_total: Decimal, at: datetime
    ) -> None:
        self.refunded[line_id] = amount


def renewal_months(pricing: str) -> int:
    """The default period of an auto-renewal: a year for yearly packages, else one unit."""
    return 12 if pricing == "per_year" else 1


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


# -- offline recharge applications (S1/F1) ----------------------------------------------------
class OfflineApplication(LedgerAggregate):
    """Sales files a bank-transfer recharge; finance approves, returns or rejects it.

    draft -> submitted -> approved | rejected | returned (-> edited, submitted again).
    Editable by the applicant until reviewed; deletable while a draft.
    """

    EDITABLE = ("company_id", "payer", "currency", "amount", "reference_number", "remark")

    def __init__(
        self,
        company_id: str,
        payer: str,
        currency: str,
        amount: Decimal,
        reference_number: str,
        applicant: str,
        remark: str,
        applicant_email: str | None = None,
        applicant_language: str | None = None,
    ) -> None:
        self.company_id = company_id
        self.payer = payer
        # where the review's outcome is mailed (notifications), as known when filed
        self.applicant_email = applicant_email
        self.applicant_language = applicant_language
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

    def _require_applicant(self, by: str, what: str) -> None:
        if by != self.applicant:
            raise LedgerRefused(f"only the applicant may {what} the application")

    def edit(self, by: str, changes: dict) -> None:
        self._require("draft", "submitted", "returned")
        self._require_applicant(by, "edit")
        unknown = set(changes) - set(self.EDITABLE)
        if unknown:
            raise LedgerRefused(f"{', '.join(sorted(unknown))} cannot be edited")
        changes = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if changes:
            self._edited(by=by, changes=changes)

    @event("Edited")
    def _edited(self, by: str, changes: dict) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    def delete(self, by: str) -> None:
        self._require("draft")
        self._require_applicant(by, "delete")
        self._deleted(by=by)

    @event("Deleted")
    def _deleted(self, by: str) -> None:
        self.status = "deleted"

    def submit(self, by: str) -> None:
        self._require("draft", "returned")
        self._require_applicant(by, "submit")
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


# -- billing account configs (C4/S2) ----------------------------------------------------------
CONFIG_FIELDS = (
    "region",
    "default_currency",
    "billing_cycle",
    "auto_renewal",
    "push_enabled",
    "language",
    "push_emails",
)
# what a customer may change on their own account (C4); region and currency are sales' (S2)
CUSTOMER_FIELDS = ("billing_cycle", "auto_renewal", "push_enabled", "language", "push_emails")


class AccountConfig(LedgerAggregate):
    """The billing set-up of one company. Deleting it and setting it again reuses the id."""

    def __init__(self, company_id: str, settings: dict) -> None:
        self.company_id = company_id
        self.settings = settings
        self.deleted = False

    @staticmethod
    def create_id(company_id: str) -> UUID:
        return stable_id("account-config", company_id)

    def set(self, settings: dict) -> bool:
        if not self.deleted and settings == self.settings:
            return False  # nothing changed: no event, nothing to push
        self._changed(company_id=self.company_id, settings=settings)
        return True

    @event("Changed")
    def _changed(self, company_id: str, settings: dict) -> None:
        self.settings = settings
        self.deleted = False

    def delete(self) -> None:
        if self.deleted:
            raise LedgerRefused("the account config is already deleted")
        self._deleted(company_id=self.company_id)

    @event("Deleted")
    def _deleted(self, company_id: str) -> None:
        self.deleted = True


# -- auto-renewal ---------------------------------------------------------------------------
class AutoRenewal(LedgerAggregate):
    """What happened when a device with auto-renewal on reached one expiry: renewed from the
    balance (by ``order_id``) or failed (the balance did not cover it). One per expiry."""

    def __init__(
        self,
        device_id: str,
        company_id: str,
        expires_at: datetime,
        package_id: str,
        outcome: str,
        currency: str,
        amount: Decimal,
        balance: Decimal,
        order_id: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.device_id = device_id
        self.company_id = company_id
        self.expires_at = expires_at
        self.package_id = package_id
        self.outcome = outcome
        self.currency = currency
        self.amount = amount
        self.balance = balance
        self.order_id = order_id
        self.reason = reason

    @property
    def missing(self) -> Decimal:
        return max(self.amount - self.balance, ZERO)

    @staticmethod
    def create_id(device_id: str, expires_at: datetime) -> UUID:
        return stable_id("auto-renewal", f"{device_id}@{expires_at.astimezone(UTC).isoformat()}")


# -- statements -----------------------------------------------------------------------------
def cycle_start(cycle: str, moment: datetime) -> datetime:
    """The start of the billing cycle (calendar month or quarter, UTC) containing moment."""
    moment = moment.astimezone(UTC)
    month = moment.month if cycle == "monthly" else 3 * ((moment.month - 1) // 3) + 1
    return datetime(moment.year, month, 1, tzinfo=UTC)


def _shift_months(start: datetime, months: int) -> datetime:
    index = start.year * 12 + start.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def last_closed_cycle(cycle: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the most recent billing cycle that ended at or before now."""
    end = cycle_start(cycle, now)
    return _shift_months(end, -1 if cycle == "monthly" else -3), end


class Statement(LedgerAggregate):
    """An account's statement for one billing cycle: per currency the opening balance, the
    credits and debits, and the closing balance. One per account and cycle."""

    def __init__(
        self,
        company_id: str,
        cycle: str,
        period_start: datetime,
        period_end: datetime,
        balances: list[dict],
    ) -> None:
        for part in balances:
            expected = part["opening_balance"] + part["total_credits"] - part["total_debits"]
            if expected != part["closing_balance"]:
                raise LedgerRefused(
                    f"{part['currency']} statement does not add up: {expected} != "
                    f"{part['closing_balance']}"
                )
        self.company_id = company_id
        self.cycle = cycle
        self.period_start = period_start
        self.period_end = period_end
        self.balances = balances

    @staticmethod
    def create_id(company_id: str, period_start: datetime) -> UUID:
        return stable_id("statement", f"{company_id}@{period_start.astimezone(UTC).isoformat()}")
