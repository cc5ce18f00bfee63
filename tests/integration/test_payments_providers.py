"""Payments against the three provider simulators: real HTTP, real keys, real PostgreSQL.

Every scenario runs for WeChat Pay, Alipay and PayPal. The simulators call back to a local
server that hands each callback to the application exactly as the gateway does, so what is
tested is the protocol work (signing, verification, decryption, matching, checking) and the
store's exactly-once guarantee; the gateway route itself is a thin pass-through.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import requests

from services.common import clock
from services.common.actor import SYSTEM, Actor
from services.common.errors import Conflict, Forbidden
from services.common.relay import build_envelopes
from services.payments.application import PaymentsApplication
from services.payments.config import load_settings
from services.payments.providers.base import NewTrade
from services.payments.relay import to_wire
from services.payments.simulators import Simulators
from tests.support import simulators as support
from tests.support.simulators import poll, set_behaviour

pytestmark = pytest.mark.integration

# fixtures from the support module
sim_keys_dir = support.sim_keys_dir
callback_server = support.callback_server
simulators = support.simulators

METHODS = ("wechat_pay", "alipay", "paypal")
CURRENCY = {"wechat_pay": "CNY", "alipay": "CNY", "paypal": "USD"}
# the callback that reports the money (PayPal first tells us of the approval, then the capture)
PAID_KIND = {
    "wechat_pay": "TRANSACTION.SUCCESS",
    "alipay": "TRADE_SUCCESS",
    "paypal": "PAYMENT.CAPTURE.COMPLETED",
}


@pytest.fixture
def app(
    pg_store: Any, simulators: Simulators, callback_server: support.CallbackServer
) -> Iterator[PaymentsApplication]:
    settings = load_settings(
        {
            **simulators.env,
            "IOTB_PAYMENTS_HTTP_TIMEOUT": "2",
            "IOTB_PAYMENTS_RECONCILE_AFTER": "0",
        }
    )
    found = PaymentsApplication(pg_store("payments"), settings=settings)
    callback_server.target = found.handle_callback
    yield found
    callback_server.target = None
    found.close()


def start(app: PaymentsApplication, method: str, amount: str = "88.80", **extra: Any) -> dict:
    request = {
        "purpose": "order",
        "reference_id": "order-1",
        "company_id": "c1",
        "method": method,
        "amount": Decimal(amount),
        "currency": CURRENCY[method],
        "description": "renewal, 2 devices",
        "idempotency_key": None,
        **extra,
    }
    return app.start_payment(SYSTEM, request)


def trade_of(attempt: dict) -> str:
    """The simulator's name for the trade: PayPal's order id, else our trade number."""
    return attempt["provider_ref"] or attempt["out_trade_no"]


def pay(sims: Simulators, method: str, attempt: dict, outcome: str = "success") -> dict:
    answer = requests.post(
        f"{sims.by_method(method).url}/_sim/pay/{trade_of(attempt)}",
        json={"outcome": outcome, "wait": True},
        timeout=120,
    )
    answer.raise_for_status()
    return answer.json()


def wire(app: PaymentsApplication) -> list[dict]:
    """Every envelope the relay would publish, validated against the contracts."""
    found = []
    for note in app.recorder.select_notifications(start=1, limit=100_000):
        event = app.mapper.to_domain_event(note)
        found += build_envelopes("payments", note.id, event, to_wire, app)
    return found


def published(app: PaymentsApplication) -> Counter:
    return Counter(e["type"] for e in wire(app))


def status(app: PaymentsApplication, attempt: dict) -> str:
    return app.attempt_view(attempt["attempt_id"])["status"]


def deliveries(sims: Simulators, method: str, kind: str | None = None) -> list:
    sim = sims.by_method(method)
    sim.dispatcher.wait()
    return [d for d in sim.dispatcher.deliveries if kind is None or d.kind == kind]


def settled(app: PaymentsApplication, attempt: dict, wanted: str = "succeeded") -> None:
    poll(lambda: status(app, attempt) == wanted, timeout=30)


# -- the happy path and failures ------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_a_payment_succeeds_once_through_the_simulator(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    # billing starts a payment: the payer gets a QR code or an approve link
    attempt = start(app, method)
    assert attempt["status"] == "pending"
    assert attempt["code_url"] or attempt["approve_url"]
    # the payer pays; the provider calls back (PayPal: approval, our capture, capture webhook)
    pay(simulators, method, attempt)
    settled(app, attempt)
    view = app.attempt_view(attempt["attempt_id"])
    assert view["provider_trade_no"] and view["paid_at"] is not None
    # one payment_succeeded, with the attempt's money
    events = [e for e in wire(app) if e["type"] == "payment_succeeded"]
    assert len(events) == 1
    assert events[0]["data"]["amount"] == "88.80"
    assert events[0]["data"]["currency"] == CURRENCY[method]
    assert events[0]["data"]["reference_id"] == "order-1"
    # and the provider heard that we recorded it
    paid = deliveries(simulators, method, PAID_KIND[method])
    assert paid and all(d.acknowledged == d.copies for d in paid)


@pytest.mark.parametrize(
    ("method", "outcome", "final", "settle_by_query"),
    [
        ("wechat_pay", "fail", "failed", True),  # Native pay sends no callback for this
        ("alipay", "fail", "closed", False),  # TRADE_CLOSED notify
        ("paypal", "decline", "failed", False),  # capture DECLINED (order COMPLETED!)
    ],
)
def test_a_failed_payment_publishes_payment_failed(
    app: PaymentsApplication,
    simulators: Simulators,
    method: str,
    outcome: str,
    final: str,
    settle_by_query: bool,
) -> None:
    attempt = start(app, method)
    pay(simulators, method, attempt, outcome)
    if settle_by_query:
        app.reconcile()
    settled(app, attempt, final)
    assert published(app) == Counter({"payment_failed": 1})


# -- exactly once ---------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_a_thousand_identical_callbacks_make_one_payment_succeeded(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    attempt = start(app, method)
    sim = simulators.by_method(method)
    set_behaviour(sim.url, duplicate=1000, concurrency=50, only=[PAID_KIND[method]])
    pay(simulators, method, attempt)
    settled(app, attempt)
    # every copy was answered "received", and only one payment came of them
    (storm,) = poll(
        lambda: [d for d in deliveries(simulators, method, PAID_KIND[method]) if d.done]
    )
    assert storm.copies == 1000 and len(storm.statuses) == 1000
    assert storm.acknowledged == 1000
    assert published(app)["payment_succeeded"] == 1
    # a later query reports the same payment, and closing it is refused: still one
    assert app.reconcile_attempt(UUID(attempt["attempt_id"]), clock.now()) == "settled"
    assert (
        app.provider(method).query(attempt["out_trade_no"], attempt["provider_ref"]).state == "paid"
    )
    assert (
        app.apply_report(
            app.provider(method).query(attempt["out_trade_no"], attempt["provider_ref"]), "query"
        )
        == "duplicate"
    )
    with pytest.raises(Conflict):
        app.close_attempt(SYSTEM, attempt["attempt_id"])
    assert published(app)["payment_succeeded"] == 1


@pytest.mark.parametrize("method", METHODS)
def test_client_retries_with_an_idempotency_key_get_the_same_answer(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    # ten concurrent retries of the same request: one attempt, one trade at the provider
    answers: list[dict] = []

    def retry() -> None:
        answers.append(start(app, method, idempotency_key="pay-order-1"))

    threads = [threading.Thread(target=retry) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({a["attempt_id"] for a in answers}) == 1
    assert len({(a["code_url"], a["approve_url"]) for a in answers}) == 1
    sim = simulators.by_method(method)
    assert len(sim.trades) == 1
    # the same key with another body is refused and changes nothing
    with pytest.raises(Conflict) as refused:
        start(app, method, amount="1.00", idempotency_key="pay-order-1")
    assert "idempotency_key" in refused.value.fields
    assert app.attempt_view(answers[0]["attempt_id"])["amount"] == Decimal("88.80")


# -- callbacks we must not trust --------------------------------------------------------------
@pytest.mark.parametrize("tamper", ["byte", "key", "stale"])
@pytest.mark.parametrize("method", METHODS)
def test_an_untrustworthy_callback_is_rejected_and_records_nothing(
    app: PaymentsApplication, simulators: Simulators, method: str, tamper: str
) -> None:
    attempt = start(app, method)
    before = app.recorder.max_notification_id()
    set_behaviour(simulators.by_method(method).url, tamper=tamper)
    pay(simulators, method, attempt)
    (sent,) = deliveries(simulators, method)
    assert sent.acknowledged == 0 and sent.statuses and all(s < 0 for s in sent.statuses)
    # nothing recorded: not one event since the callback
    assert app.recorder.max_notification_id() == before
    assert status(app, attempt) == "pending"
    # the payment itself is real: reconciliation asks the provider and settles it
    set_behaviour(simulators.by_method(method).url)
    app.reconcile()
    settled(app, attempt)
    assert published(app) == Counter({"payment_succeeded": 1})


@pytest.mark.parametrize("tamper", ["amount", "currency", "merchant"])
@pytest.mark.parametrize("method", METHODS)
def test_a_payment_that_does_not_match_credits_nothing(
    app: PaymentsApplication, simulators: Simulators, method: str, tamper: str
) -> None:
    attempt = start(app, method)
    set_behaviour(simulators.by_method(method).url, tamper=tamper, duplicate=3)
    pay(simulators, method, attempt)
    (sent,) = deliveries(simulators, method)
    assert sent.acknowledged == 0  # refused: the provider keeps the matter open
    # no payment recorded; one payment_mismatch for people to look at, however often sent
    assert status(app, attempt) == "mismatch"
    assert published(app) == Counter({"payment_mismatch": 1})
    mismatch = next(e for e in wire(app) if e["type"] == "payment_mismatch")
    assert mismatch["data"]["attempt_id"] == attempt["attempt_id"]


def test_a_verified_callback_for_a_trade_we_never_started_is_refused(
    app: PaymentsApplication, simulators: Simulators
) -> None:
    # someone else's trade at the same provider account: signed, but not ours to match

    provider = app.provider("wechat_pay")
    provider.create(
        NewTrade(
            "PFOREIGN000000000000000000000001",
            Decimal("5.00"),
            "CNY",
            "x",
            clock.now() + timedelta(hours=1),
        )
    )
    before = app.recorder.max_notification_id()
    requests.post(
        f"{simulators.wechat.url}/_sim/pay/PFOREIGN000000000000000000000001",
        json={"wait": True},
        timeout=30,
    )
    (sent,) = deliveries(simulators, "wechat_pay")
    assert sent.statuses == [-404]
    assert app.recorder.max_notification_id() == before


# -- lost callbacks and late payments ---------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_a_dropped_callback_is_settled_by_reconciliation(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    attempt = start(app, method)
    set_behaviour(simulators.by_method(method).url, drop=True)
    pay(simulators, method, attempt)
    assert all(d.dropped for d in deliveries(simulators, method))
    assert status(app, attempt) == "pending"
    # the timer's round: query the provider, settle (PayPal: capture the approved order)
    counts = app.reconcile()
    assert counts == {"succeeded": 1}
    assert status(app, attempt) == "succeeded"
    app.reconcile()  # a second round finds nothing to do
    assert published(app) == Counter({"payment_succeeded": 1})


@pytest.mark.parametrize("method", METHODS)
def test_reordered_and_delayed_callbacks_still_make_one_payment(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    first, second = start(app, method), start(app, method, reference_id="order-2")
    set_behaviour(simulators.by_method(method).url, reorder=2, delay=0.2, only=[PAID_KIND[method]])
    pay(simulators, method, first)
    pay(simulators, method, second)
    settled(app, first)
    settled(app, second)
    assert published(app) == Counter({"payment_succeeded": 2})


@pytest.mark.parametrize("method", METHODS)
def test_a_late_success_after_the_order_was_paid_another_way_is_still_published(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    # the order is paid by one attempt; a second attempt for it is paid later at the provider
    other = "paypal" if method != "paypal" else "wechat_pay"
    first = start(app, other, amount="88.80" if other != "paypal" else "12.00")
    late = start(app, method)
    pay(simulators, other, first)
    settled(app, first)
    set_behaviour(simulators.by_method(method).url, drop=True)
    pay(simulators, method, late)
    if method == "paypal":
        app.reconcile()  # PayPal moves money only when we capture the approved order
    else:
        # billing, seeing the order paid, closes the other attempt: the provider says it
        # was paid in the meantime, and that payment counts
        app.close_attempt(SYSTEM, late["attempt_id"])
    assert status(app, late) == "succeeded"
    succeeded = [e for e in wire(app) if e["type"] == "payment_succeeded"]
    assert {e["data"]["attempt_id"] for e in succeeded} == {first["attempt_id"], late["attempt_id"]}
    assert {e["data"]["reference_id"] for e in succeeded} == {"order-1"}


def test_a_payment_after_the_attempt_was_closed_is_credited_not_kept(
    app: PaymentsApplication, simulators: Simulators
) -> None:
    # Alipay knows a precreated trade only once it is scanned, so "close" cannot stop a payer
    # holding the QR code: when that payment arrives, it succeeds, marked late
    attempt = start(app, "alipay")
    closed = app.close_attempt(SYSTEM, attempt["attempt_id"])
    assert closed["status"] == "closed"
    pay(simulators, "alipay", attempt)
    settled(app, attempt)
    assert app.attempt_view(attempt["attempt_id"])["late"] is True
    events = wire(app)
    assert [e["type"] for e in events] == ["payment_failed", "payment_succeeded"]
    assert events[1]["data"]["late"] is True


# -- providers that do not answer ---------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_a_provider_timeout_leaves_the_attempt_to_a_retry(
    app: PaymentsApplication, simulators: Simulators, method: str
) -> None:
    sim_url = simulators.by_method(method).url
    set_behaviour(sim_url, timeout=4)
    with pytest.raises(Conflict):
        start(app, method, idempotency_key="k-timeout")
    # reconciliation cannot ask either: it keeps the attempt pending (PayPal: we hold no
    # order id yet, so there is nothing to ask; the retry's PayPal-Request-Id finds it)
    assert app.reconcile() == ({"pending": 1} if method == "paypal" else {"skipped": 1})
    assert app.attempt_view(app.list_attempts(SYSTEM, {})[0]["attempt_id"])["status"] == "pending"
    set_behaviour(sim_url)
    again = start(app, method, idempotency_key="k-timeout")
    assert again["status"] == "pending" and (again["code_url"] or again["approve_url"])
    pay(simulators, method, again)
    settled(app, again)
    assert published(app) == Counter({"payment_succeeded": 1})


@pytest.mark.parametrize("method", METHODS)
def test_reconciliation_closes_an_attempt_unpaid_past_its_expiry(
    pg_store: Any, simulators: Simulators, callback_server: support.CallbackServer, method: str
) -> None:
    settings = load_settings(
        {**simulators.env, "IOTB_PAYMENTS_RECONCILE_AFTER": "0", "IOTB_PAYMENTS_ATTEMPT_TTL": "0"}
    )
    app = PaymentsApplication(pg_store("payments"), settings=settings)
    try:
        attempt = start(app, method)
        assert app.reconcile() == {"closed": 1}
        assert status(app, attempt) == "closed"
        assert published(app) == Counter({"payment_failed": 1})
        failed = wire(app)[0]["data"]
        assert failed["status"] == "closed" and "expired" in failed["reason"]
    finally:
        app.close()


# -- scope --------------------------------------------------------------------------------------
def test_attempts_are_read_within_the_company_subtree_only(app: PaymentsApplication) -> None:
    app.record_company(
        1, {"company_id": "root", "parent_id": None, "name": "Vendor", "region": "china"}
    )
    app.record_company(
        1, {"company_id": "c1", "parent_id": "root", "name": "Customer", "region": "china"}
    )
    app.record_company(
        1, {"company_id": "c2", "parent_id": "root", "name": "Other", "region": "china"}
    )
    customer = Actor("u1", "alice", "customer", "c1")
    attempt = app.start_payment(
        customer,
        {
            "purpose": "recharge",
            "reference_id": "r-1",
            "company_id": "c1",
            "method": "wechat_pay",
            "amount": Decimal("100.00"),
            "currency": "CNY",
            "description": "",
            "idempotency_key": None,
        },
    )
    assert (
        app.get_attempt(Actor("u0", "boss", "admin", "root"), attempt["attempt_id"])["status"]
        == "pending"
    )
    with pytest.raises(Forbidden):
        app.get_attempt(Actor("u2", "bob", "customer", "c2"), attempt["attempt_id"])
    with pytest.raises(Forbidden):
        app.start_payment(
            Actor("u2", "bob", "customer", "c2"),
            {
                "purpose": "recharge",
                "reference_id": "r-2",
                "company_id": "c1",
                "method": "wechat_pay",
                "amount": Decimal("1.00"),
                "currency": "CNY",
                "description": "",
                "idempotency_key": None,
            },
        )
