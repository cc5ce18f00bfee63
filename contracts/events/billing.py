"""Events of the billing service: balances, orders, offline applications, account configs,
auto-renewals and statements.

Money is a decimal string with its currency. Fields marked optional were added after v1
(consumers ignore fields they do not know; producers add optional fields freely).
"""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency, SignedAmount, Timestamp

ORDER_TYPES = ("renewal", "value_added", "recharge")
METHODS = ("balance", "wechat_pay", "alipay", "paypal", "offline")
CREDIT_REASONS = ("recharge", "offline_application", "refund", "overpayment")
DEBIT_REASONS = ("order",)


@event("billing", "account_credited", 1)
class AccountCreditedV1(PayloadSchema):
    """The balance grew. reason: recharge (reference: the recharge order id),
    offline_application (the application id), refund (order id:line id for a refused
    line, or the payment attempt id when a cancelled or lapsed order was paid),
    overpayment (the payment attempt id)."""

    company_id = fields.String(required=True)
    currency = Currency(required=True)
    amount = Amount(required=True)
    balance = SignedAmount(required=True)  # after this entry
    reason = fields.String(required=True)
    reference = fields.String(required=True)
    at = Timestamp(load_default=None, allow_none=True)


@event("billing", "account_debited", 1)
class AccountDebitedV1(AccountCreditedV1):
    """The balance shrank; reason "order", reference the order id."""


class OrderLine(PayloadSchema):
    line_id = fields.String(required=True)
    device_id = fields.String(required=True)
    binding_id = fields.String(load_default=None, allow_none=True)  # value-added lines
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
    created_by = fields.String(load_default=None, allow_none=True)


@event("billing", "order_confirmed", 1)
class OrderConfirmedV1(OrderFields):
    pass


@event("billing", "order_paid", 1)
class OrderPaidV1(OrderFields):
    method = fields.String(required=True, validate=validate.OneOf(METHODS))
    paid_at = Timestamp(required=True)
    lines = fields.List(fields.Nested(OrderLine), required=True)
    # the payment attempt id for an external method
    payment_reference = fields.String(load_default=None, allow_none=True)


@event("billing", "order_cancelled", 1)
class OrderCancelledV1(OrderFields):
    by = fields.String(required=True)


@event("billing", "order_lapsed", 1)
class OrderLapsedV1(OrderFields):
    at = Timestamp(required=True)


class ApplicationFields(PayloadSchema):
    application_id = fields.String(required=True)
    company_id = fields.String(required=True)
    applicant = fields.String(required=True)
    applicant_email = fields.Email(allow_none=True, load_default=None)
    applicant_language = fields.String(
        allow_none=True, load_default=None, validate=validate.OneOf(("zh", "en"))
    )
    payer = fields.String(required=True)
    currency = Currency(required=True)
    amount = Amount(required=True)
    reference_number = fields.String(required=True)


@event("billing", "offline_application_submitted", 1)
class OfflineApplicationSubmittedV1(ApplicationFields):
    pass


class ReviewFields(ApplicationFields):
    reviewer = fields.String(required=True)
    opinion = fields.String(required=True)


@event("billing", "offline_application_approved", 1)
class OfflineApplicationApprovedV1(ReviewFields):
    pass


@event("billing", "offline_application_returned", 1)
class OfflineApplicationReturnedV1(ReviewFields):
    """Back to the applicant, who edits and submits again."""


@event("billing", "offline_application_rejected", 1)
class OfflineApplicationRejectedV1(ReviewFields):
    """Final."""


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


@event("billing", "account_config_deleted", 1)
class AccountConfigDeletedV1(PayloadSchema):
    company_id = fields.String(required=True)


@event("billing", "auto_renewal_failed", 1)
class AutoRenewalFailedV1(PayloadSchema):
    """A device with auto-renewal on expired and the balance could not renew it."""

    company_id = fields.String(required=True)
    device_id = fields.String(required=True)
    package_id = fields.String(required=True)
    expires_at = Timestamp(required=True)
    currency = Currency(required=True)
    amount = Amount(required=True)  # the renewal's price
    balance = SignedAmount(required=True)  # the balance when it was tried
    missing = SignedAmount(required=True)  # what the balance lacked
    reason = fields.String(load_default=None, allow_none=True)


class StatementBalance(PayloadSchema):
    currency = Currency(required=True)
    opening_balance = SignedAmount(required=True)
    total_credits = SignedAmount(required=True)
    total_debits = SignedAmount(required=True)
    closing_balance = SignedAmount(required=True)
    entries = fields.Integer(required=True)


@event("billing", "statement_issued", 1)
class StatementIssuedV1(PayloadSchema):
    """An account's statement for one billing cycle [period_start, period_end)."""

    statement_id = fields.String(required=True)
    company_id = fields.String(required=True)
    cycle = fields.String(required=True, validate=validate.OneOf(("monthly", "quarterly")))
    period_start = Timestamp(required=True)
    period_end = Timestamp(required=True)
    balances = fields.List(fields.Nested(StatementBalance), required=True)
