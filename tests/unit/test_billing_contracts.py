"""What billing puts on the wire and accepts over RPC, the view batch's merging rules and
the .xlsx writer (no I/O beyond a temporary file)."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from contracts.envelope import contract, dump_payload, parse
from contracts.rpc import load
from contracts.rpc.billing import (
    AccountConfigIn,
    AccountSettingsIn,
    RechargeIn,
    RenewalOrderIn,
    ReviewIn,
)
from gateway.routes.billing import ORDER_COLUMNS, follow, statement_heading, write_xlsx
from services.billing.batching import ViewBatch
from services.billing.domain import (
    Account,
    AccountConfig,
    AutoRenewal,
    OfflineApplication,
    Order,
    Statement,
)
from services.billing.relay import to_wire
from services.common.errors import BadRequest, ValidationFailed

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
D = Decimal


class FakeApp:
    """Enough of an application for ``to_wire``: aggregates rebuilt from recorded events."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.repository = self

    def record(self, *aggregates: Any) -> list[Any]:
        new = [e for a in aggregates for e in a.collect_events()]
        self.events.extend(new)
        return new

    def get(self, aggregate_id: Any, version: int) -> Any:
        state = None
        for e in self.events:
            if e.originator_id == aggregate_id and e.originator_version <= version:
                state = e.mutate(state)
        return state


def _wire(app: FakeApp, events: list[Any]) -> list[tuple[str, dict]]:
    """Each event's wire form, dumped and validated by its registered schema."""
    out = []
    for e in events:
        for wire in to_wire(e, app):
            version, data = dump_payload("billing", wire.type, wire.data)
            assert version == contract("billing", wire.type).latest
            out.append((wire.type, data))
    return out


def test_every_ledger_event_leaves_with_a_valid_payload() -> None:
    app = FakeApp()
    order = Order(
        number="R1",
        company_id="c1",
        order_type="value_added",
        currency="CNY",
        lines=[
            {
                "line_id": "R1-1",
                "device_id": "D1",
                "binding_id": "b1",
                "package_id": "p1",
                "package_name": "SMS alerts",
                "months": 6,
                "unit_price": D("5.00"),
                "amount": D("30.00"),
            }
        ],
        total=D("30.00"),
        created_by="carl",
        created_at=T0,
        lapse_at=T0 + timedelta(days=1),
    )
    account = Account(company_id="c1")
    account.credit(currency="CNY", amount=D("50.00"), reason="recharge", reference="C1")
    order.confirm(T0)
    order.start_payment("alipay", "a1", T0)  # internal: not published
    order.pay("balance", T0)
    account.debit(currency="CNY", amount=D("30.00"), reason="order", reference=str(order.id))
    order.refund_line("R1-1", "device suspended", T0)  # published as its account_credited
    account.credit(currency="CNY", amount=D("30.00"), reason="refund", reference="R1:R1-1")
    wire = _wire(app, app.record(order, account))
    kinds = [k for k, _ in wire]
    assert kinds == [
        "order_created",
        "order_confirmed",
        "order_paid",
        "account_credited",
        "account_debited",
        "account_credited",
    ]
    paid = dict(wire)["order_paid"]
    assert paid["lines"][0]["binding_id"] == "b1" and paid["total"] == "30.00"
    assert [d["balance"] for k, d in wire if k.startswith("account_")] == [
        "50.00",
        "20.00",
        "50.00",
    ]


def test_closing_orders_reviews_configs_auto_renewals_and_statements_are_published() -> None:
    app = FakeApp()
    cancelled = Order("R2", "c1", "renewal", "CNY", [], D("10.00"), "carl", T0, T0)
    cancelled.cancel(T0, "carl")
    lapsed = Order("R3", "c1", "recharge", "USD", [], D("10.00"), "carl", T0, T0)
    lapsed.lapse(T0)
    filed = OfflineApplication("c1", "Zhang", "CNY", D("100.00"), "B-1", "sally", "")
    filed.submit("sally")
    filed.return_to_applicant("fiona", "wrong slip", T0)
    filed.submit("sally")
    filed.reject("fiona", "not received", T0)
    config = AccountConfig(
        company_id="c1",
        settings={
            "region": "china",
            "default_currency": "CNY",
            "billing_cycle": "monthly",
            "auto_renewal": True,
            "push_enabled": True,
            "language": "zh",
            "push_emails": ["ops@example.com"],
        },
    )
    config.delete()
    failed = AutoRenewal("D1", "c1", T0, "p1", "failed", "CNY", D("120.00"), D("20.00"))
    statement = Statement(
        "c1",
        "monthly",
        T0,
        T0 + timedelta(days=31),
        [
            {
                "currency": "CNY",
                "opening_balance": D("0.00"),
                "total_credits": D("5.00"),
                "total_debits": D("0.00"),
                "closing_balance": D("5.00"),
                "entries": 1,
            }
        ],
    )
    wire = dict(_wire(app, app.record(cancelled, lapsed, filed, config, failed, statement)))
    assert wire["order_cancelled"]["by"] == "carl"
    assert wire["order_lapsed"]["order_type"] == "recharge"
    assert wire["offline_application_returned"]["opinion"] == "wrong slip"
    assert wire["offline_application_rejected"]["reviewer"] == "fiona"
    assert wire["account_config_set"]["push_emails"] == ["ops@example.com"]
    assert wire["account_config_deleted"] == {"company_id": "c1"}
    assert wire["auto_renewal_failed"]["missing"] == "100.00"
    assert wire["statement_issued"]["balances"][0]["closing_balance"] == "5.00"


def test_a_consumer_reads_an_older_producers_payment_and_ignores_unknown_fields() -> None:
    envelope = {
        "id": "e1",
        "type": "order_paid",
        "version": 1,
        "source": "billing",
        "subject": "o1",
        "sequence": 3,
        "time": T0.isoformat(),
        "data": {
            "order_id": "o1",
            "order_number": "R1",
            "company_id": "c1",
            "order_type": "renewal",
            "currency": "CNY",
            "total": "10.00",
            "method": "balance",
            "paid_at": T0.isoformat(),
            "lines": [],
            "a_field_from_the_future": 1,
        },
    }
    data = parse(envelope).data
    assert data["payment_reference"] is None and "a_field_from_the_future" not in data


# -- RPC payloads ---------------------------------------------------------------------------
@pytest.mark.parametrize("months", [0, 121, "12", 6.5])
def test_a_month_count_is_a_whole_number_from_1_to_120(months: object) -> None:
    with pytest.raises((BadRequest, ValidationFailed)):
        load(RenewalOrderIn(), {"device_ids": ["D1"], "months": months})
    for good in (1, 6, 12, 24, 120):
        assert load(RenewalOrderIn(), {"device_ids": ["D1"], "months": good})["months"] == good


def test_recharges_take_a_provider_and_an_exact_amount() -> None:
    got = load(RechargeIn(), {"currency": "CNY", "amount": "100.50", "method": "alipay"})
    assert got["amount"] == D("100.50")
    for bad in (
        {"currency": "CNY", "amount": "100.50", "method": "balance"},
        {"currency": "CNY", "amount": 100.5, "method": "alipay"},
        {"currency": "EUR", "amount": "1.00", "method": "paypal"},
        {"currency": "CNY", "amount": "0.001", "method": "alipay"},
    ):
        with pytest.raises((BadRequest, ValidationFailed)):
            load(RechargeIn(), bad)


def test_a_review_needs_an_opinion_and_configs_need_valid_emails() -> None:
    with pytest.raises(ValidationFailed) as refused:
        load(ReviewIn(), {"decision": "approve", "opinion": "   "})
    assert "opinion" in refused.value.fields
    base = {"region": "china", "default_currency": "CNY", "billing_cycle": "monthly"}
    with pytest.raises(ValidationFailed) as refused:
        load(AccountConfigIn(), {**base, "push_emails": ["ok@example.com", "not-an-email"]})
    assert "push_emails.1" in refused.value.fields
    with pytest.raises(ValidationFailed):
        load(AccountConfigIn(), {**base, "push_emails": [f"a{i}@x.cn" for i in range(21)]})
    assert load(AccountSettingsIn(), {"push_enabled": False}) == {"push_enabled": False}


# -- view batches ---------------------------------------------------------------------------
_meta = sa.MetaData()
_rows = sa.Table(
    "rows",
    _meta,
    sa.Column("k", sa.String, primary_key=True),
    sa.Column("v", sa.Integer),
    sa.Column("w", sa.Integer),
)


def test_a_batch_merges_what_happens_to_one_row_within_a_page() -> None:
    batch = ViewBatch(conn=None)  # type: ignore[arg-type] - staging needs no connection
    batch.insert(_rows, k="a", v=1, w=1)
    batch.update(_rows, ("a",), v=2)
    batch.update(_rows, ("b",), w=5)
    batch.update(_rows, ("b",), v=6)
    batch.upsert(_rows, k="c", v=1, w=1)
    batch.delete(_rows, ("c",))
    batch.upsert(_rows, k="c", v=3, w=3)
    batch.insert(_rows, k="d", v=1, w=1)
    batch.delete(_rows, ("d",))
    assert batch.staged[_rows] == {
        ("a",): ("insert", {"k": "a", "v": 2, "w": 1}),
        ("b",): ("update", {"w": 5, "v": 6}),
        ("c",): ("replace", {"k": "c", "v": 3, "w": 3}),
    }


# -- .xlsx ----------------------------------------------------------------------------------
def _orders(count: int, start: int = 0) -> Iterator[list[dict]]:
    for first in range(start, start + count, 1000):
        yield [
            {
                "order_number": f"R-{i:07d}",
                "order_type": "renewal",
                "status": "paid",
                "company_id": f"company-{i % 50}",
                "company_name": "Shenzhen Fleet",
                "currency": "CNY",
                "total": f"{i % 997}.50",
                "refunded_total": "0.00",
                "method": "balance",
                "payment_reference": None,
                "line_count": 3,
                "created_by": "carl",
                "created_at": (T0 + timedelta(seconds=i)).isoformat(),
                "paid_at": (T0 + timedelta(seconds=i + 5)).isoformat(),
            }
            for i in range(first, min(first + 1000, start + count))
        ]


def test_an_export_holds_every_row_with_numbers_and_times_excel_understands() -> None:
    out = io.BytesIO()
    assert write_xlsx(out, "Orders", [], ORDER_COLUMNS, _orders(2500)) == 2500
    sheet = load_workbook(io.BytesIO(out.getvalue()), read_only=True)["Orders"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Order number", "Type", "Status") and len(rows) == 2501
    first = dict(zip(rows[0], rows[1], strict=True))
    assert first["Total"] == 0.5 and first["Order number"] == "R-0000000"
    assert first["Paid at (UTC)"] == datetime(2026, 3, 1, 8, 0, 5)


def test_an_export_writes_in_bounded_memory() -> None:
    def peak(count: int) -> int:
        tracemalloc.start()
        write_xlsx(io.BytesIO(), "Orders", [], ORDER_COLUMNS, _orders(count))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(400), peak(4000)
    # ten times the rows; only the output bytes grow, not what is held per row
    assert large < small * 3, (small, large)


def test_a_statement_workbook_starts_with_its_figures() -> None:
    head = {
        "statement_id": "s1",
        "company_id": "c1",
        "cycle": "monthly",
        "period_start": "2026-02-01T00:00:00+00:00",
        "period_end": "2026-03-01T00:00:00+00:00",
        "balances": [
            {
                "currency": "CNY",
                "opening_balance": "10.00",
                "total_credits": "5.00",
                "total_debits": "3.00",
                "closing_balance": "12.00",
                "entries": 2,
            }
        ],
    }
    pages = iter([{"items": [{"at": "2026-02-03T00:00:00+00:00", "amount": "5.00"}], "next": 7}])
    seen: list = []

    def fetch(after: Any) -> dict:
        seen.append(after)
        return next(pages, {"items": [], "next": None})

    out = io.BytesIO()
    write_xlsx(out, "Statement", statement_heading(head), ORDER_COLUMNS[:1], follow(fetch))
    rows = list(load_workbook(io.BytesIO(out.getvalue()))["Statement"].iter_rows(values_only=True))
    assert rows[7][:5] == ("CNY", 10, 5, 3, 12)
    assert seen == [None, 7]
