"""Catalog RPC and HTTP payloads (T2): categories, packages, quotes.

Codes are trimmed and unique per kind of entry, ignoring case. Amounts are decimal strings
("12.50"): positive, at most two decimals, at most 10,000,000.00. A change payload names
only the fields that change.
"""

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.events.catalog import KINDS, PRICING
from contracts.fields import Amount, Currency, Timestamp
from contracts.rpc import Request

CODE = validate.Length(min=1, max=64)
NAME = validate.Length(min=1, max=200)
DESCRIPTION = validate.Length(max=2000)
CATEGORY_SORTS = ("code", "-code", "name", "-name", "created_at", "-created_at")
PACKAGE_SORTS = (*CATEGORY_SORTS, "amount", "-amount", "changed_at", "-changed_at")


class Paging(Request):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    created_from = Timestamp(metadata={"description": "created at or after"})
    created_to = Timestamp(metadata={"description": "created before"})
    changed_from = Timestamp(metadata={"description": "last changed at or after"})
    changed_to = Timestamp(metadata={"description": "last changed before"})


# -- major categories -----------------------------------------------------------------
class MajorCategoryIn(Request):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    type = fields.String(required=True, validate=validate.OneOf(KINDS))


class MajorCategoryChange(Request):
    code = fields.String(validate=CODE)
    name = fields.String(validate=NAME)
    type = fields.String(
        validate=validate.OneOf(KINDS),
        metadata={"description": "only while it holds no minor categories or packages"},
    )


class MajorCategoryOut(Schema):
    category_id = fields.String()
    code = fields.String()
    name = fields.String()
    type = fields.String()
    created_at = Timestamp()
    changed_at = Timestamp()


class MajorCategoryFilter(Paging):
    code = fields.String(metadata={"description": "part of the code, any case"})
    name = fields.String(metadata={"description": "part of the name, any case"})
    type = fields.String(validate=validate.OneOf(KINDS))
    sort = fields.String(load_default="code", validate=validate.OneOf(CATEGORY_SORTS))


class MajorCategoryPage(Schema):
    items = fields.List(fields.Nested(MajorCategoryOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


# -- minor categories -----------------------------------------------------------------
class MinorCategoryIn(Request):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    major_category_id = fields.String(required=True)
    type = fields.String(
        validate=validate.OneOf(KINDS),
        metadata={"description": "optional: always the major category's type"},
    )


class MinorCategoryChange(Request):
    code = fields.String(validate=CODE)
    name = fields.String(validate=NAME)
    major_category_id = fields.String(
        metadata={"description": "only while it holds no packages"},
    )
    type = fields.String(validate=validate.OneOf(KINDS))


class MinorCategoryOut(MajorCategoryOut):
    major_category_id = fields.String()


class MinorCategoryFilter(MajorCategoryFilter):
    major_category_id = fields.String()


class MinorCategoryPage(Schema):
    items = fields.List(fields.Nested(MinorCategoryOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


# -- packages -------------------------------------------------------------------------
class PackageIn(Request):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=NAME)
    major_category_id = fields.String(allow_none=True, load_default=None)
    minor_category_id = fields.String(
        allow_none=True,
        load_default=None,
        metadata={"description": "its major category is implied when that is omitted"},
    )
    kind = fields.String(
        validate=validate.OneOf(KINDS),
        metadata={"description": "follows the categories; required without a category"},
    )
    pricing = fields.String(required=True, validate=validate.OneOf(PRICING))
    amount = Amount(required=True, metadata={"example": "120.00"})
    currency = Currency(required=True)
    description = fields.String(load_default="", validate=DESCRIPTION)


class PackageChange(Request):
    code = fields.String(validate=CODE)
    name = fields.String(validate=NAME)
    major_category_id = fields.String(allow_none=True)
    minor_category_id = fields.String(allow_none=True)
    kind = fields.String(
        validate=validate.OneOf(KINDS),
        metadata={"description": "not while devices are bound to the package"},
    )
    pricing = fields.String(validate=validate.OneOf(PRICING))
    amount = Amount(metadata={"example": "120.00"})
    currency = Currency()
    description = fields.String(validate=DESCRIPTION)


class PackageOut(Schema):
    package_id = fields.String()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    pricing = fields.String()
    amount = Amount()
    currency = fields.String()
    on_sale = fields.Boolean()
    description = fields.String()
    major_category_id = fields.String(allow_none=True)
    minor_category_id = fields.String(allow_none=True)
    bound_devices = fields.Integer(
        metadata={"description": "devices the package is bound to (it cannot be deleted)"}
    )
    created_at = Timestamp()
    changed_at = Timestamp()


class PackageFilter(Paging):
    code = fields.String(metadata={"description": "part of the code, any case"})
    name = fields.String(metadata={"description": "part of the name, any case"})
    description = fields.String(metadata={"description": "part of the description"})
    kind = fields.String(validate=validate.OneOf(KINDS))
    currency = Currency()
    pricing = fields.String(validate=validate.OneOf(PRICING))
    on_sale = fields.Boolean()
    major_category_id = fields.String()
    minor_category_id = fields.String()
    amount_min = Amount(metadata={"description": "amount at least"})
    amount_max = Amount(metadata={"description": "amount at most"})
    sort = fields.String(load_default="code", validate=validate.OneOf(PACKAGE_SORTS))

    @validates_schema
    def _range(self, data: dict, **kwargs: Any) -> None:
        low, high = data.get("amount_min"), data.get("amount_max")
        if low is not None and high is not None and low > high:
            raise ValidationError("must not be below amount_min", "amount_max")


class PackagePage(Schema):
    items = fields.List(fields.Nested(PackageOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


# -- quotes ---------------------------------------------------------------------------
class QuoteIn(Request):
    package_id = fields.String(required=True)
    months = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))


class QuoteQuery(Request):
    months = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=120),
        metadata={"description": "months to price (a one-off package ignores it)"},
    )


class QuoteOut(Schema):
    package_id = fields.String()
    code = fields.String()
    name = fields.String()
    kind = fields.String()
    pricing = fields.String()
    currency = fields.String()
    on_sale = fields.Boolean()
    months = fields.Integer()
    unit_price = Amount()
    amount = Amount()
