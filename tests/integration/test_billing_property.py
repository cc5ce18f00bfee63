"""A property of the ledger: whatever sequence of credits, debits, orders and refunds
happens, every balance is the sum of its entries, never negative, equal to a simple model
of the money, and a replay of the events reproduces every view."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.billing.application import BillingApplication
from services.common.errors import Conflict
from tests.conftest import new_pg_store
from tests.integration.test_billing_support import (
    FakeCatalog,
    FakeDevices,
    FakePayments,
    ledger_is_consistent,
    make_tree,
)

pytestmark = pytest.mark.integration
D = Decimal

cents = st.integers(min_value=1, max_value=50_000).map(lambda c: D(c) / 100)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("offline_credit"), cents),
        st.tuples(st.just("recharge"), cents, st.integers(1, 3)),  # delivered 1-3 times
        st.tuples(st.just("order"), st.integers(1, 3), st.sampled_from([1, 6, 12, 24])),
        st.tuples(st.just("refund"), st.integers(0, 50)),
        st.tuples(st.just("cancel"), st.integers(0, 50)),
    ),
    min_size=1,
    max_size=14,
)


@pytest.fixture(scope="module")
def app() -> Iterator[BillingApplication]:
    billing = BillingApplication(config=new_pg_store("billing"))
    yield billing
    billing.close()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=operations)
def test_balances_are_the_sum_of_their_entries_and_replay_reproduces_every_view(
    app: BillingApplication, steps: list[tuple]
) -> None:
    tree = make_tree(app)
    customer = tree["customer"]
    catalog, devices, payments = FakeCatalog(), FakeDevices(app), FakePayments()
    package = catalog.add("monthly", "7.35")
    expected = D("0.00")
    paid_lines: list[tuple[str, str, Decimal]] = []  # order id, line id, amount
    unpaid: list[str] = []
    refunded: set[str] = set()

    for step in steps:
        kind = step[0]
        if kind == "offline_credit":
            filed = app.file_offline_application(
                tree["sales"],
                {
                    "company_id": tree.customer,
                    "payer": "payer",
                    "currency": "CNY",
                    "amount": step[1],
                    "reference_number": "slip",
                    "submit": True,
                },
            )
            app.review_offline_application(
                tree["finance"], filed["application_id"], {"decision": "approve", "opinion": "ok"}
            )
            expected += step[1]
        elif kind == "recharge":
            recharge = app.create_recharge(
                customer, {"currency": "CNY", "amount": step[1], "method": "alipay"}, payments
            )
            for _ in range(step[2]):
                app.on_payment_succeeded(payments.succeeded(recharge["payment"]))
            expected += step[1]
        elif kind == "order":
            ids = [devices.add(tree.customer, package) for _ in range(step[1])]
            order = app.create_renewal_order(
                customer, {"device_ids": ids, "months": step[2]}, devices, catalog
            )
            app.confirm_order(customer, order["order_id"])
            try:
                app.pay_order(customer, order["order_id"], "balance")
            except Conflict:
                assert expected < order["total"]  # refused only when it does not cover
                unpaid.append(order["order_id"])
            else:
                assert expected >= order["total"]
                expected -= order["total"]
                paid_lines += [
                    (order["order_id"], x["line_id"], x["amount"]) for x in order["lines"]
                ]
        elif kind == "refund" and paid_lines:
            order_id, line_id, amount = paid_lines[step[1] % len(paid_lines)]
            app.on_renewal_applied(
                f"{order_id}:{line_id}:{step[1]}",
                {"order_id": order_id, "lines": [{"line_id": line_id, "outcome": "refused"}]},
            )
            if line_id not in refunded:
                refunded.add(line_id)
                expected += amount
        elif kind == "cancel" and unpaid:
            app.cancel_order(customer, unpaid.pop(step[1] % len(unpaid)))
        balances = ledger_is_consistent(app, tree.customer)
        assert balances.get("CNY", D("0.00")) == expected

    assert app.verify_views() == []
