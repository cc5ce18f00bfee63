"""Notifications RPC and HTTP payloads."""

from marshmallow import Schema, fields

from contracts.fields import Timestamp


class DeliveryOut(Schema):
    delivery_id = fields.String()
    template = fields.String()
    company_id = fields.String()
    language = fields.String()
    recipients = fields.List(fields.String())
    subject = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = Timestamp()
    changed_at = Timestamp()
