"""Billing RPC and HTTP payloads."""

from marshmallow import Schema, fields, validate

from contracts.events.billing import METHODS, ORDER_TYPES
from contracts.events.payments import PROVIDER_METHODS
from contracts.fields import Amount, Currency, SignedAmount, Timestamp
from contracts.rpc import Request
from contracts.rpc.payments import PaymentAttemptOut

ORDER_STATES = ("created", "confirmed", "paid", "cancelled", "lapsed")
APPLICATION_STATES = ("draft", "submitted", "approved", "returned", "rejected")
REGIONS = ("china", "other")
CYCLES = ("monthly", "quarterly")
LANGUAGES = ("zh", "en")


class Paged(Request):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


# -- accounts -------------------------------------------------------------------------------
class BalanceOut(Schema):
    currency = fields.String()
    balance = SignedAmount()


class AccountOut(Schema):
    company_id = fields.String()
    balances = fields.List(fields.Nested(BalanceOut))


class EntryFilter(Paged):
    currency = Currency()
    direction = fields.String(validate=validate.OneOf(("credit", "debit")))
    reason = fields.String()
    reference = fields.String()
    at_from = Timestamp()
    at_to = Timestamp()


class EntryOut(Schema):
    entry_id = fields.String()
    company_id = fields.String()
    sequence = fields.Integer()
    currency = fields.String()
    direction = fields.String()
    amount = Amount()
    balance_after = SignedAmount()
    reason = fields.String()
    reference = fields.String()
    at = Timestamp()


class EntryPage(Schema):
    items = fields.List(fields.Nested(EntryOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


# -- account configs (C4/S2) ----------------------------------------------------------------
def _emails(**kwargs: object) -> fields.List:
    return fields.List(
        # a malformed address is a value breaking a rule (422), not a malformed request
        fields.Email(
            validate=validate.Length(max=254),
            error_messages={"invalid": "is not an e-mail address"},
        ),
        validate=validate.Length(max=20),
        **kwargs,
    )


class AccountConfigIn(Request):
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))
    default_currency = Currency(required=True)
    billing_cycle = fields.String(required=True, validate=validate.OneOf(CYCLES))
    auto_renewal = fields.Boolean(load_default=False)
    push_enabled = fields.Boolean(load_default=True)
    language = fields.String(load_default="zh", validate=validate.OneOf(LANGUAGES))
    push_emails = _emails(load_default=list)


class AccountSettingsIn(Request):
    """C4: change some settings of an existing config (a customer: cycle, auto-renewal and
    push settings only)."""

    billing_cycle = fields.String(validate=validate.OneOf(CYCLES))
    auto_renewal = fields.Boolean()
    push_enabled = fields.Boolean()
    language = fields.String(validate=validate.OneOf(LANGUAGES))
    push_emails = _emails()
    region = fields.String(validate=validate.OneOf(REGIONS))
    default_currency = Currency()


class AccountConfigOut(Schema):
    company_id = fields.String()
    region = fields.String()
    default_currency = fields.String()
    billing_cycle = fields.String()
    auto_renewal = fields.Boolean()
    push_enabled = fields.Boolean()
    language = fields.String()
    push_emails = fields.List(fields.String())
    changed_by = fields.String(allow_none=True)
    changed_at = Timestamp()


class ConfigFilter(Request):
    company_id = fields.String()  # the company whose children are listed (default: yours)
    whole_subtree = fields.Boolean(load_default=False)
    configured = fields.Boolean()


class CompanyConfigOut(Schema):
    company_id = fields.String()
    parent_id = fields.String(allow_none=True)
    name = fields.String()
    region = fields.String()
    configured = fields.Boolean()
    config = fields.Nested(AccountConfigOut, allow_none=True)


# -- offline recharge (S1/F1) ---------------------------------------------------------------
class OfflineApplicationIn(Request):
    company_id = fields.String(required=True)
    payer = fields.String(required=True, validate=validate.Length(min=1, max=200))
    currency = Currency(required=True)
    amount = Amount(required=True)
    reference_number = fields.String(required=True, validate=validate.Length(min=1, max=100))
    remark = fields.String(load_default="", validate=validate.Length(max=500))
    submit = fields.Boolean(load_default=False)


class OfflineApplicationEdit(Request):
    """S1: correct an application until it is reviewed; ``submit`` sends it on."""

    company_id = fields.String()
    payer = fields.String(validate=validate.Length(min=1, max=200))
    currency = Currency()
    amount = Amount()
    reference_number = fields.String(validate=validate.Length(min=1, max=100))
    remark = fields.String(validate=validate.Length(max=500))
    submit = fields.Boolean(load_default=False)


class ReviewIn(Request):
    decision = fields.String(
        required=True, validate=validate.OneOf(("approve", "return", "reject"))
    )
    opinion = fields.String(
        required=True,
        validate=[
            validate.Length(min=1, max=500),
            validate.Regexp(r"\S", error="an opinion is required"),
        ],
    )


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
    submitted_at = Timestamp(allow_none=True)
    reviewed_at = Timestamp(allow_none=True)
    changed_at = Timestamp()
    history = fields.List(fields.Nested(HistoryOut))


class ApplicationFilter(Request):
    status = fields.String(validate=validate.OneOf(APPLICATION_STATES))
    pending = fields.Boolean()  # true: waiting for review (F1); false: the reviewed ones
    company_id = fields.String()
    currency = Currency()
    reference_number = fields.String()
    payer = fields.String()  # part of the name
    applicant = fields.String()
    reviewer = fields.String()
    amount = Amount()
    amount_min = Amount()
    amount_max = Amount()
    created_from = Timestamp()
    created_to = Timestamp()
    duplicate_reference = fields.Boolean()


# -- renewal center and orders (C1/C2/C3) ---------------------------------------------------
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


def _months() -> fields.Integer:
    # the screen offers 6, 12 and 24 months, or a custom count
    return fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=120))


def _idempotency_key() -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=100))


class RenewalOrderIn(Request):
    device_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=32)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    months = _months()
    idempotency_key = _idempotency_key()  # the same key twice gives the same order


class ValueAddedOrderIn(Request):
    binding_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=1000),
    )
    months = _months()
    idempotency_key = _idempotency_key()


class RechargeIn(Request):
    currency = Currency(required=True)
    amount = Amount(required=True)
    method = fields.String(required=True, validate=validate.OneOf(PROVIDER_METHODS))
    company_id = fields.String()  # default: your company
    idempotency_key = _idempotency_key()


class PayIn(Request):
    method = fields.String(required=True, validate=validate.OneOf(METHODS[:-1]))


class RefundIn(Request):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))


class OrderLineOut(Schema):
    line_id = fields.String()
    device_id = fields.String()
    binding_id = fields.String(allow_none=True)
    package_id = fields.String()
    package_name = fields.String()
    months = fields.Integer()
    unit_price = Amount()
    amount = Amount()
    refunded = fields.Boolean()


class OrderOut(Schema):
    order_id = fields.String()
    order_number = fields.String()
    company_id = fields.String()
    order_type = fields.String()
    status = fields.String()
    currency = fields.String()
    total = Amount()
    refunded_total = SignedAmount()
    method = fields.String(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    created_by = fields.String()
    created_at = Timestamp()
    confirmed_at = Timestamp(allow_none=True)
    paid_at = Timestamp(allow_none=True)
    lapse_at = Timestamp(allow_none=True)
    payment_methods = fields.List(fields.String())
    lines = fields.List(fields.Nested(OrderLineOut))
    history = fields.List(fields.Nested(HistoryOut))
    # only when a payment with a provider was just started: show its QR code or link
    payment = fields.Nested(PaymentAttemptOut, allow_none=True)


class OrderFilter(Paged):
    status = fields.String(validate=validate.OneOf(ORDER_STATES))
    order_type = fields.String(validate=validate.OneOf(ORDER_TYPES))
    method = fields.String(validate=validate.OneOf(METHODS))
    currency = Currency()
    company_id = fields.String()
    order_number = fields.String()
    created_from = Timestamp()
    created_to = Timestamp()
    paid_from = Timestamp()
    paid_to = Timestamp()


class ExportFilter(Request):
    """F2: the list's filters without paging; the export holds every matching order."""

    status = fields.String(validate=validate.OneOf(ORDER_STATES))
    order_type = fields.String(validate=validate.OneOf(ORDER_TYPES))
    method = fields.String(validate=validate.OneOf(METHODS))
    currency = Currency()
    company_id = fields.String()
    created_from = Timestamp()
    created_to = Timestamp()
    paid_from = Timestamp()
    paid_to = Timestamp()


class OrderPage(Schema):
    items = fields.List(fields.Nested(OrderOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class ExportRowOut(Schema):
    order_id = fields.String()
    order_number = fields.String()
    order_type = fields.String()
    status = fields.String()
    company_id = fields.String()
    company_name = fields.String(allow_none=True)
    currency = fields.String()
    total = Amount()
    refunded_total = SignedAmount()
    method = fields.String(allow_none=True)
    payment_reference = fields.String(allow_none=True)
    line_count = fields.Integer()
    created_by = fields.String()
    created_at = Timestamp()
    paid_at = Timestamp(allow_none=True)


class ExportPage(Schema):
    items = fields.List(fields.Nested(ExportRowOut))
    next = fields.List(fields.String(), allow_none=True)


# -- statements and auto-renewals -----------------------------------------------------------
class StatementBalanceOut(Schema):
    currency = fields.String()
    opening_balance = SignedAmount()
    total_credits = SignedAmount()
    total_debits = SignedAmount()
    closing_balance = SignedAmount()
    entries = fields.Integer()


class StatementOut(Schema):
    statement_id = fields.String()
    company_id = fields.String()
    cycle = fields.String()
    period_start = Timestamp()
    period_end = Timestamp()
    issued_at = Timestamp()
    balances = fields.List(fields.Nested(StatementBalanceOut))


class StatementEntriesOut(Schema):
    items = fields.List(fields.Nested(EntryOut))
    next = fields.Integer(allow_none=True)


class AutoRenewalFilter(Request):
    company_id = fields.String()
    device_id = fields.String()
    outcome = fields.String(validate=validate.OneOf(("renewed", "failed")))


class AutoRenewalOut(Schema):
    renewal_id = fields.String()
    device_id = fields.String()
    company_id = fields.String()
    package_id = fields.String()
    expires_at = Timestamp()
    outcome = fields.String()
    order_id = fields.String(allow_none=True)
    currency = fields.String()
    amount = Amount()
    balance = SignedAmount()
    missing = SignedAmount()
    reason = fields.String(allow_none=True)
    at = Timestamp()
