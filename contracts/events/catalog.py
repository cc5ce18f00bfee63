"""Events of the catalog service (package categories and packages, T2).

Every event carries the entry's whole state as of the event (the last state for a
``*_deleted`` event), so a subscriber can keep its own copy of the catalog from them.
Amounts are decimal strings with two decimals.
"""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency

KINDS = ("renewal", "value_added")
PRICING = ("per_month", "per_year", "one_off")


class PackageFields(PayloadSchema):
    package_id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    pricing = fields.String(required=True, validate=validate.OneOf(PRICING))
    amount = Amount(required=True)
    currency = Currency(required=True)
    on_sale = fields.Boolean(required=True)
    major_category_id = fields.String(allow_none=True, load_default=None)
    minor_category_id = fields.String(allow_none=True, load_default=None)
    description = fields.String(load_default="")


@event("catalog", "package_created", 1)
class PackageCreatedV1(PackageFields):
    pass


@event("catalog", "package_changed", 1)
class PackageChangedV1(PackageFields):
    """New terms (code, name, price, categories, ...). Orders already made keep the price
    they copied."""


@event("catalog", "package_withdrawn", 1)
class PackageWithdrawnV1(PackageFields):
    """Off sale: bound devices keep it, nobody can bind it anew (on_sale is false)."""


@event("catalog", "package_put_on_sale", 1)
class PackagePutOnSaleV1(PackageFields):
    """Back on sale after a withdrawal (on_sale is true)."""


@event("catalog", "package_deleted", 1)
class PackageDeletedV1(PackageFields):
    """Gone from the catalog; only a package no device was bound to can be deleted."""


class CategoryFields(PayloadSchema):
    category_id = fields.String(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    type = fields.String(required=True, validate=validate.OneOf(KINDS))


@event("catalog", "major_category_created", 1)
class MajorCategoryCreatedV1(CategoryFields):
    pass


@event("catalog", "major_category_changed", 1)
class MajorCategoryChangedV1(CategoryFields):
    pass


@event("catalog", "major_category_deleted", 1)
class MajorCategoryDeletedV1(CategoryFields):
    pass


class MinorCategoryFields(CategoryFields):
    major_category_id = fields.String(required=True)


@event("catalog", "minor_category_created", 1)
class MinorCategoryCreatedV1(MinorCategoryFields):
    pass


@event("catalog", "minor_category_changed", 1)
class MinorCategoryChangedV1(MinorCategoryFields):
    pass


@event("catalog", "minor_category_deleted", 1)
class MinorCategoryDeletedV1(MinorCategoryFields):
    pass
