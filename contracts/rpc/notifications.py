"""Notifications RPC and HTTP payloads: the delivery log."""

from marshmallow import Schema, fields, validate

from contracts.fields import Timestamp
from contracts.rpc import Request

STATUSES = ("pending", "sending", "sent", "failed", "skipped")


class DeliveryFilter(Request):
    """GET /deliveries: every filter optional; newest first."""

    company_id = fields.String()
    status = fields.String(validate=validate.OneOf(STATUSES))
    template = fields.String(validate=validate.Length(min=1, max=60))
    since = Timestamp()
    until = Timestamp()
    limit = fields.Integer(load_default=200, validate=validate.Range(min=1, max=1000))


class DeliveryOut(Schema):
    """One mail: what caused it, to whom, in which language, and how sending went."""

    delivery_id = fields.String()
    template = fields.String()
    event = fields.String()  # the event that caused it, "<source>.<type>"
    cause_id = fields.String()  # that event's envelope id (or the digest's key)
    company_id = fields.String()
    language = fields.String()
    recipients = fields.List(fields.String())
    subject = fields.String()
    about = fields.List(fields.String())  # device, order or statement ids it mentions
    attachments = fields.List(fields.String())  # file names
    status = fields.String()  # pending, sending, sent, failed (permanently), skipped
    reason = fields.String(allow_none=True)  # why skipped
    attempts = fields.Integer()
    last_error = fields.String(allow_none=True)
    created_at = Timestamp()
    changed_at = Timestamp()
    sent_at = Timestamp(allow_none=True)
    retry_at = Timestamp(allow_none=True)
