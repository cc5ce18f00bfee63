"""The rules of the ledger and the device registry, in the words of the product."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.billing.domain import (
    Account,
    InsufficientBalance,
    LedgerRefused,
    OfflineApplication,
    Order,
    payment_methods,
)
from services.devices.domain import Device, DeviceRefused, add_months

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_calendar_months_clamp_to_the_end_of_the_month() -> None:
    assert add_months(T0, 1) == datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
    assert add_months(T0, 12) == datetime(2027, 1, 31, 12, 0, tzinfo=UTC)
    assert add_months(datetime(2027, 12, 31, tzinfo=UTC), 2) == datetime(2028, 2, 29, tzinfo=UTC)


def test_a_balance_never_goes_negative() -> None:
    account = Account(company_id="c1")
    account.credit(currency="CNY", amount=Decimal("100.00"), reason="recharge", reference="r1")
    account.debit(currency="CNY", amount=Decimal("60.00"), reason="order", reference="o1")
    with pytest.raises(InsufficientBalance):
        account.debit(currency="CNY", amount=Decimal("40.01"), reason="order", reference="o2")
    assert account.balance("CNY") == Decimal("40.00")
    assert account.balance("USD") == Decimal("0.00")  # balances are kept per currency


def _order() -> Order:
    return Order(
        number="R1",
        company_id="c1",
        order_type="renewal",
        currency="CNY",
        lines=[],
        total=Decimal("120.00"),
        created_by="customer",
        created_at=T0,
    )


def test_only_a_confirmed_order_can_be_paid() -> None:
    order = _order()
    with pytest.raises(LedgerRefused):
        order.pay("balance", T0)
    order.confirm(T0)
    order.pay("balance", T0)
    assert order.status == "paid"
    with pytest.raises(LedgerRefused):
        order.cancel(T0, "customer")


def test_nobody_reviews_their_own_application() -> None:
    filed = OfflineApplication(
        company_id="c1",
        payer="Zhang San",
        currency="CNY",
        amount=Decimal("1000.00"),
        reference_number="BANK-1",
        applicant="sales",
        remark="",
    )
    filed.submit(by="sales")
    with pytest.raises(LedgerRefused):
        filed.approve("sales", "looks fine", T0)
    with pytest.raises(LedgerRefused):
        filed.approve("finance", "  ", T0)  # always with an opinion
    filed.approve("finance", "slip checked", T0)
    assert filed.status == "approved"


def test_payment_methods_follow_region_and_currency() -> None:
    assert payment_methods("china", "CNY") == ["balance", "wechat_pay", "alipay"]
    assert payment_methods("china", "USD") == []
    assert payment_methods("other", "CNY") == ["balance"]
    assert payment_methods("other", "USD") == ["paypal"]
    assert payment_methods("other", "USD", purpose="recharge") == ["paypal"]


def test_a_renewal_counts_from_the_later_of_expiry_and_payment() -> None:
    device = Device(imei="860000000000001", device_type="GT06", company_id="c1", expires_at=T0)
    paid = datetime(2026, 3, 15, 9, 0, tzinfo=UTC)
    assert device.renew("o1", "o1-1", 12, paid) == datetime(2027, 3, 15, 9, 0, tzinfo=UTC)
    # the same order line again changes nothing
    assert device.renew("o1", "o1-1", 12, paid) == datetime(2027, 3, 15, 9, 0, tzinfo=UTC)
    assert len(device.renewed_lines) == 1


def test_a_suspended_device_is_not_renewed() -> None:
    device = Device(imei="860000000000002", device_type="GT06", company_id="c1", expires_at=T0)
    device.suspended = True
    with pytest.raises(DeviceRefused):
        device.renew("o1", "o1-1", 12, T0)


def test_expiry_is_recorded_once_per_expiry() -> None:
    device = Device(imei="860000000000003", device_type="GT06", company_id="c1", expires_at=T0)
    assert device.mark_expired(datetime(2026, 2, 1, tzinfo=UTC)) is True
    assert device.mark_expired(datetime(2026, 2, 2, tzinfo=UTC)) is False
