"""The package catalog (T2): what customers buy, and at what price."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id
from services.common.money import quantize

KINDS = ("renewal", "value_added")
PRICING = ("per_month", "per_year", "one_off")


class PackageCode(Aggregate):
    """Claims a package code: its id derives from the normalised code, so two packages
    cannot hold the same code (the second save collides)."""

    def __init__(self, code: str, package_id: UUID) -> None:
        self.code = code
        self.package_id = package_id

    @staticmethod
    def create_id(code: str, package_id: UUID) -> UUID:
        return stable_id("package-code", code.strip().lower())


class Package(Aggregate):
    def __init__(
        self,
        code: str,
        name: str,
        kind: str,
        pricing: str,
        amount: Decimal,
        currency: str,
        description: str = "",
        major_category_id: str | None = None,
        minor_category_id: str | None = None,
    ) -> None:
        self.code = code
        self.name = name
        self.kind = kind
        self.pricing = pricing
        self.amount = amount
        self.currency = currency
        self.description = description
        self.major_category_id = major_category_id
        self.minor_category_id = minor_category_id
        self.on_sale = True

    def quote(self, months: int) -> Decimal:
        """The price of ``months`` of this package, rounded once to the cent (half up)."""
        if self.pricing == "per_month":
            return quantize(self.amount * months)
        if self.pricing == "per_year":
            return quantize(self.amount * Decimal(months) / Decimal(12))
        return quantize(self.amount)

    @event("Withdrawn")
    def withdraw(self) -> None:
        self.on_sale = False
