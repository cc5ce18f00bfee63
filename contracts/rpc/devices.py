"""Devices RPC and HTTP payloads."""

from marshmallow import Schema, fields, validate

from contracts.events.devices import REGIONS
from contracts.fields import Timestamp
from contracts.rpc import Request

DEVICE_ID = validate.Regexp(r"^[0-9A-Za-z-]{4,32}$", error="must be 4 to 32 letters, digits or -")


class CompanyIn(Request):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    parent_id = fields.String(required=True, allow_none=True)
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))


class CompanyOut(Schema):
    company_id = fields.String()
    parent_id = fields.String(allow_none=True)
    name = fields.String()
    region = fields.String()


class DeviceIn(Request):
    device_id = fields.String(required=True, validate=DEVICE_ID)
    device_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    company_id = fields.String(required=True)
    expires_at = Timestamp(required=True)


class DeviceOut(Schema):
    device_id = fields.String()
    device_type = fields.String()
    company_id = fields.String()
    expires_at = Timestamp()
    status = fields.String()
    package_id = fields.String(allow_none=True)


class DeviceFilter(Request):
    company_id = fields.String()
    status = fields.String(validate=validate.OneOf(("active", "expired", "suspended")))
    device_type = fields.String()
    bound = fields.Boolean()
    expires_within_days = fields.Integer(strict=False, validate=validate.Range(min=0, max=3650))
    q = fields.String(validate=validate.Length(max=32))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class DevicePage(Schema):
    items = fields.List(fields.Nested(DeviceOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class BindIn(Request):
    package_id = fields.String(required=True)
    device_ids = fields.List(
        fields.String(validate=DEVICE_ID), required=True, validate=validate.Length(min=1, max=10000)
    )


class BindOut(Schema):
    package_id = fields.String()
    bound = fields.List(fields.String())
