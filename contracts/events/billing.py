"""Events of the billing service: balances, orders, offline applications, account config."""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency, SignedAmount, Timestamp

ORDER_TYPES = ("renewal", "value_added", "recharge")
METHODS = ("balance", "wechat_pay", "alipay", "paypal", "offline")


@event("billing", "account_credited", 1)
class AccountCreditedV1(PayloadSchema):
    company_id = fields.String(required=True)
    currency = Currency(required=True)
    amount = Amount(required=True)
    balance = SignedAmount(required=True)
    reason = fields.String(required=True)
    reference = fields.String(required=True)


@event("billing", "account_debited", 1)
class AccountDebitedV1(AccountCreditedV1):
    pass


class OrderLine(PayloadSchema):
    line_id = fields.String(required=True)
    device_id = fields.String(required=True)
    package_id = fields.String(required=True)
    package_name = fields.String(required=True)
    months = fields.Integer(required=True)
    unit_price = Amount(required=True)
    amount = Amount(required=True)


class OrderFields(PayloadSchema):
    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    company_id = fields.String(required=True)
    order_type = fields.String(required=True, validate=validate.OneOf(ORDER_TYPES))
    currency = Currency(required=True)
    total = Amount(required=True)


@event("billing", "order_created", 1)
class OrderCreatedV1(OrderFields):
    lines = fields.List(fields.Nested(OrderLine), required=True)


@event("billing", "order_confirmed", 1)
class OrderConfirmedV1(OrderFields):
    pass


@event("billing", "order_paid", 1)
class OrderPaidV1(OrderFields):
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    paid_at = Timestamp(required=True)
    lines = fields.List(fields.Nested(OrderLine), required=True)


class ApplicationFields(PayloadSchema):
    application_id = fields.String(required=True)
    company_id = fields.String(required=True)
    applicant = fields.String(required=True)
    payer = fields.String(required=True)
    currency = Currency(required=True)
    amount = Amount(required=True)
    reference_number = fields.String(required=True)


@event("billing", "offline_application_submitted", 1)
class OfflineApplicationSubmittedV1(ApplicationFields):
    pass


@event("billing", "offline_application_approved", 1)
class OfflineApplicationApprovedV1(ApplicationFields):
    reviewer = fields.String(required=True)
    opinion = fields.String(required=True)


@event("billing", "account_config_set", 1)
class AccountConfigSetV1(PayloadSchema):
    company_id = fields.String(required=True)
    region = fields.String(required=True, validate=validate.OneOf(("china", "other")))
    default_currency = Currency(required=True)
    billing_cycle = fields.String(required=True, validate=validate.OneOf(("monthly", "quarterly")))
    auto_renewal = fields.Boolean(required=True)
    push_enabled = fields.Boolean(required=True)
    language = fields.String(required=True, validate=validate.OneOf(("zh", "en")))
    push_emails = fields.List(fields.Email(), required=True)
