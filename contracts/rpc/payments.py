"""Payments RPC payloads. Billing calls ``payments.start_payment(actor, StartPaymentIn)``;
the gateway forwards provider callbacks with ``payments.handle_callback(ProviderCallbackIn)``."""

from marshmallow import Schema, fields, validate

from contracts.events.payments import PROVIDER_METHODS, PURPOSES
from contracts.fields import Amount, Currency, Timestamp
from contracts.rpc import Request

ATTEMPT_STATES = ("pending", "succeeded", "failed", "closed", "mismatch")


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
    # how the payer pays: "qr" (WeChat Pay Native, Alipay precreate) or "page" (PayPal
    # approval, Alipay page pay); the method's usual one when left out
    scene = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(("qr", "page"))
    )


class AttemptHistoryOut(Schema):
    at = Timestamp()
    what = fields.String()
    detail = fields.String()


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
    out_trade_no = fields.String()
    scene = fields.String()
    reason = fields.String(allow_none=True)  # why it failed, closed or mismatched
    provider_ref = fields.String(allow_none=True)  # the provider's order id (PayPal)
    provider_trade_no = fields.String(allow_none=True)
    paid_at = Timestamp(allow_none=True)
    late = fields.Boolean()
    expires_at = Timestamp()
    updated_at = Timestamp()
    history = fields.List(fields.Nested(AttemptHistoryOut))


class AttemptFilter(Request):
    reference_id = fields.String()
    company_id = fields.String()
    status = fields.String(validate=validate.OneOf(ATTEMPT_STATES))
    method = fields.String(validate=validate.OneOf(PROVIDER_METHODS))
    purpose = fields.String(validate=validate.OneOf(PURPOSES))


class ProviderCallbackIn(Request):
    provider = fields.String(required=True, validate=validate.OneOf(PROVIDER_METHODS))
    headers = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    body = fields.String(required=True)  # the raw body, base64: signatures cover its bytes


class ProviderCallbackOut(Schema):
    """The answer the provider's protocol expects, passed back verbatim by the gateway."""

    status = fields.Integer()
    content_type = fields.String()
    body = fields.String()
