"""Field types used on the wire and in RPC payloads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from marshmallow import ValidationError, fields, validate

from services.common.money import CURRENCIES, parse_amount


class Amount(fields.Field):
    """Money on the wire: a decimal string with at most two decimals, positive.

    Refuses floats, exponents ("1e3"), fractions of a cent ("0.001") and non-numbers.
    """

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        try:
            return parse_amount(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return str(Decimal(value).quantize(Decimal("0.01")))


class SignedAmount(fields.Field):
    """A decimal string that may be zero or negative (balances, differences)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Decimal:
        if isinstance(value, (float, bool)):
            raise ValidationError("must be a decimal string")
        try:
            amount = Decimal(str(value))
        except Exception as exc:  # noqa: BLE001 - decimal raises several types
            raise ValidationError("must be a decimal string") from exc
        if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
            raise ValidationError("must be a decimal with at most two decimals")
        return amount

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return str(Decimal(value).quantize(Decimal("0.01")))


def Currency(**kwargs: Any) -> fields.String:  # noqa: N802 - reads as a field type
    return fields.String(validate=validate.OneOf(CURRENCIES), **kwargs)


def Timestamp(**kwargs: Any) -> fields.AwareDateTime:  # noqa: N802
    return fields.AwareDateTime(format="iso", default_timezone=None, **kwargs)
