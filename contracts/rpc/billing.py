"""Billing RPC and HTTP payloads."""

from marshmallow import Schema, fields, validate

from contracts.events.billing import METHODS, ORDER_TYPES
from contracts.fields import Amount, Currency, SignedAmount, Timestamp
from contracts.rpc import Request

ORDER_STATES = ("created", "confirmed", "paid", "cancelled", "lapsed")
APPLICATION_STATES = ("draft", "submitted", "approved", "returned", "rejected")


class AccountConfigIn(Request):
    region = fields.String(required=True, validate=validate.OneOf(("china", "other")))
    default_currency = Currency(required=True)
    billing_cycle = fields.String(required=True, validate=validate.OneOf(("monthly", "quarterly")))
    auto_renewal = fields.Boolean(load_default=False)
    push_enabled = fields.Boolean(load_default=True)
    language = fields.String(load_default="zh", validate=validate.OneOf(("zh", "en")))
    push_emails = fields.List(fields.Email(), load_default=list, validate=validate.Length(max=20))


class AccountConfigOut(Schema):
    company_id = fields.String()
    region = fields.String()
    default_currency = fields.String()
    billing_cycle = fields.String()
    auto_renewal = fields.Boolean()
    push_enabled = fields.Boolean()
    language = fields.String()
    push_emails = fields.List(fields.String())
    changed_at = Timestamp()


class BalanceOut(Schema):
    currency = fields.String()
    balance = SignedAmount()


class AccountOut(Schema):
    company_id = fields.String()
    balances = fields.List(fields.Nested(BalanceOut))


class OfflineApplicationIn(Request):
    company_id = fields.String(required=True)
    payer = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = Currency(required=True)
    amount = Amount(required=True)
    reference_number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    remark = fields.String(load_default="", validate=validate.Length(max=500))
    submit = fields.Boolean(load_default=False)


class ReviewIn(Request):
    decision = fields.String(
        required=True, validate=validate.OneOf(("approve", "return", "reject"))
    )
    opinion = fields.String(required=True, validate=validate.Length(min=1, max=500))


class HistoryOut(Schema):
    action = fields.String()
    actor = fields.String(allow_none=True)
    detail = fields.String(allow_none=True)
    at = Timestamp()


class OfflineApplicationOut(Schema):
    application_id = fields.String()
    company_id = fields.String()
    payer = fields.String()
    currency = fields.String()
    amount = Amount()
    reference_number = fields.String()
    remark = fields.String()
    applicant = fields.String()
    status = fields.String()
    reviewer = fields.String(allow_none=True)
    opinion = fields.String(allow_none=True)
    duplicate_reference = fields.Boolean()
    created_at = Timestamp()
    changed_at = Timestamp()
    history = fields.List(fields.Nested(HistoryOut))


class ApplicationFilter(Request):
    status = fields.String(validate=validate.OneOf(APPLICATION_STATES))
    company_id = fields.String()
    currency = Currency()
    reference_number = fields.String()


class RenewalCenterFilter(Request):
    within_days = fields.Integer(load_default=30, validate=validate.Range(min=0, max=3650))


class RenewalCandidateOut(Schema):
    device_id = fields.String()
    company_id = fields.String()
    status = fields.String()
    expires_at = Timestamp()
    package_id = fields.String(allow_none=True)
    package_name = fields.String(allow_none=True)
    pricing = fields.String(allow_none=True)
    unit_price = Amount(allow_none=True)
    currency = fields.String(allow_none=True)
    renewable = fields.Boolean()
    reason = fields.String(allow_none=True)


class RenewalOrderIn(Request):
    device_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=32)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    months = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))


class PayIn(Request):
    method = fields.String(required=True, validate=validate.OneOf(METHODS[:-1]))


class OrderLineOut(Schema):
    line_id = fields.String()
    device_id = fields.String()
    package_id = fields.String()
    package_name = fields.String()
    months = fields.Integer()
    unit_price = Amount()
    amount = Amount()


class OrderOut(Schema):
    order_id = fields.String()
    order_number = fields.String()
    company_id = fields.String()
    order_type = fields.String()
    status = fields.String()
    currency = fields.String()
    total = Amount()
    method = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = Timestamp()
    paid_at = Timestamp(allow_none=True)
    payment_methods = fields.List(fields.String())
    lines = fields.List(fields.Nested(OrderLineOut))
    history = fields.List(fields.Nested(HistoryOut))


class OrderFilter(Request):
    status = fields.String(validate=validate.OneOf(ORDER_STATES))
    order_type = fields.String(validate=validate.OneOf(ORDER_TYPES))
    method = fields.String(validate=validate.OneOf(METHODS))
    currency = Currency()
    created_from = Timestamp()
    created_to = Timestamp()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class OrderPage(Schema):
    items = fields.List(fields.Nested(OrderOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
