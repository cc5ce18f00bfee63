"""Events of the payments service (payment attempts with external providers).

Billing consumes ``payment_succeeded``: it pays the order (or credits the recharge); if the
order was already paid another way, it credits the amount to the balance instead, so no
money is ever silently kept.
"""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency, Timestamp

PROVIDER_METHODS = ("wechat_pay", "alipay", "paypal")
PURPOSES = ("order", "recharge")


class AttemptFields(PayloadSchema):
    attempt_id = fields.String(required=True)
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    reference_id = fields.String(required=True)  # the order id or recharge id in billing
    company_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PROVIDER_METHODS))
    amount = Amount(required=True)
    currency = Currency(required=True)


@event("payments", "payment_succeeded", 1)
class PaymentSucceededV1(AttemptFields):
    provider_trade_no = fields.String(required=True)
    paid_at = Timestamp(required=True)


@event("payments", "payment_failed", 1)
class PaymentFailedV1(AttemptFields):
    reason = fields.String(required=True)


@event("payments", "payment_mismatch", 1)
class PaymentMismatchV1(AttemptFields):
    """The provider reported something that does not match the attempt; nothing is credited."""

    reported_amount = fields.String(allow_none=True, load_default=None)
    reported_currency = fields.String(allow_none=True, load_default=None)
    reason = fields.String(required=True)
