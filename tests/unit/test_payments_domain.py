"""Payment attempts in the words of the product: exactly once, never silently kept, exact
money in each provider's unit (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from contracts.envelope import dump_payload, parse
from contracts.rpc import load
from contracts.rpc.payments import StartPaymentIn
from services.common.errors import BadRequest, ValidationFailed
from services.payments.domain import (
    PaymentAttempt,
    PaymentRefused,
    attempt_id,
    check_method,
    request_fingerprint,
    trade_number,
)
from services.payments.providers.base import (
    from_decimal_string,
    from_fen,
    to_decimal_string,
    to_fen,
)

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _attempt(
    amount: str = "88.80", method: str = "wechat_pay", currency: str = "CNY"
) -> PaymentAttempt:
    return PaymentAttempt(
        out_trade_no=trade_number("c1", None),
        purpose="order",
        reference_id="order-1",
        company_id="c1",
        method=method,
        amount=Decimal(amount),
        currency=currency,
        description="renewal",
        scene="qr",
        fingerprint="f",
        idempotency_key=None,
        created_at=T0,
        expires_at=T0 + timedelta(hours=2),
    )


def _events(attempt: PaymentAttempt) -> list[str]:
    return [type(e).__name__ for e in attempt.collect_events()]


def test_a_payment_succeeds_once_however_often_it_is_reported() -> None:
    attempt = _attempt()
    assert attempt.succeed("4200001", T0, "callback") is True
    for source in ("callback", "query", "reconciliation"):
        assert attempt.succeed("4200001", T0, source) is False
    assert _events(attempt) == ["Created", "Succeeded"]
    assert attempt.status == "succeeded"


def test_a_success_after_close_or_failure_still_counts_and_is_marked_late() -> None:
    closed = _attempt()
    closed.close("closed on request", T0)
    assert closed.succeed("4200002", T0, "callback") is True
    assert closed.status == "succeeded"
    late = [e for e in closed.collect_events() if type(e).__name__ == "Succeeded"]
    assert late[0].late is True
    failed = _attempt()
    failed.fail("PAYERROR", T0)
    assert failed.succeed("4200003", T0, "query") is True


def test_a_succeeded_attempt_cannot_fail_or_close() -> None:
    attempt = _attempt()
    attempt.succeed("4200004", T0, "callback")
    assert attempt.fail("late failure", T0) is False
    assert attempt.close("too late", T0) is False
    assert attempt.report_mismatch("amount differs", Decimal("1.00"), "CNY") is False
    assert attempt.status == "succeeded"


def test_a_mismatch_is_recorded_once_per_distinct_report() -> None:
    attempt = _attempt()
    problems = attempt.differences(Decimal("88.81"), "CNY")
    assert problems == ["amount 88.81 differs from 88.80"]
    assert attempt.report_mismatch(problems[0], Decimal("88.81"), "CNY") is True
    assert attempt.report_mismatch(problems[0], Decimal("88.81"), "CNY") is False
    assert attempt.status == "mismatch"
    assert attempt.differences(Decimal("88.80"), "USD") == ["currency USD differs from CNY"]
    assert attempt.differences(None, None) == [
        "amount None differs from 88.80",
        "currency None differs from CNY",
    ]
    assert attempt.differences(Decimal("88.8"), "CNY") == []  # the same amount, exactly


def test_the_provider_link_is_recorded_once() -> None:
    attempt = _attempt()
    assert attempt.link("weixin://wxpay/bizpayurl?pr=abc", None, None) is True
    assert attempt.link("weixin://wxpay/bizpayurl?pr=other", None, None) is False
    assert attempt.code_url == "weixin://wxpay/bizpayurl?pr=abc"


def test_wechat_and_alipay_take_cny_only_and_paypal_usd_only() -> None:
    check_method("wechat_pay", "CNY", "qr")
    check_method("alipay", "CNY", "page")
    check_method("paypal", "USD", "page")
    for method, currency, scene in [
        ("wechat_pay", "USD", "qr"),
        ("alipay", "USD", "qr"),
        ("paypal", "CNY", "page"),
        ("wechat_pay", "CNY", "page"),
        ("balance", "CNY", "qr"),
    ]:
        with pytest.raises(PaymentRefused):
            check_method(method, currency, scene)


def test_trade_numbers_fit_every_provider_and_follow_the_idempotency_key() -> None:
    keyed = trade_number("c1", "key-1")
    assert keyed == trade_number("c1", "key-1")
    assert keyed != trade_number("c2", "key-1")  # keys are per company
    assert trade_number("c1", None) != trade_number("c1", None)
    for number in (keyed, trade_number("c1", None)):
        assert len(number) == 32 and number.isalnum()
    assert attempt_id(keyed) == attempt_id(keyed)


def test_the_fingerprint_sees_a_changed_body() -> None:
    base = {"purpose": "order", "reference_id": "o1", "company_id": "c1", "method": "alipay"}
    base |= {"amount": Decimal("10.00"), "currency": "CNY", "description": "", "scene": "qr"}
    assert request_fingerprint(base) == request_fingerprint(dict(base))
    assert request_fingerprint(base) != request_fingerprint({**base, "amount": Decimal("10.01")})
    assert request_fingerprint(base) != request_fingerprint({**base, "scene": "page"})


@pytest.mark.parametrize(
    ("amount", "fen", "text"),
    [("0.01", 1, "0.01"), ("88.80", 8880, "88.80"), ("10000000.00", 1000000000, "10000000.00")],
)
def test_amounts_convert_exactly_to_each_protocols_unit(amount: str, fen: int, text: str) -> None:
    value = Decimal(amount)
    assert to_fen(value) == fen and from_fen(fen) == value
    assert to_decimal_string(value) == text and from_decimal_string(text) == value


@pytest.mark.parametrize("bad", [Decimal("0.001"), Decimal("1.005")])
def test_fractions_of_a_cent_never_reach_a_provider(bad: Decimal) -> None:
    with pytest.raises(ValueError):
        to_fen(bad)
    with pytest.raises(ValueError):
        to_decimal_string(bad)


@pytest.mark.parametrize("bad", [1.5, "88.8", True, None])
def test_fen_must_be_an_integer(bad: object) -> None:
    with pytest.raises(ValueError):
        from_fen(bad)


@pytest.mark.parametrize("bad", ["1.001", "abc", "NaN", 12, None])
def test_decimal_strings_are_read_exactly(bad: object) -> None:
    with pytest.raises(ValueError):
        from_decimal_string(bad)


def test_start_payment_requests_are_checked_before_anything_happens() -> None:
    good = {
        "purpose": "order",
        "reference_id": "o1",
        "company_id": "c1",
        "method": "wechat_pay",
        "amount": "88.80",
        "currency": "CNY",
    }
    loaded = load(StartPaymentIn(), good)
    assert loaded["amount"] == Decimal("88.80") and loaded["scene"] is None
    with pytest.raises(ValidationFailed):
        load(StartPaymentIn(), {**good, "amount": "88.801"})
    with pytest.raises(ValidationFailed):
        load(StartPaymentIn(), {**good, "scene": "nfc"})
    with pytest.raises(ValidationFailed):
        load(StartPaymentIn(), {**good, "amount": 88.8})  # a float is never money
    with pytest.raises(BadRequest):
        load(StartPaymentIn(), {**good, "card_number": "4111"})


def test_payment_events_match_their_contracts() -> None:
    fields = {
        "attempt_id": "a1",
        "purpose": "recharge",
        "reference_id": "r1",
        "company_id": "c1",
        "method": "paypal",
        "amount": Decimal("12.00"),
        "currency": "USD",
        "out_trade_no": "P123",
    }
    _, succeeded = dump_payload(
        "payments",
        "payment_succeeded",
        {**fields, "provider_trade_no": "CAP1", "paid_at": T0, "late": True, "source": "callback"},
    )
    assert succeeded["amount"] == "12.00" and succeeded["late"] is True
    envelope = {
        "id": "e1",
        "type": "payment_succeeded",
        "version": 1,
        "source": "payments",
        "subject": "a1",
        "sequence": 3,
        "time": T0.isoformat(),
        "data": {k: v for k, v in succeeded.items() if k not in ("late", "source", "out_trade_no")},
    }
    # a consumer reading an event without the optional fields gets their defaults
    assert parse(envelope).data["late"] is False
    _, failed = dump_payload(
        "payments", "payment_failed", {**fields, "reason": "expired", "status": "closed"}
    )
    assert failed["status"] == "closed"
