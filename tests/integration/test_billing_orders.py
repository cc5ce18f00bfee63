"""C1-C3 and F2 against the real PostgreSQL store: renewal, value-added and recharge orders,
every state transition and refusal, payments by balance and by provider, concurrent
payments, lapsing, refunds and the paid-order list and export."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.billing.application import BillingApplication
from services.billing.domain import Order
from services.billing.projections import orders
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.conftest import new_pg_store
from tests.integration.test_billing_support import (
    FakeCatalog,
    FakeDevices,
    FakePayments,
    Tree,
    frozen,
    ledger_is_consistent,
    make_tree,
)

pytestmark = pytest.mark.integration
D = Decimal


@pytest.fixture(scope="module")
def app() -> Iterator[BillingApplication]:
    billing = BillingApplication(config=new_pg_store("billing"), lapse_after=timedelta(hours=2))
    yield billing
    billing.close()


@pytest.fixture
def tree(app: BillingApplication) -> Tree:
    return make_tree(app)


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog()


@pytest.fixture
def devices(app: BillingApplication) -> FakeDevices:
    return FakeDevices(app)


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments()


def _fund(
    app: BillingApplication, tree: Tree, company_id: str, amount: str, currency="CNY"
) -> None:
    """Credit a balance the way finance does: an approved offline application."""
    filed = app.file_offline_application(
        tree["sales"],
        {
            "company_id": company_id,
            "payer": "Zhang San",
            "currency": currency,
            "amount": D(amount),
            "reference_number": f"SLIP-{company_id}-{amount}",
            "submit": True,
        },
    )
    app.review_offline_application(
        tree["finance"], filed["application_id"], {"decision": "approve", "opinion": "ok"}
    )


def _renewal(app, tree, devices, catalog, *device_ids, months=12, who="customer", **extra):
    return app.create_renewal_order(
        tree[who], {"device_ids": list(device_ids), "months": months, **extra}, devices, catalog
    )


def _state(app: BillingApplication) -> tuple:
    with app.engine.connect() as conn:
        return tuple(conn.execute(sa.select(orders).order_by(orders.c.order_id)).all())


# -- C1: creating orders ----------------------------------------------------------------------
def test_a_renewal_order_has_one_priced_line_per_device_copied_from_the_catalog(
    app, tree, devices, catalog
) -> None:
    monthly = catalog.add("4G monthly", "10.00")
    yearly = catalog.add("4G yearly", "100.00", pricing="per_year")
    first, second = devices.add(tree.customer, monthly), devices.add(tree.subsidiary, yearly)
    order = _renewal(app, tree, devices, catalog, first, second, months=6)
    assert (order["status"], order["order_type"], order["currency"]) == (
        "created",
        "renewal",
        "CNY",
    )
    assert [(line["device_id"], line["months"], line["amount"]) for line in order["lines"]] == [
        (first, 6, D("60.00")),
        (second, 6, D("50.00")),
    ]
    assert order["total"] == D("110.00") and order["company_id"] == tree.customer
    assert order["payment_methods"] == ["balance", "wechat_pay", "alipay"]
    assert [h["action"] for h in order["history"]] == ["created"]
    # a later catalog price never changes an order
    catalog.packages[monthly]["amount"] = D("99.00")
    assert app.order(tree["customer"], order["order_id"])["total"] == D("110.00")


@pytest.mark.parametrize("months", [6, 12, 24, 1, 120])
def test_any_month_count_from_1_to_120(app, tree, devices, catalog, months: int) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "1.50"))
    order = _renewal(app, tree, devices, catalog, device, months=months)
    assert order["total"] == D("1.50") * months


def test_devices_without_a_renewal_package_are_refused_with_the_list(
    app, tree, devices, catalog
) -> None:
    bound = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    unbound = [devices.add(tree.customer, None), devices.add(tree.customer, None)]
    before = _state(app)
    with pytest.raises(ValidationFailed) as refused:
        _renewal(app, tree, devices, catalog, bound, *unbound)
    assert refused.value.fields["device_ids"] == [f"{d}: no renewal package bound" for d in unbound]
    assert all(d in refused.value.message for d in unbound)
    assert _state(app) == before  # bad input changes nothing


def test_suspended_unknown_and_mixed_currency_devices_are_refused(
    app, tree, devices, catalog
) -> None:
    cny, usd = catalog.add("cn", "10.00"), catalog.add("us", "2.00", currency="USD")
    suspended = devices.add(tree.customer, cny, status="suspended")
    before = _state(app)
    with pytest.raises(ValidationFailed, match="suspended"):
        _renewal(app, tree, devices, catalog, suspended)
    with pytest.raises(NotFound):
        _renewal(app, tree, devices, catalog, "NO-SUCH-DEVICE")
    with pytest.raises(ValidationFailed, match="different currencies"):
        _renewal(
            app,
            tree,
            devices,
            catalog,
            devices.add(tree.customer, cny),
            devices.add(tree.customer, usd),
        )
    outside = devices.add(tree.other, cny)  # another customer's device
    with pytest.raises(NotFound):
        _renewal(app, tree, devices, catalog, outside)
    value_added = catalog.add("sms", "1.00", kind="value_added")
    with pytest.raises(ValidationFailed, match="not a renewal"):
        _renewal(app, tree, devices, catalog, devices.add(tree.customer, value_added))
    assert _state(app) == before


def test_a_double_submit_with_the_same_key_gives_the_same_order(
    app, tree, devices, catalog
) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    first = _renewal(app, tree, devices, catalog, device, idempotency_key="click-1")
    again = _renewal(app, tree, devices, catalog, device, idempotency_key="click-1")
    other = _renewal(app, tree, devices, catalog, device, idempotency_key="click-2")
    assert first["order_id"] == again["order_id"] != other["order_id"]


def test_only_customers_and_admins_order(app, tree, devices, catalog) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    for who in ("sales", "finance", "support"):
        with pytest.raises(Forbidden):
            _renewal(app, tree, devices, catalog, device, who=who)


def test_value_added_orders_have_lines_per_binding(app, tree, devices, catalog) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    sms = catalog.add("SMS alerts", "3.00", kind="value_added")
    binding = devices.bind(device, sms)
    order = app.create_value_added_order(
        tree["customer"], {"binding_ids": [binding], "months": 12}, devices, catalog
    )
    assert order["order_type"] == "value_added" and order["total"] == D("36.00")
    assert [(line["binding_id"], line["device_id"]) for line in order["lines"]] == [
        (binding, device)
    ]
    with pytest.raises(ValidationFailed, match="not a value-added"):
        app.create_value_added_order(
            tree["customer"],
            {"binding_ids": [devices.bind(device, catalog.add("4G", "1.00"))], "months": 1},
            devices,
            catalog,
        )
    suspended = devices.bind(device, sms, status="suspended")
    with pytest.raises(ValidationFailed, match="suspended"):
        app.create_value_added_order(
            tree["customer"], {"binding_ids": [suspended], "months": 1}, devices, catalog
        )


# -- C1: confirming and paying --------------------------------------------------------------
def test_created_then_confirmed_then_paid_by_balance_in_one_atomic_step(
    app, tree, devices, catalog
) -> None:
    _fund(app, tree, tree.customer, "500.00")
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    order = _renewal(app, tree, devices, catalog, device, months=12)
    customer = tree["customer"]
    with pytest.raises(Conflict, match="created, not confirmed"):
        app.pay_order(customer, order["order_id"], "balance")  # only a confirmed order is paid
    app.confirm_order(customer, order["order_id"])
    with pytest.raises(Conflict):
        app.confirm_order(customer, order["order_id"])  # a double confirmation
    paid = app.pay_order(customer, order["order_id"], "balance")
    assert (paid["status"], paid["method"], paid["payment_methods"]) == ("paid", "balance", [])
    assert [h["action"] for h in paid["history"]] == ["created", "confirmed", "paid"]
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("380.00")}
    with pytest.raises(Conflict):
        app.pay_order(customer, order["order_id"], "balance")  # a double payment
    with pytest.raises(Conflict):
        app.cancel_order(customer, order["order_id"])
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("380.00")}


def test_a_balance_that_does_not_cover_the_order_refuses_and_changes_nothing(
    app, tree, devices, catalog
) -> None:
    _fund(app, tree, tree.customer, "50.00")
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    order = app.confirm_order(
        tree["customer"], _renewal(app, tree, devices, catalog, device, months=6)["order_id"]
    )
    with pytest.raises(Conflict, match="does not cover") as refused:
        app.pay_order(tree["customer"], order["order_id"], "balance")
    assert "method" in refused.value.fields
    assert app.order(tree["customer"], order["order_id"])["status"] == "confirmed"
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("50.00")}


def test_payment_methods_follow_the_region_and_the_currency(
    app, tree, devices, catalog, payments
) -> None:
    usd = catalog.add("intl", "5.00", currency="USD")
    cny = catalog.add("intl-cn", "5.00")
    intl = tree["intl_customer"]
    usd_order = app.create_renewal_order(
        intl, {"device_ids": [devices.add(tree.intl, usd)], "months": 1}, devices, catalog
    )
    cny_order = app.create_renewal_order(
        intl, {"device_ids": [devices.add(tree.intl, cny)], "months": 1}, devices, catalog
    )
    assert usd_order["payment_methods"] == ["paypal"]
    assert cny_order["payment_methods"] == ["balance"]
    app.confirm_order(intl, usd_order["order_id"])
    for method in ("balance", "wechat_pay", "alipay"):
        with pytest.raises(ValidationFailed, match="allowed: paypal"):
            app.pay_order(intl, usd_order["order_id"], method, payments)
    china_usd = app.create_renewal_order(
        tree["customer"],
        {"device_ids": [devices.add(tree.customer, usd)], "months": 1},
        devices,
        catalog,
    )
    assert china_usd["payment_methods"] == []  # nothing can pay USD in China
    app.confirm_order(tree["customer"], china_usd["order_id"])
    with pytest.raises(ValidationFailed, match="allowed: none"):
        app.pay_order(tree["customer"], china_usd["order_id"], "paypal", payments)
    assert payments.calls == []


def test_fifty_concurrent_balance_payments_against_a_balance_that_covers_twenty(
    app, tree, devices, catalog
) -> None:
    _fund(app, tree, tree.customer, "200.00")
    package = catalog.add("monthly", "10.00")
    customer = tree["customer"]
    order_ids = []
    for _ in range(50):
        created = _renewal(
            app, tree, devices, catalog, devices.add(tree.customer, package), months=1
        )
        order_ids.append(app.confirm_order(customer, created["order_id"])["order_id"])

    def pay(order_id: str) -> str:
        try:
            return app.pay_order(customer, order_id, "balance")["status"]
        except Conflict as exc:
            return "refused" if "does not cover" in exc.message else exc.message

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(pay, order_ids))
    assert sorted(set(outcomes)) == ["paid", "refused"], outcomes
    assert outcomes.count("paid") == 20
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("0.00")}


def test_an_external_payment_starts_an_attempt_and_success_pays_the_order(
    app, tree, devices, catalog, payments
) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    customer = tree["customer"]
    order = app.confirm_order(
        customer, _renewal(app, tree, devices, catalog, device, months=3)["order_id"]
    )
    started = app.pay_order(customer, order["order_id"], "wechat_pay", payments)
    attempt = started["payment"]
    assert started["status"] == "confirmed" and attempt["code_url"].startswith("weixin://")
    assert payments.calls[-1]["amount"] == "30.00" and payments.calls[-1]["purpose"] == "order"
    again = app.pay_order(customer, order["order_id"], "wechat_pay", payments)  # double click
    assert again["payment"]["attempt_id"] == attempt["attempt_id"]
    # the provider confirms, twice: the order is paid once, nothing credited
    assert app.on_payment_succeeded(payments.succeeded(attempt)) is True
    assert app.on_payment_succeeded(payments.succeeded(attempt)) is False
    paid = app.order(customer, order["order_id"])
    assert (paid["status"], paid["method"], paid["payment_reference"]) == (
        "paid",
        "wechat_pay",
        attempt["attempt_id"],
    )
    assert [h["action"] for h in paid["history"]] == [
        "created",
        "confirmed",
        "payment_started",
        "paid",
    ]
    assert ledger_is_consistent(app, tree.customer) == {}


def test_a_failed_attempt_is_noted_and_the_next_try_is_a_new_attempt(
    app, tree, devices, catalog, payments
) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    customer = tree["customer"]
    order = app.confirm_order(customer, _renewal(app, tree, devices, catalog, device)["order_id"])
    first = app.pay_order(customer, order["order_id"], "alipay", payments)["payment"]
    failed = {**payments.succeeded(first), "reason": "declined"}
    assert app.on_payment_failed(failed) is True
    assert app.on_payment_failed(failed) is False
    second = app.pay_order(customer, order["order_id"], "alipay", payments)["payment"]
    assert second["attempt_id"] != first["attempt_id"]
    history = app.order(customer, order["order_id"])["history"]
    assert [h["action"] for h in history][-3:] == [
        "payment_started",
        "payment_failed",
        "payment_started",
    ]


def test_money_that_cannot_pay_the_order_goes_to_the_balance(
    app, tree, devices, catalog, payments
) -> None:
    _fund(app, tree, tree.customer, "100.00")
    package = catalog.add("monthly", "10.00")
    customer = tree["customer"]

    def confirmed() -> dict:
        order = _renewal(app, tree, devices, catalog, devices.add(tree.customer, package), months=1)
        return app.confirm_order(customer, order["order_id"])

    # paid by balance meanwhile: the provider's money is an overpayment
    paid = confirmed()
    attempt = app.pay_order(customer, paid["order_id"], "wechat_pay", payments)["payment"]
    app.pay_order(customer, paid["order_id"], "balance")
    app.on_payment_succeeded(payments.succeeded(attempt))
    app.on_payment_succeeded(payments.succeeded(attempt))
    # cancelled meanwhile: refunded
    cancelled = confirmed()
    late = app.pay_order(customer, cancelled["order_id"], "alipay", payments)["payment"]
    app.cancel_order(customer, cancelled["order_id"])
    app.on_payment_succeeded(payments.succeeded(late))
    # the wrong amount: credited, the order stays unpaid
    short = confirmed()
    partial = app.pay_order(customer, short["order_id"], "alipay", payments)["payment"]
    app.on_payment_succeeded(payments.succeeded(partial, amount="9.99"))
    assert app.order(customer, short["order_id"])["status"] == "confirmed"
    entries = app.account_entries(customer, tree.customer, {"direction": "credit"})["items"]
    assert [(e["reason"], e["amount"], e["reference"]) for e in entries[:3]] == [
        ("overpayment", D("9.99"), partial["attempt_id"]),
        ("refund", D("10.00"), late["attempt_id"]),
        ("overpayment", D("10.00"), attempt["attempt_id"]),
    ]
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("119.99")}
    history = app.order(customer, cancelled["order_id"])["history"]
    assert history[-1]["action"] == "payment_credited" and "cancelled" in history[-1]["detail"]


def test_orders_lapse_unpaid_after_the_configured_time(app, tree, devices, catalog) -> None:
    device = devices.add(tree.customer, catalog.add("monthly", "10.00"))
    customer = tree["customer"]
    start = datetime.now(UTC)
    with frozen(start) as now:
        waiting = _renewal(app, tree, devices, catalog, device)
        confirmed = app.confirm_order(
            customer, _renewal(app, tree, devices, catalog, device)["order_id"]
        )
        now.advance(hours=1, minutes=59)
        assert app.lapse_due() == 0
        now.advance(minutes=1)
        assert app.lapse_due() >= 2
        assert app.lapse_due() == 0  # once
        for order in (waiting, confirmed):
            assert app.order(customer, order["order_id"])["status"] == "lapsed"
        late = _renewal(app, tree, devices, catalog, device)
        now.advance(hours=3)  # the timer has not come by yet: paying lapses it anyway
        with pytest.raises(Conflict, match="lapsed"):
            app.confirm_order(customer, late["order_id"])
        assert app.order(customer, late["order_id"])["status"] == "lapsed"


# -- C3: recharge ---------------------------------------------------------------------------
def test_a_recharge_is_credited_exactly_once_when_the_payment_succeeds(app, tree, payments) -> None:
    customer = tree["customer"]
    recharge = app.create_recharge(
        customer, {"currency": "CNY", "amount": D("300.00"), "method": "alipay"}, payments
    )
    assert (recharge["order_type"], recharge["status"], recharge["lines"]) == (
        "recharge",
        "confirmed",
        [],
    )
    assert payments.calls[-1]["purpose"] == "recharge"
    attempt = recharge["payment"]
    pending = app.list_orders(customer, {"order_type": "recharge", "status": "confirmed"})
    assert recharge["order_id"] in [o["order_id"] for o in pending["items"]]
    for _ in range(3):  # duplicate payment events
        app.on_payment_succeeded(payments.succeeded(attempt))
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("300.00")}
    paid = app.list_orders(customer, {"order_type": "recharge", "status": "paid"})["items"]
    assert [o["order_id"] for o in paid] == [recharge["order_id"]]
    entry = app.account_entries(customer, tree.customer, {})["items"][0]
    assert (entry["reason"], entry["reference"]) == ("recharge", recharge["order_id"])


def test_a_recharge_uses_the_regions_provider_never_the_balance(app, tree, payments) -> None:
    with pytest.raises(ValidationFailed):
        app.create_recharge(
            tree["customer"],
            {"currency": "USD", "amount": D("10.00"), "method": "paypal"},
            payments,
        )
    with pytest.raises(ValidationFailed):
        app.create_recharge(
            tree["intl_customer"],
            {"currency": "CNY", "amount": D("10.00"), "method": "wechat_pay"},
            payments,
        )
    ok = app.create_recharge(
        tree["intl_customer"],
        {"currency": "USD", "amount": D("10.00"), "method": "paypal", "idempotency_key": "k"},
        payments,
    )
    same = app.create_recharge(
        tree["intl_customer"],
        {"currency": "USD", "amount": D("10.00"), "method": "paypal", "idempotency_key": "k"},
        payments,
    )
    assert ok["order_id"] == same["order_id"] and len(payments.attempts) == 1
    with pytest.raises(ValidationFailed):
        app.pay_order(tree["intl_customer"], ok["order_id"], "balance", payments)


# -- refunds --------------------------------------------------------------------------------
def test_refused_lines_are_refunded_to_the_balance_once(app, tree, devices, catalog) -> None:
    _fund(app, tree, tree.customer, "100.00")
    package = catalog.add("monthly", "10.00")
    kept, suspended = devices.add(tree.customer, package), devices.add(tree.customer, package)
    customer = tree["customer"]
    order = app.confirm_order(
        customer, _renewal(app, tree, devices, catalog, kept, suspended, months=2)["order_id"]
    )
    app.pay_order(customer, order["order_id"], "balance")
    applied = {
        "order_id": order["order_id"],
        "lines": [
            {"line_id": order["lines"][0]["line_id"], "outcome": "renewed"},
            {
                "line_id": order["lines"][1]["line_id"],
                "outcome": "refused",
                "reason": "device suspended",
            },
        ],
    }
    assert app.on_renewal_applied("msg-1", applied) is True
    assert app.on_renewal_applied("msg-1", applied) is False  # redelivered
    app.on_renewal_applied("msg-2", applied)  # the same fact in another message
    refunded = app.order(customer, order["order_id"])
    assert refunded["refunded_total"] == D("20.00")
    assert [line["refunded"] for line in refunded["lines"]] == [False, True]
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("80.00")}
    entry = app.account_entries(customer, tree.customer, {"reason": "refund"})["items"]
    assert [(e["amount"], e["reference"]) for e in entry] == [
        (D("20.00"), f"{order['order_id']}:{order['lines'][1]['line_id']}")
    ]
    # finance may refund the other line by hand, once; a customer may not
    with pytest.raises(Forbidden):
        app.refund_line(customer, order["order_id"], order["lines"][0]["line_id"], "x")
    app.refund_line(tree["finance"], order["order_id"], order["lines"][0]["line_id"], "goodwill")
    with pytest.raises(Conflict, match="already refunded"):
        app.refund_line(tree["finance"], order["order_id"], order["lines"][0]["line_id"], "x")
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("100.00")}


# -- C2 and F2: lists and export ------------------------------------------------------------
def test_order_records_filter_page_and_stay_within_scope(app, tree, devices, catalog) -> None:
    _fund(app, tree, tree.customer, "1000.00")
    package = catalog.add("monthly", "10.00")
    customer = tree["customer"]
    made = []
    for n in range(7):
        order = _renewal(app, tree, devices, catalog, devices.add(tree.customer, package), months=1)
        if n % 2 == 0:
            app.confirm_order(customer, order["order_id"])
            app.pay_order(customer, order["order_id"], "balance")
        made.append(order["order_id"])
    _renewal(
        app,
        tree,
        devices,
        catalog,
        devices.add(tree.other, package),
        who="other_customer",
    )
    page = app.list_orders(customer, {"page": 1, "per_page": 3})
    assert page["total"] == 7 and len(page["items"]) == 3
    paid = app.list_orders(customer, {"status": "paid", "method": "balance", "currency": "CNY"})
    assert sorted(o["order_id"] for o in paid["items"]) == sorted(made[0::2])
    assert app.list_orders(customer, {"currency": "USD"})["total"] == 0
    future = datetime.now(UTC) + timedelta(days=1)
    assert app.list_orders(customer, {"created_from": future})["total"] == 0
    # the subsidiary's user sees only the subsidiary; another company's order is not found
    assert app.list_orders(tree["sub_customer"], {})["total"] == 0
    with pytest.raises(NotFound):
        app.order(tree["other_customer"], made[0])
    with pytest.raises(NotFound):
        app.pay_order(tree["other_customer"], made[1], "balance")
    with pytest.raises(Forbidden):
        app.account(tree["other_customer"], tree.customer)


def test_finance_sees_every_paid_order_of_the_subtree_and_exports_exactly_that(
    app, tree, devices, catalog, payments
) -> None:
    _fund(app, tree, tree.customer, "1000.00")
    _fund(app, tree, tree.other, "1000.00")
    package = catalog.add("monthly", "10.00")
    for company, who in ((tree.customer, "customer"), (tree.other, "other_customer")):
        for _ in range(3):
            order = _renewal(app, tree, devices, catalog, devices.add(company, package), who=who)
            app.confirm_order(tree[who], order["order_id"])
            app.pay_order(tree[who], order["order_id"], "balance")
        _renewal(app, tree, devices, catalog, devices.add(company, package), who=who)  # unpaid
    recharge = app.create_recharge(
        tree["customer"], {"currency": "CNY", "amount": D("5.00"), "method": "wechat_pay"}, payments
    )
    app.on_payment_succeeded(payments.succeeded(recharge["payment"]))
    finance = tree["finance"]
    with pytest.raises(Forbidden):
        app.manage_orders(tree["customer"], {})
    mine = {"company_id": tree.customer}
    listed = app.manage_orders(finance, mine)
    assert listed["total"] == 4 and {o["status"] for o in listed["items"]} == {"paid"}
    assert {o["order_type"] for o in listed["items"]} == {"renewal", "recharge"}
    assert app.manage_orders(finance, {**mine, "order_type": "recharge"})["total"] == 1
    assert app.manage_orders(finance, {**mine, "status": "created"})["total"] == 1
    # the export pages through exactly what the list shows
    rows, after = [], None
    while True:
        page = app.export_orders(finance, mine, after, limit=3)
        rows.extend(page["items"])
        if (after := page["next"]) is None:
            break
    assert sorted(r["order_id"] for r in rows) == sorted(o["order_id"] for o in listed["items"])
    assert {r["company_name"] for r in rows} == {tree.customer}
    assert sorted(r["line_count"] for r in rows) == [0, 1, 1, 1]


def test_the_same_order_number_cannot_be_created_twice(app, tree) -> None:
    def order() -> Order:
        return Order(
            "DUP-1-" + tree.vendor,
            tree.customer,
            "renewal",
            "CNY",
            [],
            D("1.00"),
            "x",
            datetime.now(UTC),
        )

    app.save_new(order(), what="order")
    with pytest.raises(Conflict):
        app.save_new(order(), what="order")
