"""What every provider adapter speaks: new trades, reports of a trade's state, errors, and
the answer a callback gets. Adapters translate each provider's protocol to these."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

STATES = ("paid", "pending", "approved", "failed", "closed", "absent")


class ProviderUnavailable(Exception):
    """No trustworthy answer: timeout, network error, 5xx or an unverifiable response.
    Nothing is decided on it; the caller retries (or reconciliation does)."""


class ProviderRefused(Exception):
    """A verified, definitive refusal (bad parameters, duplicate, wrong state)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class CallbackRejected(Exception):
    """A callback we cannot trust (signature, key, timestamp, format): nothing is recorded."""


@dataclass(frozen=True)
class NewTrade:
    out_trade_no: str
    amount: Decimal
    currency: str
    description: str
    expires_at: datetime
    scene: str = "qr"  # Alipay only: "qr" (precreate) or "page" (page pay)


@dataclass(frozen=True)
class CreatedTrade:
    code_url: str | None = None  # QR code content (WeChat Pay Native, Alipay precreate)
    approve_url: str | None = None  # where the payer goes (PayPal approve, Alipay page pay)
    provider_ref: str | None = None  # the provider's id for it (PayPal order id)


@dataclass(frozen=True)
class TradeReport:
    """What the provider says about one trade, from a verified callback or query answer.

    ``state``: paid, pending, approved (PayPal: the payer approved, we must capture),
    failed, closed, absent (the provider does not know the trade).
    ``merchant_error`` is set when the report names a merchant or app that is not ours.
    """

    provider: str
    state: str
    out_trade_no: str | None = None
    provider_ref: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    provider_trade_no: str | None = None
    paid_at: datetime | None = None
    reason: str = ""
    merchant_error: str | None = None
    event_id: str | None = None


@dataclass(frozen=True)
class CallbackAnswer:
    status: int
    content_type: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)


class Provider(Protocol):
    method: str

    def create(self, trade: NewTrade) -> CreatedTrade: ...

    def query(self, out_trade_no: str, provider_ref: str | None) -> TradeReport: ...

    def close(self, out_trade_no: str, provider_ref: str | None) -> TradeReport:
        """Close an unpaid trade; answers with the trade's state afterwards."""
        ...

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeReport: ...

    def answer(self, accepted: bool, message: str) -> CallbackAnswer: ...


# -- each protocol's unit of money, converted exactly -----------------------------------
def to_fen(amount: Decimal) -> int:
    """WeChat Pay counts integer fen (cents)."""
    fen = Decimal(amount) * 100
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount} has a fraction of a fen")
    return int(fen)


def from_fen(fen: object) -> Decimal:
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise ValueError("an amount in fen must be an integer")
    return (Decimal(fen) / 100).quantize(Decimal("0.01"))


def to_decimal_string(amount: Decimal) -> str:
    """Alipay and PayPal take a "0.00" string."""
    value = Decimal(amount)
    if value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{amount} has a fraction of a cent")
    return f"{value:.2f}"


def from_decimal_string(text: object) -> Decimal:
    if not isinstance(text, str):
        raise ValueError("an amount must be a decimal string")
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"{text!r} is not a decimal amount") from exc
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise ValueError(f"{text!r} is not an amount with at most two decimals")
    return value.quantize(Decimal("0.01"))


def header(headers: Mapping[str, str], name: str) -> str:
    """A header, case-insensitively ('' when absent)."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return ""
