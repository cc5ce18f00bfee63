"""Events of the notifications service."""

from marshmallow import fields

from contracts.envelope import PayloadSchema, event


@event("notifications", "mail_sent", 1)
class MailSentV1(PayloadSchema):
    delivery_id = fields.String(required=True)
    template = fields.String(required=True)
    language = fields.String(required=True)
    recipients = fields.List(fields.String(), required=True)
    cause_id = fields.String(required=True)
