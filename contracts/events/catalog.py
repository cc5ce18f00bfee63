"""Events of the catalog service (package categories and packages, T2)."""

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
