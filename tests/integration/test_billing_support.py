"""Shared by the billing integration tests (this module holds no tests): a company tree, the
actors, and small fakes of what lies outside billing's boundary (devices, catalog,
payments)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from services.billing.application import BillingApplication
from services.billing.projections import balances, ledger_entries
from services.common import clock
from services.common.actor import Actor

D = Decimal


@contextmanager
def frozen(at: datetime) -> Iterator[clock.FixedClock]:
    before = clock.clock
    clock.clock = clock.FixedClock(at)
    try:
        yield clock.clock
    finally:
        clock.clock = before


@dataclass
class Tree:
    """vendor -> (customer -> subsidiary), other customer, international customer."""

    vendor: str
    customer: str
    subsidiary: str
    other: str
    intl: str
    actors: dict[str, Actor] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Actor:
        return self.actors[name]


def make_tree(app: BillingApplication) -> Tree:
    tag = uuid.uuid4().hex[:8]
    tree = Tree(
        vendor=f"vendor-{tag}",
        customer=f"cust-{tag}",
        subsidiary=f"sub-{tag}",
        other=f"other-{tag}",
        intl=f"intl-{tag}",
    )
    for company_id, parent, region in (
        (tree.vendor, None, "china"),
        (tree.customer, tree.vendor, "china"),
        (tree.subsidiary, tree.customer, "china"),
        (tree.other, tree.vendor, "china"),
        (tree.intl, tree.vendor, "other"),
    ):
        app.record_company(
            1,
            {"company_id": company_id, "parent_id": parent, "name": company_id, "region": region},
        )
    for name, role, company_id in (
        ("sales", "sales", tree.vendor),
        ("sales2", "sales", tree.vendor),
        ("finance", "finance", tree.vendor),
        ("admin", "admin", tree.vendor),
        ("support", "support", tree.vendor),
        ("customer", "customer", tree.customer),
        ("sub_customer", "customer", tree.subsidiary),
        ("other_customer", "customer", tree.other),
        ("intl_customer", "customer", tree.intl),
    ):
        tree.actors[name] = Actor(f"{name}-{tag}", f"{name}-{tag}", role, company_id)
    return tree


class FakeCatalog:
    """Prices like the catalog: per month, per year (pro rata, half-up) or one-off."""

    def __init__(self) -> None:
        self.packages: dict[str, dict] = {}
        self.calls = 0

    def add(
        self,
        name: str,
        amount: str,
        currency: str = "CNY",
        pricing: str = "per_month",
        kind: str = "renewal",
    ) -> str:
        package_id = f"pkg-{uuid.uuid4().hex[:8]}"
        self.packages[package_id] = {
            "package_id": package_id,
            "code": name.upper(),
            "name": name,
            "kind": kind,
            "pricing": pricing,
            "currency": currency,
            "on_sale": True,
            "amount": D(amount),
        }
        return package_id

    def quote(self, package_id: str, months: int) -> dict:
        self.calls += 1
        package = self.packages[package_id]
        unit = package["amount"]
        if package["pricing"] == "per_month":
            total = unit * months
        elif package["pricing"] == "per_year":
            total = (unit * months / 12).quantize(D("0.01"), rounding=ROUND_HALF_UP)
        else:
            total = unit
        return {
            **{k: v for k, v in package.items() if k != "amount"},
            "months": months,
            "unit_price": str(unit),
            "amount": str(total),
        }


class FakeDevices:
    """Devices (and value-added bindings) with company, bound package and status."""

    def __init__(self, app: BillingApplication) -> None:
        self.app = app
        self.devices: dict[str, dict] = {}
        self.bindings: dict[str, dict] = {}

    def add(self, company_id: str, package_id: str | None, status: str = "active") -> str:
        device_id = f"D{uuid.uuid4().hex[:10].upper()}"
        self.devices[device_id] = {
            "device_id": device_id,
            "company_id": company_id,
            "package_id": package_id,
            "status": status,
            "expires_at": clock.now() + timedelta(days=3),
        }
        return device_id

    def bind(self, device_id: str, package_id: str, status: str = "active") -> str:
        binding_id = f"b-{uuid.uuid4().hex[:8]}"
        device = self.devices[device_id]
        self.bindings[binding_id] = {
            "binding_id": binding_id,
            "device_id": device_id,
            "company_id": device["company_id"],
            "package_id": package_id,
            "status": status,
            "expires_at": device["expires_at"],
        }
        return binding_id

    def _visible(self, actor: dict, company_id: str) -> bool:
        return self.app.visible(Actor.from_rpc(actor), company_id)

    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]:
        return [
            self.devices[d]
            for d in device_ids
            if d in self.devices and self._visible(actor, self.devices[d]["company_id"])
        ]

    def value_added_for_order(self, actor: dict, binding_ids: list[str]) -> list[dict]:
        return [
            self.bindings[b]
            for b in binding_ids
            if b in self.bindings and self._visible(actor, self.bindings[b]["company_id"])
        ]

    def list_devices(self, actor: dict, filters: dict) -> dict:
        items = [d for d in self.devices.values() if self._visible(actor, d["company_id"])]
        return {"items": items, "total": len(items), "page": 1, "per_page": 500}


class FakePayments:
    """The payments service's start_payment: one attempt per idempotency key."""

    def __init__(self) -> None:
        self.attempts: dict[str, dict] = {}
        self.calls: list[dict] = []

    def start_payment(self, actor: dict, payload: dict) -> dict:
        self.calls.append(payload)
        key = payload["idempotency_key"]
        if key not in self.attempts:
            attempt_id = f"att-{uuid.uuid4().hex[:10]}"
            self.attempts[key] = {
                "attempt_id": attempt_id,
                **{k: payload[k] for k in ("purpose", "reference_id", "company_id", "method")},
                "amount": payload["amount"],
                "currency": payload["currency"],
                "status": "pending",
                "code_url": f"weixin://wxpay/{attempt_id}",
                "approve_url": None,
                "created_at": clock.now().isoformat(),
            }
        return self.attempts[key]

    def succeeded(self, attempt: dict, amount: str | None = None) -> dict:
        """The payment_succeeded payload payments would publish for ``attempt``."""
        return {
            **{k: attempt[k] for k in ("attempt_id", "purpose", "reference_id", "company_id")},
            "method": attempt["method"],
            "amount": D(amount or attempt["amount"]),
            "currency": attempt["currency"],
            "provider_trade_no": f"T{attempt['attempt_id']}",
            "paid_at": clock.now(),
        }


def ledger_is_consistent(app: BillingApplication, company_id: str) -> dict[str, Decimal]:
    """Balance = the sum of its entries, never negative, equal to the account's own state."""
    with app.engine.connect() as conn:
        shown = {
            r.currency: r.balance
            for r in conn.execute(sa.select(balances).where(balances.c.company_id == company_id))
        }
        entries = conn.execute(
            sa.select(ledger_entries)
            .where(ledger_entries.c.company_id == company_id)
            .order_by(ledger_entries.c.sequence)
        ).all()
    running: dict[str, Decimal] = {}
    for entry in entries:
        sign = 1 if entry.direction == "credit" else -1
        running[entry.currency] = running.get(entry.currency, D("0.00")) + sign * entry.amount
        assert running[entry.currency] >= 0, entry
        assert running[entry.currency] == entry.balance_after, entry
    assert shown == running
    assert app.load_account(company_id).balances == running
    return running
