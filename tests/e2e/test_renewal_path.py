"""The whole platform as separate processes (deploy/Procfile under honcho, as `make run`
starts it), walked over HTTP: a device is bound, expires on the service clock, the
customer's company is recharged offline, the customer renews it by balance, the devices
service extends it and a receipt arrives by SMTP. Every message the relays publish on
the way is checked against its contract."""

from __future__ import annotations

import email
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from email.policy import default as default_policy
from pathlib import Path

import pytest
import requests
from kombu import Connection, Exchange, Queue

from contracts.envelope import validate
from services.common.config import SERVICES
from services.devices.domain import add_months
from tests.conftest import RUN, _drop_databases
from tests.support.processes import ROOT, Process, free_port, wait_for

pytestmark = pytest.mark.e2e

PASSWORD = "demo-pass-2026"
AUDIT = "e2e-audit"


class Platform:
    def __init__(self, base: str, demo: dict, mail_dir: Path, amqp_uri: str, log: Path) -> None:
        self.base = base
        self.demo = demo
        self.mail_dir = mail_dir
        self.amqp_uri = amqp_uri
        self.log = log
        self.tokens: dict[str, str] = {}
        self.simulators: dict[str, str] = {}

    def login(self, username: str) -> dict:
        if username not in self.tokens:
            answer = requests.post(
                f"{self.base}/auth/login",
                json={"username": username, "password": PASSWORD},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            self.tokens[username] = answer.json()["token"]
        return {"Authorization": f"Bearer {self.tokens[username]}"}

    def call(self, method: str, path: str, user: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.base}{path}", headers=self.login(user), timeout=60, **kwargs
        )

    def audit(self) -> list[dict]:
        messages = []
        with Connection(self.amqp_uri) as conn, conn.channel() as channel:
            queue = Queue(AUDIT)(channel)
            while (message := queue.get(no_ack=True)) is not None:
                messages.append(json.loads(message.body))
        return messages


@pytest.fixture(scope="module")
def platform(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("e2e")
    prefix = f"{RUN}_e2e{uuid.uuid4().hex[:4]}_"
    address = f"127.0.0.1:{free_port()}"
    smtp_port = free_port()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "IOTB_STORE": "postgres",
        "IOTB_DB_PREFIX": prefix,
        "AMQP_URI": amqp_uri,
        "IOTB_DATA_DIR": str(work / "var"),
        "IOTB_GATEWAY_ADDRESS": address,
        "IOTB_CLOCK_FILE": str(work / "clock.json"),
        "IOTB_CLOCK_CONTROL": "1",
        "IOTB_EXPIRY_SCAN_SECONDS": "1",
        "IOTB_SMTP_HOST": "127.0.0.1",
        "IOTB_SMTP_PORT": str(smtp_port),
        "IOTB_JWT_SECRET": uuid.uuid4().hex,
        "IOTB_SIM_WECHAT_PORT": str(free_port()),
        "IOTB_SIM_ALIPAY_PORT": str(free_port()),
        "IOTB_SIM_PAYPAL_PORT": str(free_port()),
        "EVENTLET_TESTS": "1",
    }
    # an audit queue on every service's exchange, declared before anything is published
    with Connection(amqp_uri) as conn, conn.channel() as channel:
        for service in SERVICES:
            exchange = Exchange(f"{service}.events", type="topic", durable=True)
            exchange(channel).declare()
            Queue(AUDIT, exchange=exchange, routing_key="#", durable=True)(channel).declare()
    subprocess.run([sys.executable, "-m", "services.common.prepare"], env=env, cwd=ROOT, check=True)
    mail_dir = work / "mail"
    sink = Process(
        "smtp",
        [
            sys.executable,
            "-m",
            "tests.support.smtp_sink",
            "--port",
            str(smtp_port),
            "--dir",
            str(mail_dir),
        ],
        env,
        work,
    )
    honcho = Process(
        "platform",
        [sys.executable, "-m", "honcho", "start", "-f", "deploy/Procfile", "-d", str(ROOT)],
        env,
        work,
    )
    base = f"http://{address}"
    try:
        wait_for(lambda: (mail_dir / "ready").exists(), timeout=30, what="the SMTP sink")
        wait_for(
            lambda: requests.get(f"{base}/health", timeout=5).json()["status"] == "ok",
            timeout=90,
            what=lambda: f"a healthy platform:\n{honcho.tail(60)}",
        )
        loaded = subprocess.run(
            [sys.executable, "deploy/demo.py"],
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        running = Platform(base, json.loads(loaded.stdout), mail_dir, amqp_uri, honcho.log)
        running.simulators = {
            name: f"http://127.0.0.1:{env[f'IOTB_SIM_{name.upper()}_PORT']}"
            for name in ("wechat", "alipay", "paypal")
        }
        yield running
    finally:
        honcho.stop()  # SIGTERM: honcho stops every process it started
        sink.stop()
        _drop_databases(prefix)


def _money(text: str) -> Decimal:
    return Decimal(text)


def _cny(platform: Platform, company_id: str, user: str = "customer") -> Decimal:
    answer = platform.call("GET", f"/accounts/{company_id}", user)
    assert answer.status_code == 200, answer.text
    return next(_money(b["balance"]) for b in answer.json()["balances"] if b["currency"] == "CNY")


def test_a_device_is_renewed_across_five_services(platform: Platform) -> None:
    customer_company = platform.demo["companies"]["cn_customer"]
    device = "860000000000012"  # a dashcam of the China customer, unbound, expiring in 31 days
    yearly_cny = platform.demo["packages"]["RN-CN-Y"]  # 100.00 CNY per year

    # T3: support binds a CNY renewal package to the device
    bound = platform.call(
        "POST",
        "/renewal-bindings",
        "support",
        json={"package_id": yearly_cny, "device_ids": [device]},
    )
    assert bound.status_code == 200, bound.text
    before = platform.call("GET", f"/devices/{device}", "customer").json()
    assert before["status"] == "active" and before["package_id"] == yearly_cny

    # the device passes its expiry on the service clock
    shifted = platform.call("POST", "/admin/clock", "admin", json={"advance_days": 32})
    assert shifted.status_code == 200, shifted.text
    wait_for(
        lambda: (
            platform.call("GET", f"/devices/{device}", "customer").json()["status"] == "expired"
        ),
        timeout=30,
        what="the device to expire",
    )

    # S1 + F1: sales files an offline recharge of 1,000.00 CNY, finance approves it
    filed = platform.call(
        "POST",
        "/offline-applications",
        "sales",
        json={
            "company_id": customer_company,
            "payer": "Shenzhen Fleet Logistics",
            "currency": "CNY",
            "amount": "1000.00",
            "reference_number": "BANK-2026-0001",
            "submit": True,
        },
    )
    assert filed.status_code == 201, filed.text
    application = filed.json()["application_id"]
    own = platform.call(
        "POST",
        f"/offline-applications/{application}/review",
        "sales",
        json={"decision": "approve", "opinion": "mine"},
    )
    assert own.status_code == 403  # sales may not review at all
    approved = platform.call(
        "POST",
        f"/offline-applications/{application}/review",
        "finance",
        json={"decision": "approve", "opinion": "bank slip matches"},
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved", approved.text

    # the applicant hears of the decision, with the reviewer's opinion
    def decision_mail() -> email.message.EmailMessage | None:
        for path in platform.mail_dir.glob("*.eml"):
            found = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if found["To"] == "sales@iot-vendor.example":
                return found
        return None

    decision = wait_for(decision_mail, timeout=30, what="the applicant's mail")
    assert "bank slip matches" in decision.get_body(preferencelist=("plain",)).get_content()
    assert _cny(platform, customer_company) == Decimal("1000.00")

    # C1: the customer lists expired devices, orders 12 months, confirms, pays by balance
    center = platform.call("GET", "/renewal-center", "customer")
    assert center.status_code == 200, center.text
    listed = {d["device_id"]: d for d in center.json()}
    assert listed[device]["renewable"] and listed[device]["status"] == "expired"
    created = platform.call(
        "POST", "/orders", "customer", json={"device_ids": [device], "months": 12}
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert (
        order["status"] == "created" and order["total"] == "100.00" and order["currency"] == "CNY"
    )
    assert "balance" in order["payment_methods"]
    too_early = platform.call(
        "POST", f"/orders/{order['order_id']}/pay", "customer", json={"method": "balance"}
    )
    assert too_early.status_code == 409  # only a confirmed order can be paid
    confirmed = platform.call("POST", f"/orders/{order['order_id']}/confirm", "customer")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "confirmed"
    paid = platform.call(
        "POST", f"/orders/{order['order_id']}/pay", "customer", json={"method": "balance"}
    )
    assert paid.status_code == 200 and paid.json()["status"] == "paid", paid.text

    # the ledger debited exactly the price
    assert _cny(platform, customer_company) == Decimal("900.00")

    # the devices service moves the expiry 12 months from the later of expiry and payment
    paid_at = datetime.fromisoformat(paid.json()["paid_at"])
    old_expiry = datetime.fromisoformat(before["expires_at"])
    expected = add_months(max(old_expiry, paid_at), 12)
    renewed = wait_for(
        lambda: (
            (d := platform.call("GET", f"/devices/{device}", "customer").json())["status"]
            == "active"
            and d
        ),
        timeout=30,
        what="the device to be renewed",
    )
    assert datetime.fromisoformat(renewed["expires_at"]) == expected

    # C2: the customer sees the order as paid
    orders = platform.call("GET", "/orders", "customer", params={"status": "paid"}).json()
    assert order["order_id"] in {o["order_id"] for o in orders["items"]}

    # notifications e-mails a receipt over SMTP, in the company's language
    def receipt() -> email.message.EmailMessage | None:
        for path in platform.mail_dir.glob("*.eml"):
            found = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if order["order_number"] in found["Subject"]:
                return found
        return None

    mail = wait_for(receipt, timeout=30, what="a receipt")
    assert mail["To"] == "fleet-ops@shenzhen-fleet.example"
    assert order["order_number"] in mail["Subject"] and "回执" in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert device in text and "100.00 CNY" in text
    assert mail.get_body(preferencelist=("html",)) is not None

    # every message the relays published validates against its contract
    messages = wait_for(
        lambda: (
            (found := platform.audit()) and any(m["type"] == "mail_sent" for m in found) and found
        ),
        timeout=30,
        what="the relays' messages",
    )
    problems = {m["id"]: validate(m) for m in messages if validate(m)}
    assert problems == {}
    seen = {m["type"] for m in messages}
    assert {
        "company_registered",
        "device_registered",
        "package_created",
        "package_bound",
        "device_expired",
        "account_config_set",
        "offline_application_submitted",
        "offline_application_approved",
        "account_credited",
        "order_created",
        "order_confirmed",
        "order_paid",
        "account_debited",
        "device_renewed",
        "renewal_applied",
        "mail_sent",
    } <= seen


def _balance(platform: Platform, company_id: str, currency: str, user: str) -> Decimal:
    answer = platform.call("GET", f"/accounts/{company_id}", user)
    assert answer.status_code == 200, answer.text
    return next(
        _money(b["balance"]) for b in answer.json()["balances"] if b["currency"] == currency
    )


def test_a_renewal_paid_by_wechat_pay_and_a_recharge_paid_by_paypal(platform: Platform) -> None:
    china = platform.demo["companies"]["cn_customer"]
    abroad = platform.demo["companies"]["intl_customer"]
    device = "860000000000002"  # expired, bound to the monthly CNY package

    # a renewal order, paid by WeChat Pay: the payer scans the QR code in the simulator
    balance_before = _balance(platform, china, "CNY", "customer")
    order = platform.call("POST", "/orders", "customer", json={"device_ids": [device], "months": 6})
    assert order.status_code == 201, order.text
    order_id = order.json()["order_id"]
    assert order.json()["total"] == "60.00"
    assert platform.call("POST", f"/orders/{order_id}/confirm", "customer").status_code == 200
    paypal_refused = platform.call(
        "POST", f"/orders/{order_id}/pay", "customer", json={"method": "paypal"}
    )
    assert paypal_refused.status_code == 422  # not offered to a China account paying CNY
    started = platform.call(
        "POST", f"/orders/{order_id}/pay", "customer", json={"method": "wechat_pay"}
    )
    assert started.status_code == 200, started.text
    payment = started.json()["payment"]
    assert payment["code_url"].startswith("weixin://") and payment["amount"] == "60.00"
    before = platform.call("GET", f"/devices/{device}", "customer").json()["expires_at"]
    scanned = requests.post(
        f"{platform.simulators['wechat']}/_sim/pay/{payment['out_trade_no']}",
        json={"wait": True},
        timeout=30,
    )
    assert scanned.status_code == 200, scanned.text
    paid = wait_for(
        lambda: (
            (o := platform.call("GET", f"/orders/{order_id}", "customer").json())["status"]
            == "paid"
            and o
        ),
        timeout=30,
        what="the order paid by WeChat Pay",
    )
    assert paid["method"] == "wechat_pay"
    wait_for(
        lambda: (
            platform.call("GET", f"/devices/{device}", "customer").json()["expires_at"] != before
        ),
        timeout=30,
        what="the device renewed",
    )
    assert (
        _balance(platform, china, "CNY", "customer") == balance_before
    )  # the balance was not used

    # a recharge abroad, paid by PayPal: the payer approves in the simulator
    usd_before = _balance(platform, abroad, "USD", "customer-intl")
    recharge = platform.call(
        "POST",
        "/recharges",
        "customer-intl",
        json={"currency": "USD", "amount": "50.00", "method": "paypal"},
    )
    assert recharge.status_code == 201, recharge.text
    payment = recharge.json()["payment"]
    assert payment["approve_url"] and payment["currency"] == "USD"
    approved = requests.post(
        f"{platform.simulators['paypal']}/_sim/pay/{payment['provider_ref']}",
        json={"wait": True},
        timeout=30,
    )
    assert approved.status_code == 200, approved.text
    wait_for(
        lambda: _balance(platform, abroad, "USD", "customer-intl") == usd_before + Decimal("50.00"),
        timeout=60,
        what="the USD balance credited once by PayPal",
    )
    records = platform.call("GET", "/recharges", "customer-intl").json()
    assert any(r["status"] == "paid" and r["total"] == "50.00" for r in records["items"]), records


def test_bad_input_gets_the_json_error_and_changes_nothing(platform: Platform) -> None:
    customer_company = platform.demo["companies"]["cn_customer"]
    other_company = platform.demo["companies"]["intl_customer"]
    balance = _cny(platform, customer_company)
    good = {
        "company_id": customer_company,
        "payer": "P",
        "currency": "CNY",
        "amount": "10.00",
        "reference_number": "R-1",
    }
    cases = [
        ("POST", "/offline-applications", "sales", {**good, "amount": "-1"}, 422, "amount"),
        ("POST", "/offline-applications", "sales", {**good, "amount": "0.001"}, 422, "amount"),
        ("POST", "/offline-applications", "sales", {**good, "amount": "1e3"}, 422, "amount"),
        ("POST", "/offline-applications", "sales", {**good, "amount": "abc"}, 422, "amount"),
        ("POST", "/offline-applications", "sales", {**good, "currency": "EUR"}, 422, "currency"),
        (
            "POST",
            "/offline-applications",
            "sales",
            {k: v for k, v in good.items() if k != "payer"},
            400,
            "payer",
        ),
        ("POST", "/offline-applications", "sales", {**good, "submit": "maybe"}, 400, "submit"),
        (
            "POST",
            "/orders",
            "customer",
            {"device_ids": ["860000000000012"], "months": "twelve"},
            400,
            "months",
        ),
        (
            "POST",
            "/orders",
            "customer",
            {"device_ids": ["860000000000012"], "months": 0},
            422,
            "months",
        ),
        (
            "POST",
            "/orders",
            "customer",
            {"device_ids": ["NOPE-0000"], "months": 12},
            404,
            "device_ids",
        ),
        # a device of another company (the customer abroad)
        (
            "POST",
            "/orders",
            "customer",
            {"device_ids": ["860000000000016"], "months": 12},
            403,
            "device_ids",
        ),
        ("POST", "/orders/not-an-order/confirm", "customer", None, 404, None),
        ("GET", f"/accounts/{other_company}", "customer", None, 403, None),
        ("POST", "/offline-applications", "customer", good, 403, None),
    ]
    for method, path, user, body, status, field in cases:
        answer = (
            platform.call(method, path, user, json=body)
            if body is not None
            else platform.call(method, path, user)
        )
        assert answer.status_code == status, (path, body, answer.text)
        error = answer.json()["error"]
        assert error["code"] and error["message"], answer.text
        if field:
            assert field in error["fields"], (path, body, answer.text)
    no_token = requests.get(f"{platform.base}/orders", timeout=30)
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "UNAUTHORIZED"
    not_json = requests.post(
        f"{platform.base}/orders", data="{not json", headers=platform.login("customer"), timeout=30
    )
    assert not_json.status_code == 400
    assert _cny(platform, customer_company) == balance  # nothing changed


def test_the_openapi_document_describes_every_endpoint(platform: Platform) -> None:
    spec = requests.get(f"{platform.base}/openapi.json", timeout=30).json()
    assert spec["openapi"].startswith("3.")
    for path in (
        "/auth/login",
        "/orders",
        "/orders/{order_id}/pay",
        "/renewal-bindings",
        "/offline-applications",
    ):
        assert path in spec["paths"], path
    login = spec["paths"]["/auth/login"]["post"]
    assert "requestBody" in login and "401" in login["responses"]
