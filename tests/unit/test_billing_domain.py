"""The ledger's rules, in the words of the product (no I/O)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.billing.domain import (
    Account,
    AccountConfig,
    AutoRenewal,
    InsufficientBalance,
    LedgerRefused,
    OfflineApplication,
    Order,
    Statement,
    cycle_start,
    last_closed_cycle,
    payment_methods,
    renewal_months,
)
from services.common import clock

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
D = Decimal


@pytest.fixture(autouse=True)
def fixed_clock() -> Iterator[clock.FixedClock]:
    before = clock.clock
    clock.clock = clock.FixedClock(T0)
    yield clock.clock
    clock.clock = before


def _order(**overrides: object) -> Order:
    values: dict = {
        "number": "R1",
        "company_id": "c1",
        "order_type": "renewal",
        "currency": "CNY",
        "lines": [
            {"line_id": "R1-1", "device_id": "D1", "amount": D("30.00")},
            {"line_id": "R1-2", "device_id": "D2", "amount": D("90.00")},
        ],
        "total": D("120.00"),
        "created_by": "carl",
        "created_at": T0,
        "lapse_at": T0 + timedelta(hours=24),
    }
    values.update(overrides)
    return Order(**values)


def _application() -> OfflineApplication:
    return OfflineApplication(
        company_id="c1",
        payer="Zhang San",
        currency="CNY",
        amount=D("1000.00"),
        reference_number="BANK-1",
        applicant="sally",
        remark="",
    )


# -- accounts -------------------------------------------------------------------------------
def test_credits_and_debits_carry_the_balance_after_them() -> None:
    account = Account(company_id="c1")
    account.credit(currency="CNY", amount=D("100.00"), reason="recharge", reference="o1")
    account.debit(currency="CNY", amount=D("30.00"), reason="order", reference="o2")
    *_, credited, debited = account.collect_events()
    assert (credited.balance, debited.balance) == (D("100.00"), D("70.00"))
    assert (credited.company_id, debited.reason, debited.reference) == ("c1", "order", "o2")
    assert debited.timestamp == T0  # stamped by the service clock


def test_a_debit_the_balance_does_not_cover_is_refused_and_changes_nothing() -> None:
    account = Account(company_id="c1")
    account.credit(currency="USD", amount=D("10.00"), reason="recharge", reference="o1")
    with pytest.raises(InsufficientBalance):
        account.debit(currency="USD", amount=D("10.01"), reason="order", reference="o2")
    with pytest.raises(InsufficientBalance):
        account.debit(currency="CNY", amount=D("0.01"), reason="order", reference="o3")
    assert account.balances == {"USD": D("10.00")}
    assert account.version == 2


@pytest.mark.parametrize("amount", [D("0.00"), D("-1.00")])
def test_credits_and_debits_must_be_positive(amount: Decimal) -> None:
    account = Account(company_id="c1")
    with pytest.raises(LedgerRefused):
        account.credit(currency="CNY", amount=amount, reason="recharge", reference="x")
    with pytest.raises(LedgerRefused):
        account.debit(currency="CNY", amount=amount, reason="order", reference="x")


def test_every_entry_has_a_known_reason() -> None:
    account = Account(company_id="c1")
    with pytest.raises(LedgerRefused):
        account.credit(currency="CNY", amount=D("1.00"), reason="gift", reference="x")
    account.credit(currency="CNY", amount=D("5.00"), reason="refund", reference="o1:l1")
    with pytest.raises(LedgerRefused):
        account.debit(currency="CNY", amount=D("1.00"), reason="refund", reference="x")


# -- orders ---------------------------------------------------------------------------------
def test_an_order_goes_created_confirmed_paid() -> None:
    order = _order()
    with pytest.raises(LedgerRefused, match="created, not confirmed"):
        order.pay("balance", T0)
    order.confirm(T0)
    with pytest.raises(LedgerRefused):
        order.confirm(T0)  # a double confirmation
    order.pay("wechat_pay", T0, reference="attempt-1")
    assert (order.status, order.method, order.payment_reference) == (
        "paid",
        "wechat_pay",
        "attempt-1",
    )
    for refused in (lambda: order.pay("balance", T0), lambda: order.cancel(T0, "carl")):
        with pytest.raises(LedgerRefused):
            refused()


def test_an_unpaid_order_can_be_cancelled_and_then_nothing_else() -> None:
    order = _order()
    order.cancel(T0, "carl")
    assert order.status == "cancelled"
    for refused in (lambda: order.confirm(T0), lambda: order.lapse(T0 + timedelta(days=9))):
        with pytest.raises(LedgerRefused):
            refused()


def test_an_order_lapses_only_when_its_time_has_come() -> None:
    order = _order()
    order.confirm(T0)
    with pytest.raises(LedgerRefused, match="not due"):
        order.lapse(T0 + timedelta(hours=23))
    assert order.is_due_to_lapse(T0 + timedelta(hours=24))
    order.lapse(T0 + timedelta(hours=24))
    assert order.status == "lapsed" and not order.is_due_to_lapse(T0 + timedelta(days=2))
    with pytest.raises(LedgerRefused):
        order.pay("balance", T0)


def test_a_paid_line_is_refunded_once_and_only_when_paid() -> None:
    order = _order()
    with pytest.raises(LedgerRefused):
        order.refund_line("R1-1", "device suspended", T0)
    order.confirm(T0)
    order.pay("balance", T0)
    assert order.refund_line("R1-2", "device suspended", T0) == D("90.00")
    with pytest.raises(LedgerRefused, match="already refunded"):
        order.refund_line("R1-2", "again", T0)
    with pytest.raises(LedgerRefused, match="no line"):
        order.refund_line("R1-9", "unknown", T0)
    assert order.refunded_total == D("90.00")
    assert order.collect_events()[-1].refunded_total == D("90.00")


def test_failed_attempts_give_the_next_try_a_new_key() -> None:
    order = _order()
    order.confirm(T0)
    order.start_payment("alipay", "a1", T0)
    order.start_payment("alipay", "a1", T0)  # the same attempt again: nothing new
    assert order.failed_attempts("alipay") == 0
    assert order.payment_failed("a1", "alipay", "declined", T0) is True
    assert order.payment_failed("a1", "alipay", "declined", T0) is False
    assert (order.failed_attempts("alipay"), order.failed_attempts("wechat_pay")) == (1, 0)
    assert sum(isinstance(e, Order.PaymentStarted) for e in order.collect_events()) == 1


def test_a_payment_is_credited_back_once() -> None:
    order = _order()
    order.cancel(T0, "carl")
    order.return_payment("a1", "paypal", D("120.00"), "the order was cancelled", T0)
    with pytest.raises(LedgerRefused):
        order.return_payment("a1", "paypal", D("120.00"), "again", T0)


def test_payment_methods_follow_region_currency_and_purpose() -> None:
    assert payment_methods("china", "CNY") == ["balance", "wechat_pay", "alipay"]
    assert payment_methods("china", "CNY", purpose="recharge") == ["wechat_pay", "alipay"]
    assert payment_methods("china", "USD") == []
    assert payment_methods("other", "CNY") == ["balance"]
    assert payment_methods("other", "CNY", purpose="recharge") == []
    assert payment_methods("other", "USD") == ["paypal"]


def test_auto_renewal_periods_follow_the_packages_pricing() -> None:
    assert [renewal_months(p) for p in ("per_year", "per_month", "one_off")] == [12, 1, 1]


def test_one_auto_renewal_per_device_and_expiry() -> None:
    first = AutoRenewal.create_id("D1", T0)
    assert first == AutoRenewal.create_id("D1", T0.astimezone(UTC))
    assert first != AutoRenewal.create_id("D1", T0 + timedelta(days=365))
    assert first != AutoRenewal.create_id("D2", T0)


# -- offline applications -------------------------------------------------------------------
def test_an_application_is_editable_until_it_is_reviewed() -> None:
    filed = _application()
    filed.edit("sally", {"amount": D("1200.00"), "payer": "Zhang San"})
    assert filed.amount == D("1200.00")
    assert filed.collect_events()[-1].changes == {"amount": D("1200.00")}  # only what changed
    with pytest.raises(LedgerRefused, match="applicant"):
        filed.edit("steve", {"amount": D("1.00")})
    filed.submit("sally")
    filed.edit("sally", {"remark": "slip attached"})  # still editable while waiting
    filed.approve("fiona", "slip checked", T0)
    with pytest.raises(LedgerRefused):
        filed.edit("sally", {"amount": D("5.00")})


def test_a_returned_application_goes_back_to_the_applicant_and_a_rejected_one_is_final() -> None:
    filed = _application()
    filed.submit("sally")
    with pytest.raises(LedgerRefused, match="own"):
        filed.return_to_applicant("sally", "no", T0)
    with pytest.raises(LedgerRefused, match="opinion"):
        filed.return_to_applicant("fiona", "   ", T0)
    filed.return_to_applicant("fiona", "wrong amount", T0)
    assert (filed.status, filed.opinion) == ("returned", "wrong amount")
    with pytest.raises(LedgerRefused):
        filed.approve("fiona", "ok", T0)  # not submitted again yet
    filed.edit("sally", {"amount": D("900.00")})
    filed.submit("sally")
    filed.reject("fiona", "no such transfer", T0)
    for refused in (
        lambda: filed.submit("sally"),
        lambda: filed.approve("fiona", "ok", T0),
        lambda: filed.delete("sally"),
    ):
        with pytest.raises(LedgerRefused):
            refused()


def test_only_a_draft_is_deleted_and_only_by_its_applicant() -> None:
    filed = _application()
    with pytest.raises(LedgerRefused):
        filed.delete("steve")
    filed.delete("sally")
    assert filed.status == "deleted"
    with pytest.raises(LedgerRefused):
        filed.submit("sally")
    submitted = _application()
    submitted.submit("sally")
    with pytest.raises(LedgerRefused):
        submitted.delete("sally")


# -- configs and statements -----------------------------------------------------------------
def test_a_config_change_is_recorded_only_when_something_changed() -> None:
    settings = {"region": "china", "billing_cycle": "monthly", "push_emails": ["a@x.cn"]}
    config = AccountConfig(company_id="c1", settings=settings)
    assert config.set(dict(settings)) is False
    assert config.set({**settings, "billing_cycle": "quarterly"}) is True
    config.delete()
    with pytest.raises(LedgerRefused):
        config.delete()
    assert config.set({**settings, "billing_cycle": "quarterly"}) is True  # set up again
    assert config.deleted is False
    kinds = [type(e).__name__ for e in config.collect_events()]
    assert kinds == ["Created", "Changed", "Deleted", "Changed"]


@pytest.mark.parametrize(
    ("cycle", "now", "start", "end"),
    [
        ("monthly", datetime(2026, 3, 15, tzinfo=UTC), (2026, 2, 1), (2026, 3, 1)),
        ("monthly", datetime(2026, 1, 1, tzinfo=UTC), (2025, 12, 1), (2026, 1, 1)),
        ("quarterly", datetime(2026, 3, 31, 23, tzinfo=UTC), (2025, 10, 1), (2026, 1, 1)),
        ("quarterly", datetime(2026, 4, 1, tzinfo=UTC), (2026, 1, 1), (2026, 4, 1)),
    ],
)
def test_the_last_closed_billing_cycle(cycle: str, now: datetime, start: tuple, end: tuple) -> None:
    assert last_closed_cycle(cycle, now) == (
        datetime(*start, tzinfo=UTC),
        datetime(*end, tzinfo=UTC),
    )
    assert cycle_start(cycle, now) == datetime(*end, tzinfo=UTC)


def test_a_statement_must_add_up() -> None:
    part = {
        "currency": "CNY",
        "opening_balance": D("10.00"),
        "total_credits": D("5.00"),
        "total_debits": D("3.00"),
        "closing_balance": D("12.00"),
        "entries": 2,
    }
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    Statement(company_id="c1", cycle="monthly", period_start=start, period_end=end, balances=[part])
    with pytest.raises(LedgerRefused, match="does not add up"):
        Statement(
            company_id="c1",
            cycle="monthly",
            period_start=start,
            period_end=end,
            balances=[{**part, "closing_balance": D("11.99")}],
        )
