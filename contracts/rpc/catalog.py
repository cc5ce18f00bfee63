"""Catalog RPC and HTTP payloads."""

from marshmallow import Schema, fields, validate

from contracts.events.catalog import KINDS, PRICING
from contracts.fields import Amount, Currency, Timestamp
from contracts.rpc import Request


class PackageIn(Request):
    code = fields.String(required=True, validate=validate.Length(min=1, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    pricing = fields.String(required=True, validate=validate.OneOf(PRICING))
    amount = Amount(required=True)
    currency = Currency(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=2000))


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
    created_at = Timestamp()
    changed_at = Timestamp()


class PackageFilter(Request):
    kind = fields.String(validate=validate.OneOf(KINDS))
    currency = Currency()
    pricing = fields.String(validate=validate.OneOf(PRICING))
    on_sale = fields.Boolean()


class QuoteIn(Request):
    package_id = fields.String(required=True)
    months = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))


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
