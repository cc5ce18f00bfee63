"""Payloads that belong to the gateway itself (login, users, demo clock)."""

from marshmallow import Schema, fields, validate

from contracts.fields import Timestamp
from contracts.rpc import Request
from services.common.actor import ROLES


class LoginIn(Request):
    username = fields.String(required=True, validate=validate.Length(min=1, max=100))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


class UserOut(Schema):
    user_id = fields.String()
    username = fields.String()
    role = fields.String()
    company_id = fields.String()
    display_name = fields.String()
    language = fields.String()
    email = fields.String(allow_none=True)


class LoginOut(Schema):
    token = fields.String()
    token_type = fields.String()
    expires_at = Timestamp()
    user = fields.Nested(UserOut)


class UserIn(Request):
    username = fields.String(required=True, validate=validate.Regexp(r"^[a-zA-Z0-9_.-]{3,50}$"))
    password = fields.String(required=True, validate=validate.Length(min=8, max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    company_id = fields.String(required=True)
    display_name = fields.String(load_default="", validate=validate.Length(max=200))
    language = fields.String(load_default="zh", validate=validate.OneOf(("zh", "en")))
    email = fields.Email(load_default=None, allow_none=True)


class ServiceHealth(Schema):
    name = fields.String()
    up = fields.Boolean()
    error = fields.String(allow_none=True)


class HealthOut(Schema):
    status = fields.String()
    services = fields.List(fields.Nested(ServiceHealth))


class ClockIn(Request):
    offset_seconds = fields.Float(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=-3650 * 86400, max=3650 * 86400),
    )
    advance_days = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=3650)
    )


class ClockOut(Schema):
    now = Timestamp()
    offset_seconds = fields.Float()
