"""Billing as it runs: the nameko service and the gateway as processes on PostgreSQL and
RabbitMQ, with its relay. What lies outside billing's boundary (devices, catalog, payments)
is faked by small nameko services in this module; their events are published as their
relays would."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
import requests
from kombu import Connection, Exchange, Queue
from nameko.rpc import rpc
from openpyxl import load_workbook

from contracts.envelope import validate
from tests.support.platform import Platform
from tests.support.processes import BIN, Process, relay_run, wait_for

pytestmark = pytest.mark.integration
D = Decimal


# -- fakes of the neighbours (run by `nameko run` in their own process) ----------------------
class FakeCatalogService:
    name = "catalog"
    packages = {
        "pkg-monthly": ("4G monthly", "renewal", "per_month", "CNY", D("10.00")),
        "pkg-yearly": ("4G yearly", "renewal", "per_year", "CNY", D("120.00")),
        "pkg-sms": ("SMS alerts", "value_added", "per_month", "CNY", D("2.00")),
    }

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def quote(self, package_id: str, months: int) -> dict:
        name, kind, pricing, currency, unit = self.packages[package_id]
        total = unit * months if pricing == "per_month" else unit * months / 12
        return {
            "package_id": package_id,
            "code": package_id.upper(),
            "name": name,
            "kind": kind,
            "pricing": pricing,
            "currency": currency,
            "on_sale": True,
            "months": months,
            "unit_price": str(unit),
            "amount": str(total.quantize(D("0.01"), rounding=ROUND_HALF_UP)),
        }


class FakeDevicesService:
    """Devices keyed by id; the test tells it about them through ``remember``."""

    name = "devices"
    known: dict[str, dict] = {}

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def remember(self, items: list[dict]) -> None:
        for item in items:
            self.known[item.get("binding_id") or item["device_id"]] = item

    @rpc
    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]:
        return [self.known[d] for d in device_ids if d in self.known]

    @rpc
    def value_added_for_order(self, actor: dict, binding_ids: list[str]) -> list[dict]:
        return [self.known[b] for b in binding_ids if b in self.known]

    @rpc
    def list_devices(self, actor: dict, filters: dict) -> dict:
        items = [d for d in self.known.values() if "binding_id" not in d]
        return {"items": items, "total": len(items), "page": 1, "per_page": 500}


class FakePaymentsService:
    name = "payments"
    attempts: dict[str, dict] = {}

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def start_payment(self, actor: dict, payload: dict) -> dict:
        key = payload["idempotency_key"]
        if key not in self.attempts:
            attempt_id = str(uuid.uuid4())
            self.attempts[key] = {
                **{k: v for k, v in payload.items() if k not in ("description", "idempotency_key")},
                "attempt_id": attempt_id,
                "status": "pending",
                "code_url": f"weixin://wxpay/bizpayurl?pr={attempt_id[:8]}",
                "approve_url": None,
                "created_at": datetime.now(UTC).isoformat(),
            }
        return self.attempts[key]


AUDIT = Queue(
    f"billing-audit-{uuid.uuid4().hex[:6]}",
    exchange=Exchange("billing.events", type="topic", durable=True),
    routing_key="#",
)
FAKES = [
    f"tests.integration.test_billing_gateway:{cls}"
    for cls in ("FakeCatalogService", "FakeDevicesService", "FakePaymentsService")
]


# -- the running slice ------------------------------------------------------------------------
class Slice:
    def __init__(self, platform: Platform, tag: str, clock_file: Path) -> None:
        self.platform = platform
        self.clock_file = clock_file
        self.vendor, self.customer, self.other = (f"{n}-{tag}" for n in ("vendor", "cust", "other"))
        self.tokens: dict[str, str] = {}
        self.sent = 0

    def envelope(self, source: str, type_: str, subject: str, data: dict) -> dict:
        self.sent += 1
        return {
            "id": str(uuid.uuid4()),
            "type": type_,
            "version": 1,
            "source": source,
            "subject": subject,
            "sequence": self.sent,
            "time": datetime.now(UTC).isoformat(),
            "correlation_id": None,
            "causation_id": None,
            "data": data,
        }

    def publish(self, source: str, type_: str, subject: str, data: dict, times: int = 1) -> None:
        envelope = self.envelope(source, type_, subject, data)
        self.platform.publish(source, [envelope] * times)

    def http(self, method: str, path: str, who: str, **kwargs) -> tuple[int, dict]:
        return self.platform.http(method, path, token=self.tokens[who], **kwargs)

    def ok(self, method: str, path: str, who: str, status: int = 200, **kwargs) -> dict:
        got, body = self.http(method, path, who, **kwargs)
        assert got == status, (method, path, got, body)
        return body


@pytest.fixture(scope="module")
def running(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slice]:
    work = tmp_path_factory.mktemp("billing-gateway")
    clock_file = work / "clock.json"
    env = {
        "IOTB_CLOCK_FILE": str(clock_file),
        "IOTB_STATEMENT_SCAN_SECONDS": "1",
        "IOTB_LAPSE_SCAN_SECONDS": "1",
    }
    platform = Platform(amqp_uri, work, services=("billing",), gateway=True, env=env)
    # the neighbours first, so the gateway's health check finds them
    (work / "fakes.yaml").write_text(f"AMQP_URI: '{amqp_uri}'\nserializer: json\n")
    fakes = Process(
        "fakes",
        [str(BIN / "nameko"), "run", "--config", str(work / "fakes.yaml"), *FAKES],
        platform.env,
        work,
    )
    relay = None
    try:
        platform.start()
        with Connection(amqp_uri) as conn:  # hears everything billing publishes from now on
            AUDIT(conn.channel()).declare()
        relay = relay_run("billing", platform.env, work)
        with platform.rpc() as proxy:
            wait_for(lambda: proxy.payments.health()["ok"], timeout=60, what="the fakes")
        tag = uuid.uuid4().hex[:6]
        slice_ = Slice(platform, tag, clock_file)
        for company_id, parent in (
            (slice_.vendor, None),
            (slice_.customer, slice_.vendor),
            (slice_.other, slice_.vendor),
        ):
            slice_.publish(
                "devices",
                "company_registered",
                company_id,
                {
                    "company_id": company_id,
                    "parent_id": parent,
                    "name": company_id,
                    "region": "china",
                },
            )
        for name, role, company in (
            ("sales", "sales", slice_.vendor),
            ("finance", "finance", slice_.vendor),
            ("admin", "admin", slice_.vendor),
            ("customer", "customer", slice_.customer),
            ("other", "customer", slice_.other),
        ):
            slice_.tokens[name] = platform.login(f"{name}-{tag}", role=role, company_id=company)
        wait_for(
            lambda: slice_.http("GET", f"/accounts/{slice_.other}", "admin")[0] == 200,
            timeout=30,
            what="the company tree to reach billing",
        )
        yield slice_
    finally:
        if relay is not None:
            relay.stop()
        fakes.stop()
        platform.stop()


def _remember(running: Slice, *items: dict) -> None:
    with running.platform.rpc() as proxy:
        proxy.devices.remember(list(items))


def _device(running: Slice, package_id: str | None, company: str | None = None, **extra) -> str:
    device_id = f"D{uuid.uuid4().hex[:10].upper()}"
    _remember(
        running,
        {
            "device_id": device_id,
            "company_id": company or running.customer,
            "package_id": package_id,
            "status": "active",
            "expires_at": datetime.now(UTC).isoformat(),
            **extra,
        },
    )
    return device_id


def _balance(running: Slice) -> str:
    body = running.ok("GET", f"/accounts/{running.customer}", "customer")
    return {b["currency"]: b["balance"] for b in body["balances"]}["CNY"]


# -- the story --------------------------------------------------------------------------------
def test_offline_recharge_then_a_renewal_paid_by_balance(running: Slice) -> None:
    filed = running.ok(
        "POST",
        "/offline-applications",
        "sales",
        201,
        body={
            "company_id": running.customer,
            "payer": "Zhang San",
            "currency": "CNY",
            "amount": "500.00",
            "reference_number": "ICBC-0001",
        },
    )
    assert filed["status"] == "draft"
    path = f"/offline-applications/{filed['application_id']}"
    running.ok("PUT", path, "sales", body={"amount": "600.00", "submit": True})
    got, refused = running.http(
        "POST", path + "/review", "sales", body={"decision": "approve", "opinion": "ok"}
    )
    assert (got, refused["error"]["code"]) == (403, "FORBIDDEN")
    got, refused = running.http("POST", path + "/review", "finance", body={"decision": "approve"})
    assert got == 400 and "opinion" in refused["error"]["fields"]
    approved = running.ok(
        "POST", path + "/review", "finance", body={"decision": "approve", "opinion": "slip ok"}
    )
    assert approved["status"] == "approved" and approved["amount"] == "600.00"
    assert _balance(running) == "600.00"

    unbound = _device(running, None)
    bound = _device(running, "pkg-monthly")
    got, refused = running.http(
        "POST", "/orders", "customer", body={"device_ids": [bound, unbound], "months": 6}
    )
    assert got == 422 and refused["error"]["fields"]["device_ids"] == [
        f"{unbound}: no renewal package bound"
    ]
    got, _ = running.http(
        "POST", "/orders", "customer", body={"device_ids": [bound], "months": 121}
    )
    assert got == 422
    order = running.ok(
        "POST", "/orders", "customer", 201, body={"device_ids": [bound], "months": 6}
    )
    assert order["total"] == "60.00" and order["lines"][0]["unit_price"] == "10.00"
    oid = order["order_id"]
    got, _ = running.http("POST", f"/orders/{oid}/pay", "customer", body={"method": "balance"})
    assert got == 409  # not confirmed yet
    running.ok("POST", f"/orders/{oid}/confirm", "customer")
    got, _ = running.http("POST", f"/orders/{oid}/pay", "other", body={"method": "balance"})
    assert got == 404  # another company's order
    paid = running.ok("POST", f"/orders/{oid}/pay", "customer", body={"method": "balance"})
    assert (paid["status"], paid["method"], paid["payment"]) == ("paid", "balance", None)
    assert _balance(running) == "540.00"
    listed = running.ok("GET", "/orders", "customer", query={"status": "paid", "method": "balance"})
    assert oid in [o["order_id"] for o in listed["items"]]
    entries = running.ok("GET", f"/accounts/{running.customer}/entries", "customer")
    assert [(e["direction"], e["amount"], e["reason"]) for e in entries["items"]] == [
        ("debit", "60.00", "order"),
        ("credit", "600.00", "offline_application"),
    ]

    # devices could not renew it (suspended meanwhile): refunded once, even if redelivered
    running.publish(
        "devices",
        "renewal_applied",
        oid,
        {
            "order_id": oid,
            "order_number": order["order_number"],
            "company_id": running.customer,
            "currency": "CNY",
            "total": "60.00",
            "paid_at": paid["paid_at"],
            "lines": [
                {
                    "line_id": order["lines"][0]["line_id"],
                    "device_id": bound,
                    "outcome": "refused",
                    "reason": "device suspended",
                    "months": 6,
                    "amount": "60.00",
                }
            ],
        },
        times=2,
    )
    wait_for(lambda: _balance(running) == "600.00", timeout=20, what="the refund")
    assert running.ok("GET", f"/orders/{oid}", "customer")["refunded_total"] == "60.00"


def test_a_provider_payment_and_a_recharge_take_effect_once(running: Slice) -> None:
    device = _device(running, "pkg-yearly")
    order = running.ok(
        "POST", "/orders", "customer", 201, body={"device_ids": [device], "months": 12}
    )
    oid = order["order_id"]
    running.ok("POST", f"/orders/{oid}/confirm", "customer")
    started = running.ok("POST", f"/orders/{oid}/pay", "customer", body={"method": "wechat_pay"})
    attempt = started["payment"]
    assert started["status"] == "confirmed" and attempt["code_url"].startswith("weixin://")
    before = _balance(running)

    def succeeded(attempt: dict) -> dict:
        return {
            **{k: attempt[k] for k in ("attempt_id", "purpose", "reference_id", "company_id")},
            "method": attempt["method"],
            "amount": attempt["amount"],
            "currency": attempt["currency"],
            "provider_trade_no": "4200001",
            "paid_at": datetime.now(UTC).isoformat(),
        }

    for _ in range(2):  # the same success reported twice, in two messages
        running.publish("payments", "payment_succeeded", attempt["attempt_id"], succeeded(attempt))
    wait_for(
        lambda: running.ok("GET", f"/orders/{oid}", "customer")["status"] == "paid",
        timeout=20,
        what="the order to be paid",
    )
    recharge = running.ok(
        "POST",
        "/recharges",
        "customer",
        201,
        body={"currency": "CNY", "amount": "88.80", "method": "alipay"},
    )
    assert recharge["order_type"] == "recharge" and recharge["payment"]["amount"] == "88.80"
    running.publish("payments", "payment_succeeded", "r", succeeded(recharge["payment"]), times=3)
    expected = str(D(before) + D("88.80"))
    wait_for(lambda: _balance(running) == expected, timeout=20, what="the recharge")
    records = running.ok("GET", "/recharges", "customer")
    assert [r["status"] for r in records["items"] if r["order_id"] == recharge["order_id"]] == [
        "paid"
    ]
    got, refused = running.http(
        "POST",
        "/recharges",
        "customer",
        body={"currency": "CNY", "amount": "1.00", "method": "paypal"},
    )
    assert got == 422 and "method" in refused["error"]["fields"]
    assert _balance(running) == expected


def test_finance_exports_exactly_the_filtered_paid_orders(running: Slice) -> None:
    status, refused = running.http("GET", "/order-management", "customer")
    assert status == 403
    listed = running.ok(
        "GET",
        "/order-management",
        "finance",
        query={"company_id": running.customer, "per_page": 500},
    )
    assert listed["total"] >= 2 and {o["status"] for o in listed["items"]} == {"paid"}
    answer = requests.get(
        running.platform.base_url + "/order-management/export",
        params={"company_id": running.customer},
        headers={"Authorization": f"Bearer {running.tokens['finance']}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in answer.headers["Content-Disposition"]
    rows = list(
        load_workbook(io.BytesIO(answer.content), read_only=True).active.iter_rows(values_only=True)
    )
    assert sorted(r[0] for r in rows[1:]) == sorted(o["order_number"] for o in listed["items"])


def test_configs_auto_renewal_and_statements(running: Slice) -> None:
    config = {
        "region": "china",
        "default_currency": "CNY",
        "billing_cycle": "monthly",
        "auto_renewal": True,
        "push_enabled": True,
        "language": "zh",
        "push_emails": ["ops@fleet.example"],
    }
    running.ok("PUT", f"/accounts/{running.customer}/config", "sales", body=config)
    got, _ = running.http("PUT", f"/accounts/{running.customer}/config", "customer", body=config)
    assert got == 403
    changed = running.ok(
        "PATCH", f"/accounts/{running.customer}/config", "customer", body={"language": "en"}
    )
    assert changed["language"] == "en"
    got, refused = running.http(
        "PATCH", f"/accounts/{running.customer}/config", "customer", body={"push_emails": ["nope"]}
    )
    assert got == 422 and "push_emails.0" in refused["error"]["fields"]
    listed = running.ok("GET", "/account-configs", "sales", query={"whole_subtree": "true"})
    assert {c["company_id"]: c["configured"] for c in listed}[running.customer] is True

    device = _device(running, "pkg-monthly")
    expired = {
        "device_id": device,
        "company_id": running.customer,
        "expires_at": datetime.now(UTC).isoformat(),
        "package_id": "pkg-monthly",
    }
    running.publish("devices", "device_expired", device, expired, times=2)
    renewed = wait_for(
        lambda: running.ok("GET", "/auto-renewals", "customer", query={"device_id": device}),
        timeout=20,
        what="the auto-renewal",
    )
    assert [r["outcome"] for r in renewed] == ["renewed"]

    # time passes for every process: the month closes and a statement is issued
    Path(running.clock_file).write_text(json.dumps({"offset_seconds": 40 * 86400}))
    statements = wait_for(
        lambda: running.ok("GET", f"/accounts/{running.customer}/statements", "customer"),
        timeout=30,
        what="a statement",
    )
    head = statements[0]
    answer = requests.get(
        running.platform.base_url + f"/statements/{head['statement_id']}/xlsx",
        headers={"Authorization": f"Bearer {running.tokens['customer']}"},
        timeout=30,
    )
    assert answer.status_code == 200
    sheet = load_workbook(io.BytesIO(answer.content)).active
    values = [row for row in sheet.iter_rows(values_only=True)]
    assert values[1][:2] == ("Company", running.customer)
    assert any(row[:1] == ("CNY",) for row in values)


def test_every_published_event_matches_its_contract(running: Slice) -> None:
    config = {"region": "china", "default_currency": "CNY", "billing_cycle": "quarterly"}
    running.ok("PUT", f"/accounts/{running.other}/config", "sales", body=config)
    status, _ = running.http("DELETE", f"/accounts/{running.other}/config", "sales")
    assert status == 204
    seen: list[dict] = []
    with Connection(running.platform.amqp_uri) as conn, conn.channel() as channel:

        def drained() -> bool:
            bound = AUDIT(channel)
            while (message := bound.get(no_ack=True)) is not None:
                seen.append(json.loads(message.body))
            return any(
                e["type"] == "account_config_deleted" and e["subject"] == running.other
                for e in seen
            )

        wait_for(drained, timeout=30, what="the relay to publish")
    assert [validate(e) for e in seen if validate(e)] == []
    kinds = {e["type"] for e in seen}
    assert {"account_config_set", "account_config_deleted"} <= kinds
    assert len({e["id"] for e in seen}) == len(seen)  # each event published once
