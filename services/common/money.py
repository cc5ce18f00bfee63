"""Money is exact: Decimal with an ISO currency code, two decimals.

Rounding rule (the only one): ROUND_HALF_UP to the cent, applied once, where a computed
amount (a per-year price over N months) becomes an amount on an order line.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CURRENCIES = ("CNY", "USD")
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("10000000.00")


def quantize(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_amount(value: object) -> Decimal:
    """Parse a decimal string exactly; refuse floats, fractions of a cent, exponents."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError('amount must be a decimal string such as "12.50"')
    text = str(value).strip()
    if not text or any(c in text for c in "eE") or text.lower() in ("nan", "inf", "-inf"):
        raise ValueError('amount must be a decimal string such as "12.50"')
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError('amount must be a decimal string such as "12.50"') from exc
    if not amount.is_finite():
        raise ValueError("amount must be a finite number")
    if amount != amount.quantize(CENT):
        raise ValueError("amount has more than two decimals")
    if amount <= 0:
        raise ValueError("amount must be positive")
    if amount > MAX_AMOUNT:
        raise ValueError(f"amount must be at most {MAX_AMOUNT}")
    return amount.quantize(CENT)


def fmt(amount: Decimal) -> str:
    return str(quantize(amount))
