"""Events of the payments service (payment attempts with external providers).

Billing consumes ``payment_succeeded``: it pays the order (or credits the recharge); if the
order was already paid another way, it credits the amount to the balance instead, so no
money is ever silently kept. Each successful payment is published exactly once, however
many callbacks, queries or retries report it.
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
    # our trade number with the provider (optional: added after v1 was published)
    out_trade_no = fields.String(load_default=None, allow_none=True)


@event("payments", "payment_succeeded", 1)
class PaymentSucceededV1(AttemptFields):
    provider_trade_no = fields.String(required=True)
    paid_at = Timestamp(required=True)
    # True when the attempt had been closed or had failed before the provider reported the
    # payment (e.g. the order was paid another way meanwhile): credit it, never drop it
    late = fields.Boolean(load_default=False)
    # what reported it: callback, query or reconciliation
    source = fields.String(load_default=None, allow_none=True)


@event("payments", "payment_failed", 1)
class PaymentFailedV1(AttemptFields):
    reason = fields.String(required=True)
    # "failed" (the provider refused or the payer's payment failed) or "closed" (closed
    # unpaid: on request, expired, or by the provider)
    status = fields.String(load_default="failed", validate=validate.OneOf(("failed", "closed")))


@event("payments", "payment_mismatch", 1)
class PaymentMismatchV1(AttemptFields):
    """The provider reported something that does not match the attempt; nothing is credited."""

    reported_amount = fields.String(allow_none=True, load_default=None)
    reported_currency = fields.String(allow_none=True, load_default=None)
    reason = fields.String(required=True)
