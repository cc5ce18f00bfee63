"""Payments RPC payloads. Billing calls ``payments.start_payment(actor, StartPaymentIn)``."""

from marshmallow import Schema, fields, validate

from contracts.events.payments import PROVIDER_METHODS, PURPOSES
from contracts.fields import Amount, Currency, Timestamp
from contracts.rpc import Request


class StartPaymentIn(Request):
    purpose = fields.String(required=True, validate=validate.OneOf(PURPOSES))
    reference_id = fields.String(required=True)
    company_id = fields.String(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PROVIDER_METHODS))
    amount = Amount(required=True)
    currency = Currency(required=True)
    description = fields.String(load_default="", validate=validate.Length(max=120))
    idempotency_key = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1, max=100)
    )


class PaymentAttemptOut(Schema):
    attempt_id = fields.String()
    purpose = fields.String()
    reference_id = fields.String()
    company_id = fields.String()
    method = fields.String()
    amount = Amount()
    currency = fields.String()
    status = fields.String()  # pending, succeeded, failed, closed, mismatch
    code_url = fields.String(allow_none=True)  # WeChat Pay / Alipay QR content
    approve_url = fields.String(allow_none=True)  # PayPal approve link / Alipay page pay
    created_at = Timestamp()
