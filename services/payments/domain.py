"""Payment attempts: money in flight with an external provider (WeChat Pay, Alipay, PayPal).

Billing asks to collect an amount for an order or a recharge; we open a *payment attempt*
with one provider under a trade number of ours (``out_trade_no``), hand back what the payer
needs (a QR code or an approve link), and settle the attempt from what the provider
reports: a verified callback, a query, or reconciliation.

- An attempt succeeds at most once. Its id derives from its trade number, so however many
  callbacks, queries or client retries report the same payment, every report lands on the
  same aggregate, and only the first records ``Succeeded`` (the store's optimistic
  concurrency settles races). One ``Succeeded`` event is one ``payment_succeeded``.
- A success is never refused: a payment the provider took after the attempt was closed or
  failed still succeeds (``late``), so billing credits it to the balance; money is never
  silently kept.
- A report whose amount, currency or merchant differs from the attempt is a *mismatch*: it
  is recorded and published for people to look at, and credits nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

METHOD_CURRENCY = {"wechat_pay": "CNY", "alipay": "CNY", "paypal": "USD"}
SCENES = {"wechat_pay": ("qr",), "alipay": ("qr", "page"), "paypal": ("page",)}
OPEN = ("pending", "mismatch")  # the states a provider's report can still settle


class PaymentRefused(Exception):
    """A rule of payments refuses the request; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check_method(method: str, currency: str, scene: str) -> None:
    """WeChat Pay and Alipay take CNY only, PayPal USD only."""
    wanted = METHOD_CURRENCY.get(method)
    if wanted is None:
        raise PaymentRefused(f"unknown payment method {method!r}", "method")
    if currency != wanted:
        raise PaymentRefused(f"{method} takes {wanted} only, not {currency}", "currency")
    if scene not in SCENES[method]:
        raise PaymentRefused(
            f"{method} supports {' or '.join(SCENES[method])}, not {scene!r}", "scene"
        )


def trade_number(company_id: str, idempotency_key: str | None) -> str:
    """Our trade number: 32 characters of [0-9A-Z], as every provider accepts.

    With an idempotency key it derives from (company, key), so a client's retry finds the
    attempt it started; without one it is random.
    """
    if idempotency_key is None:
        return "P" + uuid.uuid4().hex[:31].upper()
    digest = hashlib.sha256(f"{company_id}\n{idempotency_key}".encode()).hexdigest()
    return "P" + digest[:31].upper()


def request_fingerprint(request: dict) -> str:
    """What makes two start requests "the same body" for an idempotency key."""
    keys = ("purpose", "reference_id", "company_id", "method", "amount", "currency")
    keys += ("description", "scene")
    canonical = {k: str(request.get(k, "")) for k in keys}
    return hashlib.sha256(json.dumps(canonical, sort_keys=True).encode()).hexdigest()


class PaymentAttempt(Aggregate):
    def __init__(
        self,
        out_trade_no: str,
        purpose: str,
        reference_id: str,
        company_id: str,
        method: str,
        amount: Decimal,
        currency: str,
        description: str,
        scene: str,
        fingerprint: str,
        idempotency_key: str | None,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.out_trade_no = out_trade_no
        self.purpose = purpose
        self.reference_id = reference_id
        self.company_id = company_id
        self.method = method
        self.amount = amount
        self.currency = currency
        self.description = description
        self.scene = scene
        self.fingerprint = fingerprint
        self.idempotency_key = idempotency_key
        self.created_at = created_at
        self.expires_at = expires_at
        self.status = "pending"
        self.code_url: str | None = None
        self.approve_url: str | None = None
        self.provider_ref: str | None = None
        self.provider_trade_no: str | None = None
        self.paid_at: datetime | None = None
        self.reason: str | None = None
        self.mismatches: list[str] = []

    @staticmethod
    def create_id(out_trade_no: str) -> UUID:
        return attempt_id(out_trade_no)

    @property
    def linked(self) -> bool:
        """The provider has the trade and we hold what the payer needs."""
        return bool(self.code_url or self.approve_url)

    # -- what the provider reports --------------------------------------------------------
    def differences(self, amount: Decimal | None, currency: str | None) -> list[str]:
        """How a reported payment differs from this attempt (empty when it matches)."""
        found = []
        if amount is None or Decimal(amount) != self.amount:
            found.append(f"amount {amount} differs from {self.amount}")
        if currency != self.currency:
            found.append(f"currency {currency} differs from {self.currency}")
        return found

    def link(self, code_url: str | None, approve_url: str | None, provider_ref: str | None) -> bool:
        if self.linked:
            return False
        self._linked(code_url=code_url, approve_url=approve_url, provider_ref=provider_ref)
        return True

    @event("Linked")
    def _linked(
        self, code_url: str | None, approve_url: str | None, provider_ref: str | None
    ) -> None:
        self.code_url = code_url
        self.approve_url = approve_url
        self.provider_ref = provider_ref

    def succeed(self, provider_trade_no: str, paid_at: datetime, source: str) -> bool:
        """Record the payment; False if it was already recorded (nothing happens)."""
        if self.status == "succeeded":
            return False
        self._succeeded(
            provider_trade_no=provider_trade_no,
            paid_at=paid_at,
            source=source,
            late=self.status in ("failed", "closed"),
        )
        return True

    @event("Succeeded")
    def _succeeded(
        self, provider_trade_no: str, paid_at: datetime, source: str, late: bool
    ) -> None:
        self.status = "succeeded"
        self.provider_trade_no = provider_trade_no
        self.paid_at = paid_at
        self.reason = None

    def fail(self, reason: str, at: datetime) -> bool:
        if self.status not in OPEN:
            return False
        self._failed(reason=reason, at=at)
        return True

    @event("Failed")
    def _failed(self, reason: str, at: datetime) -> None:
        self.status = "failed"
        self.reason = reason

    def close(self, reason: str, at: datetime) -> bool:
        if self.status not in OPEN:
            return False
        self._closed(reason=reason, at=at)
        return True

    @event("Closed")
    def _closed(self, reason: str, at: datetime) -> None:
        self.status = "closed"
        self.reason = reason

    def report_mismatch(
        self, reason: str, reported_amount: Decimal | None, reported_currency: str | None
    ) -> bool:
        """Record a report that does not match (once per distinct report); after a success
        a contradicting report changes nothing."""
        key = f"{reason}|{reported_amount}|{reported_currency}"
        if self.status == "succeeded" or key in self.mismatches:
            return False
        self._mismatched(
            reason=reason, reported_amount=reported_amount, reported_currency=reported_currency
        )
        return True

    @event("Mismatched")
    def _mismatched(
        self, reason: str, reported_amount: Decimal | None, reported_currency: str | None
    ) -> None:
        self.mismatches.append(f"{reason}|{reported_amount}|{reported_currency}")
        if self.status == "pending":
            self.status = "mismatch"
        self.reason = reason


class ProviderReference(Aggregate):
    """Server-side mapping from a provider's own id (a PayPal order id) to our attempt, so
    a callback is matched by what we recorded, never by a field a client could set."""

    def __init__(self, method: str, provider_ref: str, attempt_id: str) -> None:
        self.method = method
        self.provider_ref = provider_ref
        self.attempt_id = attempt_id

    @staticmethod
    def create_id(method: str, provider_ref: str) -> UUID:
        return stable_id("payment-provider-ref", f"{method}:{provider_ref}")


def attempt_id(out_trade_no: str) -> UUID:
    return stable_id("payment-attempt", out_trade_no)
