"""The package catalog (T2): what customers buy, and at what price.

Major categories hold minor categories; packages sit in a major (and optionally a minor)
category and follow its type (renewal or value-added). Each code is held by a CodeClaim
whose id derives from the normalised code, so two entries can never hold the same code.
A category records which minor categories and packages it holds, so "a category still in
use cannot be deleted" is decided on the aggregate itself, atomically with the change.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id
from services.common.money import CENT, CURRENCIES, MAX_AMOUNT, quantize

KINDS = ("renewal", "value_added")
PRICING = ("per_month", "per_year", "one_off")
ENTRIES = ("major_category", "minor_category", "package")
CODE_MAX = 64
NAME_MAX = 200
MONTHS_MAX = 120


class CatalogRefused(Exception):
    """A rule of the catalog refuses the change; ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class InvalidEntry(CatalogRefused):
    """A value breaks a rule (blank name, bad amount, type that disagrees, ...)."""


class CodeTaken(CatalogRefused):
    """Another entry of the same kind already holds this code."""


class InUse(CatalogRefused):
    """The entry is still used; ``uses`` lists by whom: minor_categories, packages,
    devices (each a list of ids)."""

    def __init__(self, message: str, uses: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.uses = uses


# -- values ---------------------------------------------------------------------------
def clean_code(code: str) -> str:
    """A code as stored: trimmed; never blank, never with spaces inside."""
    trimmed = str(code).strip()
    if not trimmed:
        raise InvalidEntry("code must not be blank", "code")
    if len(trimmed) > CODE_MAX:
        raise InvalidEntry(f"code must be at most {CODE_MAX} characters", "code")
    if any(c.isspace() or not c.isprintable() for c in trimmed):
        raise InvalidEntry("code must not contain spaces or control characters", "code")
    return trimmed


def code_key(code: str) -> str:
    """What makes two codes the same: trimmed and case-folded ("rn-1 " == "RN-1")."""
    return clean_code(code).casefold()


def clean_name(name: str) -> str:
    trimmed = str(name).strip()
    if not trimmed:
        raise InvalidEntry("name must not be blank", "name")
    if len(trimmed) > NAME_MAX:
        raise InvalidEntry(f"name must be at most {NAME_MAX} characters", "name")
    return trimmed


def check_kind(kind: str, field: str = "kind") -> str:
    if kind not in KINDS:
        raise InvalidEntry(f"{field} must be one of {', '.join(KINDS)}", field)
    return kind


def check_price(amount: Decimal, currency: str, pricing: str) -> Decimal:
    """Amounts are positive, whole cents, at most MAX_AMOUNT, in a supported currency."""
    if not isinstance(amount, Decimal) or not amount.is_finite():
        raise InvalidEntry("amount must be a decimal number", "amount")
    if amount <= 0:
        raise InvalidEntry("amount must be positive", "amount")
    if amount != amount.quantize(CENT):
        raise InvalidEntry("amount has more than two decimals", "amount")
    if amount > MAX_AMOUNT:
        raise InvalidEntry(f"amount must be at most {MAX_AMOUNT}", "amount")
    if currency not in CURRENCIES:
        raise InvalidEntry(f"currency must be one of {', '.join(CURRENCIES)}", "currency")
    if pricing not in PRICING:
        raise InvalidEntry(f"pricing must be one of {', '.join(PRICING)}", "pricing")
    return amount.quantize(CENT)


# -- code claims ----------------------------------------------------------------------
def claim_id(entry: str, code: str) -> UUID:
    return stable_id(f"{entry}-code", code_key(code))


class CodeClaim(Aggregate):
    """Holds one code of one kind of entry (``entry`` in ENTRIES) for its owner.

    Creating a second claim on the same code collides in the store. When the owner changes
    its code or is deleted, the claim is released in the same atomic save, and anyone may
    take it again; two writers taking it at once collide on the claim's version.
    """

    def __init__(self, entry: str, code: str, owner_id: str) -> None:
        self.entry = entry
        self.code = code
        self.owner_id: str | None = owner_id

    @staticmethod
    def create_id(entry: str, code: str, owner_id: str) -> UUID:
        return claim_id(entry, code)

    @property
    def released(self) -> bool:
        return self.owner_id is None

    def take(self, owner_id: str, code: str) -> None:
        if self.owner_id == owner_id:
            return
        if self.owner_id is not None:
            raise CodeTaken(
                f"a {self.entry.replace('_', ' ')} with code {self.code!r} already exists", "code"
            )
        self._taken(owner_id=owner_id, code=code)

    @event("Taken")
    def _taken(self, owner_id: str, code: str) -> None:
        self.owner_id = owner_id
        self.code = code

    def release(self, owner_id: str) -> None:
        if self.owner_id == owner_id:
            self._released()

    @event("Released")
    def _released(self) -> None:
        self.owner_id = None


# -- categories -----------------------------------------------------------------------
class _Category(Aggregate):
    """What major and minor categories share: code, name, type, the packages they hold.

    The recording methods (``_package_attached``, ...) are declared on each class, so each
    class has its own event classes (``MajorCategory.Deleted``, ``MinorCategory.Deleted``).
    """

    def _require_live(self) -> None:
        if self.deleted:
            raise InvalidEntry("the category is deleted")

    def attach_package(self, package_id: str) -> None:
        self._require_live()
        if package_id not in self.package_ids:
            self._package_attached(package_id=package_id)

    def detach_package(self, package_id: str) -> None:
        if package_id in self.package_ids:
            self._package_detached(package_id=package_id)


class MajorCategory(_Category):
    def __init__(self, code: str, name: str, type: str) -> None:
        self.code = code
        self.name = name
        self.type = type
        self.minor_ids: list[str] = []
        self.package_ids: list[str] = []
        self.deleted = False

    @classmethod
    def define(cls, code: str, name: str, type: str) -> MajorCategory:
        return cls(code=clean_code(code), name=clean_name(name), type=check_kind(type, "type"))

    def change(self, code: str, name: str, type: str) -> bool:
        """Record a change; False if nothing differs. The type stays while in use."""
        self._require_live()
        code, name, type = clean_code(code), clean_name(name), check_kind(type, "type")
        if type != self.type and (self.minor_ids or self.package_ids):
            raise InUse(
                "the type of a major category that holds minor categories or packages "
                "cannot change",
                self.uses(),
            )
        if (code, name, type) == (self.code, self.name, self.type):
            return False
        self._changed(code=code, name=name, type=type)
        return True

    @event("Changed")
    def _changed(self, code: str, name: str, type: str) -> None:
        self.code, self.name, self.type = code, name, type

    def attach_minor(self, minor_id: str) -> None:
        self._require_live()
        if minor_id not in self.minor_ids:
            self._minor_attached(minor_id=minor_id)

    def detach_minor(self, minor_id: str) -> None:
        if minor_id in self.minor_ids:
            self._minor_detached(minor_id=minor_id)

    @event("MinorAttached")
    def _minor_attached(self, minor_id: str) -> None:
        self.minor_ids.append(minor_id)

    @event("MinorDetached")
    def _minor_detached(self, minor_id: str) -> None:
        self.minor_ids.remove(minor_id)

    def uses(self) -> dict[str, list[str]]:
        return {
            name: list(ids)
            for name, ids in (("minor_categories", self.minor_ids), ("packages", self.package_ids))
            if ids
        }

    def delete(self) -> None:
        self._require_live()
        if self.minor_ids or self.package_ids:
            raise InUse("the major category is in use and cannot be deleted", self.uses())
        self._deleted()

    @event("PackageAttached")
    def _package_attached(self, package_id: str) -> None:
        self.package_ids.append(package_id)

    @event("PackageDetached")
    def _package_detached(self, package_id: str) -> None:
        self.package_ids.remove(package_id)

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True


class MinorCategory(_Category):
    def __init__(self, code: str, name: str, type: str, major_category_id: str) -> None:
        self.code = code
        self.name = name
        self.type = type
        self.major_category_id = major_category_id
        self.package_ids: list[str] = []
        self.deleted = False

    @classmethod
    def define(
        cls,
        code: str,
        name: str,
        major: MajorCategory,
        type: str | None = None,
    ) -> MinorCategory:
        return cls(
            code=clean_code(code),
            name=clean_name(name),
            type=agreeing_type(type, major),
            major_category_id=str(major.id),
        )

    def change(self, code: str, name: str, major: MajorCategory, type: str | None = None) -> bool:
        """Record a change; False if nothing differs. A minor category that holds packages
        keeps its major category (its packages name both)."""
        self._require_live()
        code, name = clean_code(code), clean_name(name)
        type = agreeing_type(type, major)
        major_id = str(major.id)
        if self.package_ids and major_id != self.major_category_id:
            raise InUse(
                "a minor category that holds packages cannot move to another major category",
                self.uses(),
            )
        if (code, name, type, major_id) == (
            self.code,
            self.name,
            self.type,
            self.major_category_id,
        ):
            return False
        self._changed(code=code, name=name, type=type, major_category_id=major_id)
        return True

    @event("Changed")
    def _changed(self, code: str, name: str, type: str, major_category_id: str) -> None:
        self.code, self.name, self.type = code, name, type
        self.major_category_id = major_category_id

    def uses(self) -> dict[str, list[str]]:
        return {"packages": list(self.package_ids)} if self.package_ids else {}

    def delete(self) -> None:
        self._require_live()
        if self.package_ids:
            raise InUse("the minor category is in use and cannot be deleted", self.uses())
        self._deleted()

    @event("PackageAttached")
    def _package_attached(self, package_id: str) -> None:
        self.package_ids.append(package_id)

    @event("PackageDetached")
    def _package_detached(self, package_id: str) -> None:
        self.package_ids.remove(package_id)

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True


def agreeing_type(requested: str | None, major: MajorCategory) -> str:
    """A minor category's type is its major category's; asking for another is refused."""
    if requested is not None and requested != major.type:
        raise InvalidEntry(
            f"type must be {major.type}, the type of major category {major.code}", "type"
        )
    return major.type


def package_kind(
    requested: str | None, major: MajorCategory | None, minor: MinorCategory | None
) -> str:
    """A package's kind follows its categories; without a category it must be given."""
    if minor is not None and major is not None and minor.major_category_id != str(major.id):
        raise InvalidEntry(
            f"minor category {minor.code} belongs to another major category than {major.code}",
            "minor_category_id",
        )
    category = minor or major
    if category is None:
        if requested is None:
            raise InvalidEntry("kind is required for a package without a category", "kind")
        return check_kind(requested)
    if requested is not None and requested != category.type:
        raise InvalidEntry(
            f"kind must be {category.type}, the type of category {category.code}", "kind"
        )
    return category.type


# -- packages -------------------------------------------------------------------------
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
        self.deleted = False

    @classmethod
    def define(
        cls,
        code: str,
        name: str,
        kind: str | None,
        pricing: str,
        amount: Decimal,
        currency: str,
        description: str = "",
        major: MajorCategory | None = None,
        minor: MinorCategory | None = None,
    ) -> Package:
        """A new package, checked; the caller attaches it to its categories."""
        return cls(
            code=clean_code(code),
            name=clean_name(name),
            kind=package_kind(kind, major, minor),
            pricing=pricing,
            amount=check_price(amount, currency, pricing),
            currency=currency,
            description=str(description or "").strip(),
            major_category_id=str(major.id) if major is not None else None,
            minor_category_id=str(minor.id) if minor is not None else None,
        )

    def state(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "pricing": self.pricing,
            "amount": self.amount,
            "currency": self.currency,
            "description": self.description,
            "major_category_id": self.major_category_id,
            "minor_category_id": self.minor_category_id,
        }

    def _require_live(self) -> None:
        if self.deleted:
            raise InvalidEntry("the package is deleted")

    def change(
        self,
        code: str,
        name: str,
        kind: str,
        pricing: str,
        amount: Decimal,
        currency: str,
        description: str,
        major_category_id: str | None,
        minor_category_id: str | None,
        bound_devices: list[str],
    ) -> bool:
        """Record the package's new terms; False if nothing differs.

        A price change is a new event: orders copied the old price when they were made, so
        nothing already ordered changes. A package bound to devices keeps its kind (the
        devices hold it as a renewal or value-added package).
        """
        self._require_live()
        new = {
            "code": clean_code(code),
            "name": clean_name(name),
            "kind": check_kind(kind),
            "pricing": pricing,
            "amount": check_price(amount, currency, pricing),
            "currency": currency,
            "description": str(description or "").strip(),
            "major_category_id": major_category_id,
            "minor_category_id": minor_category_id,
        }
        if new["kind"] != self.kind and bound_devices:
            raise InUse(
                "the kind of a package bound to devices cannot change",
                {"devices": list(bound_devices)},
            )
        if new == self.state():
            return False
        self._changed(**new)
        return True

    @event("Changed")
    def _changed(
        self,
        code: str,
        name: str,
        kind: str,
        pricing: str,
        amount: Decimal,
        currency: str,
        description: str,
        major_category_id: str | None,
        minor_category_id: str | None,
    ) -> None:
        self.code, self.name, self.kind, self.pricing = code, name, kind, pricing
        self.amount, self.currency, self.description = amount, currency, description
        self.major_category_id, self.minor_category_id = major_category_id, minor_category_id

    def withdraw(self) -> bool:
        """Take the package off sale (devices keep it; nobody new can bind it)."""
        self._require_live()
        if not self.on_sale:
            return False
        self._withdrawn()
        return True

    @event("Withdrawn")
    def _withdrawn(self) -> None:
        self.on_sale = False

    def put_on_sale(self) -> bool:
        self._require_live()
        if self.on_sale:
            return False
        self._put_on_sale()
        return True

    @event("PutOnSale")
    def _put_on_sale(self) -> None:
        self.on_sale = True

    def delete(self, bound_devices: list[str]) -> None:
        """Only a package no device is bound to can be deleted; otherwise withdraw it."""
        self._require_live()
        if bound_devices:
            raise InUse(
                f"the package is bound to {len(bound_devices)} device(s): withdraw it instead",
                {"devices": list(bound_devices)},
            )
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True

    def quote(self, months: int) -> Decimal:
        """The price of ``months`` of this package, rounded once to the cent (half up).

        per month: amount x months; per year: amount x months / 12 (100.00 a year for 7
        months is 58.33); one-off: the amount, whatever the months. A price is never below
        one cent (0.01 a year for one month would round to nothing).
        """
        if (
            isinstance(months, bool)
            or not isinstance(months, int)
            or not (1 <= months <= MONTHS_MAX)
        ):
            raise InvalidEntry(f"months must be a whole number from 1 to {MONTHS_MAX}", "months")
        if self.pricing == "per_month":
            exact = self.amount * months
        elif self.pricing == "per_year":
            exact = self.amount * Decimal(months) / Decimal(12)
        else:
            exact = self.amount
        return max(quantize(exact), CENT)
