"""Events of the notifications service.

Fields marked optional were added after v1 (consumers ignore fields they do not know).
"""

from marshmallow import fields

from contracts.envelope import PayloadSchema, event
from contracts.fields import Timestamp


@event("notifications", "mail_sent", 1)
class MailSentV1(PayloadSchema):
    """A mail was accepted by the SMTP server (or written to the mail folder)."""

    delivery_id = fields.String(required=True)
    template = fields.String(required=True)
    language = fields.String(required=True)
    recipients = fields.List(fields.String(), required=True)
    cause_id = fields.String(required=True)
    company_id = fields.String(load_default=None, allow_none=True)
    event = fields.String(load_default=None, allow_none=True)  # "<source>.<type>" it answers
    attempts = fields.Integer(load_default=None, allow_none=True)
    at = Timestamp(load_default=None, allow_none=True)


@event("notifications", "mail_failed", 1)
class MailFailedV1(PayloadSchema):
    """A mail failed for good: a permanent SMTP refusal, or the last allowed attempt."""

    delivery_id = fields.String(required=True)
    template = fields.String(required=True)
    language = fields.String(required=True)
    recipients = fields.List(fields.String(), required=True)
    cause_id = fields.String(required=True)
    company_id = fields.String(required=True)
    event = fields.String(required=True)
    attempts = fields.Integer(required=True)
    error = fields.String(required=True)
    at = Timestamp(required=True)
