"""The notifications service as a real process: events arrive over RabbitMQ (one of them
delivered twice), mails go to a real SMTP server, reminders are gathered by the service's
timer, and the delivery log is read through the gateway with each role's scope."""

from __future__ import annotations

import email
import os
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path

import pytest
import sqlalchemy as sa

from contracts.envelope import validate
from services.common.scope import company_scope
from services.common.store import make_engine
from services.notifications.projections import mail_settings
from tests.support.platform import Platform
from tests.support.processes import Process, free_port, wait_for

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)


def wire(source: str, type_: str, subject: str, sequence: int, data: dict) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": type_,
        "version": 1,
        "source": source,
        "subject": subject,
        "sequence": sequence,
        "time": NOW.isoformat(),
        "correlation_id": None,
        "causation_id": None,
        "data": data,
    }


def company(company_id: str, parent: str | None) -> dict:
    return wire(
        "devices",
        "company_registered",
        company_id,
        1,
        {
            "company_id": company_id,
            "parent_id": parent,
            "name": f"{company_id} Ltd",
            "region": "china",
        },
    )


def config(company_id: str, language: str, address: str) -> dict:
    return wire(
        "billing",
        "account_config_set",
        company_id,
        1,
        {
            "company_id": company_id,
            "region": "china",
            "default_currency": "CNY",
            "billing_cycle": "monthly",
            "auto_renewal": False,
            "push_enabled": True,
            "language": language,
            "push_emails": [address],
        },
    )


def applied(company_id: str, order_id: str, device: str) -> dict:
    return wire(
        "devices",
        "renewal_applied",
        order_id,
        1,
        {
            "order_id": order_id,
            "order_number": f"R-{order_id}",
            "company_id": company_id,
            "currency": "CNY",
            "total": "100.00",
            "paid_at": NOW.isoformat(),
            "lines": [
                {
                    "line_id": "l-1",
                    "device_id": device,
                    "outcome": "renewed",
                    "reason": None,
                    "months": 12,
                    "amount": "100.00",
                    "old_expires_at": NOW.isoformat(),
                    "new_expires_at": (NOW + timedelta(days=365)).isoformat(),
                }
            ],
        },
    )


def expired(company_id: str, device: str) -> dict:
    return wire(
        "devices",
        "device_expired",
        device,
        3,
        {
            "device_id": device,
            "company_id": company_id,
            "expires_at": NOW.isoformat(),
            "package_id": None,
        },
    )


@pytest.fixture(scope="module")
def running(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    work = tmp_path_factory.mktemp("notifications")
    port = free_port()
    mail_dir = work / "smtp"
    sink = Process(
        "smtp",
        [
            sys.executable,
            "-m",
            "tests.support.smtp_sink",
            "--port",
            str(port),
            "--dir",
            str(mail_dir),
        ],
        dict(os.environ),
        work,
    )
    env = {
        "IOTB_SMTP_HOST": "127.0.0.1",
        "IOTB_SMTP_PORT": str(port),
        "IOTB_MAIL_TICK_SECONDS": "0.5",
        "IOTB_DIGEST_DELAY_SECONDS": "1",
    }
    platform = Platform(amqp_uri, work, services=("notifications",), gateway=True, env=env)
    try:
        wait_for(lambda: (mail_dir / "ready").exists(), timeout=30, what="the SMTP sink")
        platform.start()
        yield platform, mail_dir
    finally:
        platform.stop()
        sink.stop()


def mails(mail_dir: Path, to: str) -> list:
    found = []
    for path in sorted(mail_dir.glob("*.eml")):
        mail = email.message_from_bytes(path.read_bytes(), policy=default_policy)
        if to in mail["To"]:
            found.append(mail)
    return found


def test_mails_flow_once_and_the_log_is_scoped(running: tuple) -> None:
    platform, mail_dir = running
    one, two = f"one-{uuid.uuid4().hex[:6]}@example.com", f"two-{uuid.uuid4().hex[:6]}@example.com"

    # facts first: the company tree and both companies' push settings
    platform.publish(
        "devices", [company("vendor", None), company("c-1", "vendor"), company("c-2", "vendor")]
    )
    platform.publish("billing", [config("c-1", "zh", one), config("c-2", "en", two)])
    engine = make_engine(platform.store("notifications"))
    try:

        def facts_known() -> bool:
            with engine.connect() as conn:
                companies = conn.execute(sa.select(sa.func.count()).select_from(company_scope))
                settings = conn.execute(sa.select(sa.func.count()).select_from(mail_settings))
                return companies.scalar() == 3 and settings.scalar() == 2

        wait_for(facts_known, timeout=30, what="the company tree and push settings")
    finally:
        engine.dispose()

    # a receipt event delivered twice, another company's receipt, two expiries of c-1
    receipt = applied("c-1", "o-1", "860000000000012")
    messages = [receipt, receipt, applied("c-2", "o-2", "860000000000013")]
    assert [validate(m) for m in messages] == [{}, {}, {}]
    platform.publish("devices", messages)
    platform.publish("devices", [expired("c-1", "dev-1"), expired("c-1", "dev-2")])

    wait_for(lambda: len(mails(mail_dir, one)) == 2, timeout=30, what="c-1's receipt and digest")
    wait_for(lambda: len(mails(mail_dir, two)) == 1, timeout=30, what="c-2's receipt")
    subjects = sorted(m["Subject"] for m in mails(mail_dir, one))
    assert subjects == ["2 台设备已到期", "订单 R-o-1 付款回执：100.00 CNY"]
    assert mails(mail_dir, two)[0]["Subject"] == "Receipt for order R-o-2: 100.00 CNY"

    # the delivery log through the gateway
    admin = platform.login("mail-admin", role="admin", company_id="vendor")
    customer = platform.login("mail-customer", role="customer", company_id="c-1")
    status, everything = platform.http("GET", "/deliveries", token=admin)
    assert status == 200 and len(everything) == 3
    status, own = platform.http("GET", "/deliveries", token=customer)
    assert status == 200 and {d["company_id"] for d in own} == {"c-1"} and len(own) == 2
    receipt_row = next(d for d in own if d["template"] == "renewal_receipt")
    assert receipt_row["event"] == "devices.renewal_applied"
    assert receipt_row["recipients"] == [one] and receipt_row["language"] == "zh"
    assert receipt_row["status"] == "sent" and receipt_row["attempts"] == 1
    assert receipt_row["cause_id"] == receipt["id"] and receipt_row["sent_at"]
    digest = next(d for d in own if d["template"] == "devices_expired")
    assert sorted(digest["about"]) == ["dev-1", "dev-2"]

    status, filtered = platform.http(
        "GET", "/deliveries", token=admin, query={"company_id": "c-2", "status": "sent"}
    )
    assert status == 200 and [d["company_id"] for d in filtered] == ["c-2"]
    status, body = platform.http("GET", "/deliveries", token=customer, query={"company_id": "c-2"})
    assert status == 403, body
    status, body = platform.http("GET", f"/deliveries/{filtered[0]['delivery_id']}", token=customer)
    assert status == 404, body
    status, body = platform.http("GET", f"/deliveries/{receipt_row['delivery_id']}", token=customer)
    assert status == 200 and body["subject"] == receipt_row["subject"]
    status, body = platform.http("GET", "/deliveries", token=customer, query={"status": "lost"})
    assert status == 422, body
    assert platform.http("GET", "/deliveries")[0] == 401

    # the same event once more, then a new order behind it on the same queue: when the new
    # order's receipt is there, the duplicate was handled too, and made no mail
    platform.publish("devices", [receipt, applied("c-1", "o-3", "860000000000014")])
    wait_for(lambda: len(mails(mail_dir, one)) >= 3, timeout=30, what="the receipt of o-3")
    subjects = sorted(m["Subject"] for m in mails(mail_dir, one))
    assert subjects == [
        "2 台设备已到期",
        "订单 R-o-1 付款回执：100.00 CNY",
        "订单 R-o-3 付款回执：100.00 CNY",
    ]
