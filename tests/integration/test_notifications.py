"""Notifications against a real SMTP server (aiosmtpd, its own process) and a real
PostgreSQL store: each mail arrives in the company's language with the right content,
push off sends nothing, reminders are grouped per company and day, a duplicated or
replayed event makes one mail, a temporary SMTP failure is retried and a permanent one
is recorded.

The events are fed to the application as the service's handlers feed them (parsed
envelopes); tests/integration/test_notifications_service.py does it through RabbitMQ.
"""

from __future__ import annotations

import email
import io
import os
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from contracts.envelope import Envelope, contract, parse, validate
from services.common import clock as clock_module
from services.common.actor import Actor
from services.common.clock import FixedClock
from services.common.config import StoreConfig
from services.common.errors import Forbidden, NotFound
from services.common.relay import build_envelopes
from services.notifications.application import NotificationsApplication
from services.notifications.config import NotificationSettings
from services.notifications.mailer import Mailer
from services.notifications.projections import delivery_log
from services.notifications.relay import to_wire
from tests.support.processes import Process, free_port, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
ADMIN = Actor("u-admin", "admin", "admin", "vendor")


# -- the SMTP server --------------------------------------------------------------------------
class Sink:
    """tests/support/smtp_sink.py as a subprocess; every mail it accepts is a file."""

    def __init__(self, work: Path, fail_first: int = 0) -> None:
        self.port = free_port()
        self.dir = work / f"mail-{self.port}"
        args = [sys.executable, "-m", "tests.support.smtp_sink", "--port", str(self.port)]
        args += ["--dir", str(self.dir), "--fail-first", str(fail_first)]
        self.process = Process(f"smtp-{self.port}", args, dict(os.environ), work)
        wait_for(lambda: (self.dir / "ready").exists(), timeout=30, what="the SMTP sink")

    def mails(self, to: str | None = None) -> list[EmailMessage]:
        found = []
        for path in sorted(self.dir.glob("*.eml"), key=lambda p: int(p.stem)):
            mail = email.message_from_bytes(path.read_bytes(), policy=default_policy)
            if to is None or to in mail["To"]:
                found.append(mail)
        return found

    def mailer(self) -> Mailer:
        return Mailer(host="127.0.0.1", port=self.port, starttls=False, user="", timeout=10)


@pytest.fixture(scope="module")
def sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sink]:
    server = Sink(tmp_path_factory.mktemp("smtp"))
    yield server
    server.process.stop()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FixedClock:
    fixed = FixedClock(T0)
    monkeypatch.setattr(clock_module, "clock", fixed)
    return fixed


SETTINGS = NotificationSettings(
    digest_delay=timedelta(seconds=60), status_window=timedelta(seconds=60), backoff=(5, 30)
)


@pytest.fixture
def make_app(pg_store, clock: FixedClock, tmp_path: Path) -> Iterator:
    """Applications on a fresh PostgreSQL database (or SQLite, what ``make run`` uses)."""
    apps: list[NotificationsApplication] = []

    def make(mailer: Mailer, backend: str = "postgres") -> NotificationsApplication:
        config = (
            pg_store("notifications")
            if backend == "postgres"
            else StoreConfig("notifications", "sqlite", sqlite_path=tmp_path / "n.db")
        )
        app = NotificationsApplication(config=config, mailer=mailer, settings=SETTINGS)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()


# -- events as the handlers receive them --------------------------------------------------
_sequence = iter(range(1, 1_000_000))


def _wire(value: object) -> object:
    """Data as JSON carries it: times as ISO text, amounts as decimal strings."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_wire(v) for v in value]
    return value


def envelope(
    source: str,
    type_: str,
    data: dict,
    subject: str = "s",
    sequence: int | None = None,
    extra: dict | None = None,
) -> Envelope:
    """A parsed envelope, as a handler receives it. Events with a contract go through it
    (so the test data is what the wire allows); ``extra`` adds fields a contract does not
    carry yet; events still without a contract are passed as given."""
    head = {
        "id": str(uuid.uuid4()),
        "type": type_,
        "version": 1,
        "source": source,
        "subject": subject,
        "sequence": sequence if sequence is not None else next(_sequence),
        "time": T0.isoformat(),
        "correlation_id": None,
        "causation_id": None,
    }
    try:
        contract(source, type_)
    except KeyError:
        return Envelope(**{**head, "time": T0}, data={**data, **(extra or {})})
    parsed = parse({**head, "data": _wire(data)})
    return Envelope(**{**parsed.__dict__, "data": {**parsed.data, **(extra or {})}})


def setup_company(
    app: NotificationsApplication,
    company_id: str,
    language: str,
    emails: list[str],
    push: bool = True,
    sequence: int = 1,
) -> None:
    app.record_company(
        1,
        {
            "company_id": company_id,
            "parent_id": "vendor",
            "name": f"{company_id} Ltd",
            "region": "china",
        },
    )
    config = envelope(
        "billing",
        "account_config_set",
        {
            "company_id": company_id,
            "region": "china",
            "default_currency": "CNY",
            "billing_cycle": "monthly",
            "auto_renewal": True,
            "push_enabled": push,
            "language": language,
            "push_emails": emails,
        },
        subject=company_id,
        sequence=sequence,
    )
    app.record_account_config(config.sequence, config.data)


def renewal(company_id: str, order_id: str = "o-1", device: str = "860000000000012") -> dict:
    return {
        "order_id": order_id,
        "order_number": f"R-{order_id}",
        "company_id": company_id,
        "currency": "CNY",
        "total": "100.00",
        "paid_at": T0.isoformat(),
        "lines": [
            {
                "line_id": "l-1",
                "device_id": device,
                "outcome": "renewed",
                "reason": None,
                "months": 12,
                "amount": "100.00",
                "old_expires_at": (T0 - timedelta(days=1)).isoformat(),
                "new_expires_at": (T0 + timedelta(days=364)).isoformat(),
            }
        ],
    }


def value_added_order(company_id: str) -> dict:
    return {
        "order_id": "va-1",
        "order_number": "V-0001",
        "company_id": company_id,
        "order_type": "value_added",
        "currency": "CNY",
        "total": "30.00",
        "method": "alipay",
        "paid_at": T0.isoformat(),
        "lines": [
            {
                "line_id": "l-1",
                "device_id": "860000000000013",
                "binding_id": "b-1",
                "package_id": "pk-va",
                "package_name": "Cloud video 30 days",
                "months": 3,
                "unit_price": "10.00",
                "amount": "30.00",
            }
        ],
    }


def review(company_id: str, decision: str) -> dict:
    return {
        "application_id": "app-1",
        "company_id": company_id,
        "applicant": "wang.sales",
        "payer": "Shenzhen Fleet Logistics",
        "currency": "CNY",
        "amount": "1000.00",
        "reference_number": "BANK-2026-0001",
        "reviewer": "li.finance",
        "opinion": "slip does not match" if decision != "approved" else "bank slip matches",
    }


def statement(company_id: str) -> dict:
    return {
        "statement_id": f"st-{company_id}",
        "company_id": company_id,
        "cycle": "monthly",
        "period_start": "2026-01-31T16:00:00+00:00",
        "period_end": "2026-02-28T16:00:00+00:00",
        "balances": [
            {
                "currency": "CNY",
                "opening_balance": "0.00",
                "total_credits": "1000.00",
                "total_debits": "100.00",
                "closing_balance": "900.00",
                "entries": 2,
            }
        ],
    }


def text_of(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("plain",)).get_content()


def html_of(mail: EmailMessage) -> str:
    return mail.get_body(preferencelist=("html",)).get_content()


def log_rows(app: NotificationsApplication, **where: str) -> list[sa.Row]:
    with app.engine.connect() as conn:
        query = sa.select(delivery_log)
        for name, value in where.items():
            query = query.where(delivery_log.c[name] == value)
        return conn.execute(query).all()


# -- each mail, in each language ---------------------------------------------------------------
EXPECTED = {
    # template: (zh subject part, en subject part, text parts in both languages)
    "renewal_receipt": ("回执", "Receipt for order", ["860000000000012", "100.00 CNY"]),
    "value_added_receipt": (
        "增值服务",
        "value-added order",
        ["860000000000013", "30.00 CNY", "Cloud video 30 days"],
    ),
    "balance_credited": ("入账", "credited to your balance", ["1,000.00 CNY", "1,250.00 CNY"]),
    "refund_credited": ("退款", "Refund of", ["100.00 CNY", "o-9:l-1"]),
    "offline_application_approved": ("已通过", "approved", ["bank slip matches"]),
    "offline_application_returned": ("退回修改", "returned", ["slip does not match"]),
    "offline_application_rejected": ("驳回", "rejected", ["slip does not match"]),
    "auto_renewal_failed": ("自动续费失败", "Auto-renewal failed", ["60.00 CNY", "40.00 CNY"]),
    "statement": ("对账单", "statement", ["900.00 CNY", "2026-02-01"]),
}


@pytest.mark.parametrize("language", ["zh", "en"])
def test_each_mail_arrives_in_the_company_language(
    sink: Sink, make_app, clock: FixedClock, language: str
) -> None:
    app = make_app(sink.mailer())
    company, address = f"c-{language}", f"ops-{language}-{uuid.uuid4().hex[:6]}@example.com"
    applicant = f"wang-{language}-{uuid.uuid4().hex[:6]}@example.com"
    setup_company(app, company, language, [address, f"cc-{address}"])

    # receipts: a renewal applied by devices, a value-added order paid
    app.renewal_applied(envelope("devices", "renewal_applied", renewal(company)))
    app.order_paid(envelope("billing", "order_paid", value_added_order(company)))
    # balance: a recharge credited, a refund credited, a debit (no mail)
    credit = {"company_id": company, "currency": "CNY", "at": T0.isoformat()}
    app.account_credited(
        envelope(
            "billing",
            "account_credited",
            {
                **credit,
                "amount": "1000.00",
                "balance": "1250.00",
                "reason": "recharge",
                "reference": "r-1",
            },
        )
    )
    app.account_credited(
        envelope(
            "billing",
            "account_credited",
            {
                **credit,
                "amount": "100.00",
                "balance": "1350.00",
                "reason": "refund",
                "reference": "o-9:l-1",
            },
        )
    )
    # offline applications: to the applicant, in the company's language
    for decision in ("approved", "returned", "rejected"):
        app.application_reviewed(
            envelope(
                "billing",
                f"offline_application_{decision}",
                review(company, decision),
                extra={"applicant_email": applicant},
            )
        )
    app.auto_renewal_failed(
        envelope(
            "billing",
            "auto_renewal_failed",
            {
                "company_id": company,
                "device_id": "860000000000014",
                "package_id": "pk-1",
                "expires_at": T0.isoformat(),
                "currency": "CNY",
                "amount": "100.00",
                "balance": "40.00",
                "missing": "60.00",
            },
        )
    )
    app.statement_issued(envelope("billing", "statement_issued", statement(company)))

    to_company = sink.mails(to=address)
    to_applicant = sink.mails(to=applicant)
    assert len(to_company) == 6 and len(to_applicant) == 3
    by_template = {mail["Subject"]: mail for mail in [*to_company, *to_applicant]}
    rows = {row.subject: row for row in log_rows(app)}
    assert set(rows) == set(by_template)  # every mail is in the delivery log
    for template, (zh_part, en_part, texts) in EXPECTED.items():
        subject = next(s for s, row in rows.items() if row.template == template)
        mail = by_template[subject]
        assert (zh_part if language == "zh" else en_part) in subject, (template, subject)
        body = text_of(mail)
        for part in texts:
            assert part in body, (template, part, body)
        assert html_of(mail).startswith("<!DOCTYPE html>")
        assert rows[subject].status == "sent" and rows[subject].attempts == 1
        assert rows[subject].language == language
    # company mails go to every push address; times are China Standard Time
    receipt = by_template[next(s for s, r in rows.items() if r.template == "renewal_receipt")]
    assert receipt["To"] == f"{address}, cc-{address}"
    assert "2026-03-10 09:30 CST" in text_of(receipt)
    # the statement carries its workbook, labelled in the same language
    mail = by_template[next(s for s, r in rows.items() if r.template == "statement")]
    (workbook,) = list(mail.iter_attachments())
    expected_name = "对账单-2026-02-01.xlsx" if language == "zh" else "statement-2026-02-01.xlsx"
    assert workbook.get_filename() == expected_name
    sheet = load_workbook(io.BytesIO(workbook.get_content())).active
    assert sheet["A1"].value == ("对账单编号" if language == "zh" else "Statement")
    assert sheet["B1"].value == f"st-{company}"
    # what the relay publishes about these mails fits the contract
    notes = app.recorder.select_notifications(start=1, limit=1000)
    wire = [
        m
        for note in notes
        for m in build_envelopes(
            "notifications", note.id, app.mapper.to_domain_event(note), to_wire, app
        )
    ]
    assert len([m for m in wire if m["type"] == "mail_sent"]) == 9
    assert [validate(m) for m in wire] == [{}] * len(wire)


def test_an_applicant_without_an_address_is_recorded_as_skipped(sink: Sink, make_app) -> None:
    app = make_app(sink.mailer())
    setup_company(app, "c-1", "zh", ["ops-skip@example.com"])
    before = len(sink.mails())
    app.application_reviewed(
        envelope("billing", "offline_application_rejected", review("c-1", "rejected"))
    )
    (row,) = log_rows(app)
    assert (row.status, row.reason, row.recipients) == ("skipped", "no address", [])
    app.tick()
    assert len(sink.mails()) == before


# -- push settings ----------------------------------------------------------------------------
def test_push_off_sends_nothing(sink: Sink, make_app, clock: FixedClock) -> None:
    app = make_app(sink.mailer())
    address = f"quiet-{uuid.uuid4().hex[:6]}@example.com"
    setup_company(app, "c-off", "en", [address], push=False, sequence=5)
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-off", "o-1")))
    app.device_expiring(
        envelope(
            "devices",
            "device_expiring",
            {
                "device_id": "d-1",
                "company_id": "c-off",
                "expires_at": T0 + timedelta(days=7),
                "days_before": 7,
            },
        )
    )
    clock.advance(seconds=120)
    app.tick()
    assert sink.mails(to=address) == [] and log_rows(app) == []

    # an older config (push on) arriving late changes nothing
    setup_company(app, "c-off", "en", [address], push=True, sequence=4)
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-off", "o-2")))
    assert sink.mails(to=address) == []

    # push on: mails flow
    setup_company(app, "c-off", "en", [address], push=True, sequence=6)
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-off", "o-3")))
    assert [m["Subject"] for m in sink.mails(to=address)] == ["Receipt for order R-o-3: 100.00 CNY"]

    # a deleted config stops them again
    deleted = envelope("billing", "account_config_deleted", {"company_id": "c-off"}, sequence=7)
    app.forget_account_config(deleted.sequence, deleted.data)
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-off", "o-4")))
    assert len(sink.mails(to=address)) == 1


# -- grouping ---------------------------------------------------------------------------------
def expiring(company: str, device: str, days: float, days_before: int = 7) -> Envelope:
    return envelope(
        "devices",
        "device_expiring",
        {
            "device_id": device,
            "company_id": company,
            "expires_at": T0 + timedelta(days=days),
            "days_before": days_before,
            "package_id": "pk-1",
        },
        subject=device,
    )


@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_expiry_reminders_make_one_mail_per_company_per_day(
    sink: Sink, make_app, clock: FixedClock, backend: str
) -> None:
    app = make_app(sink.mailer(), backend)
    a, b = f"a-{uuid.uuid4().hex[:6]}@example.com", f"b-{uuid.uuid4().hex[:6]}@example.com"
    setup_company(app, "c-a", "en", [a])
    setup_company(app, "c-b", "zh", [b])

    # day 1: three devices of A (one reminder delivered twice), one of B
    first = expiring("c-a", "dev-a1", 7)
    for reminder in (first, first, expiring("c-a", "dev-a2", 6.5), expiring("c-a", "dev-a3", 3)):
        app.device_expiring(reminder)
    app.device_expiring(expiring("c-b", "dev-b1", 7))
    app.tick()
    assert sink.mails(to=a) == []  # still gathering

    clock.advance(seconds=61)
    app.tick()
    (mail_a,) = sink.mails(to=a)
    assert mail_a["Subject"] == "Renewal reminder: 3 devices expire soon"
    body = text_of(mail_a)
    assert [line.split(";")[0] for line in body.splitlines() if line.startswith("- ")] == [
        "- Device: dev-a3",  # soonest first
        "- Device: dev-a2",
        "- Device: dev-a1",
    ]
    (mail_b,) = sink.mails(to=b)
    assert mail_b["Subject"] == "续费提醒：1 台设备即将到期" and "dev-b1" in text_of(mail_b)

    # later that day: another reminder waits for tomorrow's mail; a renewal drops dev-a2
    clock.advance(hours=2)
    app.device_expiring(expiring("c-a", "dev-a4", 6.9))
    app.device_expiring(first)  # redelivered once more: gathered already
    app.device_renewed(
        envelope(
            "devices",
            "device_renewed",
            {
                "device_id": "dev-a2",
                "company_id": "c-a",
                "order_id": "o-7",
                "line_id": "l-1",
                "months": 12,
                "old_expires_at": (T0 + timedelta(days=6.5)).isoformat(),
                "new_expires_at": (T0 + timedelta(days=371)).isoformat(),
            },
            subject="dev-a2",
        )
    )
    # support moves dev-a3's expiry a month out: it leaves the window
    app.device_expiry_changed(
        envelope(
            "devices",
            "device_expiry_changed",
            {
                "device_id": "dev-a3",
                "company_id": "c-a",
                "old_expires_at": T0 + timedelta(days=3),
                "new_expires_at": T0 + timedelta(days=33),
                "reason": "contract extended",
                "source": "manual",
            },
            subject="dev-a3",
        )
    )
    app.tick()
    clock.advance(hours=6)
    app.tick()
    assert len(sink.mails(to=a)) == 1  # one mail a day

    # day 2 (local midnight in Shanghai is 16:00 UTC): the second digest lists the new device
    # and every device still expiring within the window
    clock.advance(days=1)
    app.tick()
    assert len(sink.mails(to=a)) == 2
    second = text_of(sink.mails(to=a)[1])
    listed = {
        line.split(";")[0][len("- Device: ") :]
        for line in second.splitlines()
        if line.startswith("- ")
    }
    assert listed == {"dev-a1", "dev-a4"}
    assert len(sink.mails(to=b)) == 1
    kinds = [(r.template, r.status) for r in log_rows(app, company_id="c-a")]
    assert kinds == [("expiry_reminders", "sent")] * 2


def test_expired_and_suspended_devices_are_grouped_too(
    sink: Sink, make_app, clock: FixedClock
) -> None:
    app = make_app(sink.mailer())
    a = f"x-{uuid.uuid4().hex[:6]}@example.com"
    setup_company(app, "c-x", "zh", [a])
    for device in ("dev-1", "dev-2"):
        app.device_expired(
            envelope(
                "devices",
                "device_expired",
                {
                    "device_id": device,
                    "company_id": "c-x",
                    "expires_at": T0.isoformat(),
                    "package_id": None,
                },
                subject=device,
            )
        )
    for n, (kind, device) in enumerate(
        [
            ("device_suspended", "dev-3"),
            ("device_suspended", "dev-4"),
            ("device_reenabled", "dev-3"),
        ]
    ):
        app.device_status_changed(
            envelope(
                "devices",
                kind,
                {"device_id": device, "company_id": "c-x", "reason": "停运"},
                subject=device,
                sequence=n + 10,
            ),
            "suspended" if kind == "device_suspended" else "reenabled",
        )
    clock.advance(seconds=61)
    app.tick()
    subjects = sorted(m["Subject"] for m in sink.mails(to=a))
    assert subjects == ["2 台设备已到期", "设备状态变更通知：2 台设备"]
    status = next(m for m in sink.mails(to=a) if "状态" in m["Subject"])
    assert text_of(status).count("已停用") == 3  # two rows and the note
    assert "已恢复" in text_of(status)


# -- exactly once -----------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["postgres", "sqlite"])
def test_a_redelivered_or_replayed_event_makes_one_mail(sink: Sink, make_app, backend: str) -> None:
    app = make_app(sink.mailer(), backend)
    address = f"once-{uuid.uuid4().hex[:6]}@example.com"
    setup_company(app, "c-1", "zh", [address])
    applied = envelope("devices", "renewal_applied", renewal("c-1"), subject="o-1", sequence=1)
    app.renewal_applied(applied)
    app.renewal_applied(applied)  # RabbitMQ delivers it again
    # a replay: the same event republished under a new envelope id
    app.renewal_applied(
        envelope("devices", "renewal_applied", renewal("c-1"), subject="o-1", sequence=1)
    )
    app.tick()
    assert len(sink.mails(to=address)) == 1
    assert [r.status for r in log_rows(app)] == ["sent"]

    # a value-added order: billing's order_paid brings the receipt, devices' renewal_applied
    # of the same order does not bring a second one
    app.order_paid(envelope("billing", "order_paid", value_added_order("c-1")))
    lines = [{**renewal("c-1")["lines"][0], "device_id": "860000000000013", "binding_id": "b-1"}]
    done = {**renewal("c-1", "va-1"), "lines": lines}
    app.renewal_applied(envelope("devices", "renewal_applied", done))
    assert len(sink.mails(to=address)) == 2
    assert sorted(r.template for r in log_rows(app)) == ["renewal_receipt", "value_added_receipt"]
    # without billing's event first, the bound lines still make it a value-added receipt
    app.renewal_applied(
        envelope("devices", "renewal_applied", {**renewal("c-1", "va-2"), "lines": lines})
    )
    (last,) = log_rows(app, key="receipt:va-2")
    assert last.template == "value_added_receipt" and last.status == "sent"

    if backend == "sqlite":
        return  # one process of green threads on SQLite; replicas race on PostgreSQL
    # several workers handle one event at once while the timer looks for due mails
    racing = envelope("devices", "renewal_applied", renewal("c-1", "o-race"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        jobs = [pool.submit(app.renewal_applied, racing) for _ in range(4)]
        jobs += [pool.submit(app.tick) for _ in range(2)]
        for job in jobs:
            job.result()
    assert len([m for m in sink.mails(to=address) if "R-o-race" in m["Subject"]]) == 1


# -- failures ---------------------------------------------------------------------------------
def test_a_temporary_smtp_failure_is_retried(tmp_path: Path, make_app, clock: FixedClock) -> None:
    flaky = Sink(tmp_path, fail_first=1)  # answers 451 to the first mail
    try:
        app = make_app(flaky.mailer())
        setup_company(app, "c-1", "en", ["retry@example.com"])
        app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-1")))
        (row,) = log_rows(app)
        assert (row.status, row.attempts) == ("pending", 1) and "451" in row.last_error
        assert flaky.mails() == []

        clock.advance(seconds=4)
        app.tick()
        assert flaky.mails() == []  # still pausing (5 s after the first failure)

        clock.advance(seconds=2)
        app.tick()
        (mail,) = flaky.mails()
        assert "R-o-1" in mail["Subject"]
        (row,) = log_rows(app)
        assert (row.status, row.attempts, row.sent_at) == ("sent", 2, clock.now())
        clock.advance(hours=1)
        app.tick()
        assert len(flaky.mails()) == 1
    finally:
        flaky.process.stop()


def test_a_permanent_smtp_failure_is_recorded_not_retried(
    sink: Sink, make_app, clock: FixedClock
) -> None:
    app = make_app(sink.mailer())
    app.record_company(1, {"company_id": "c-1", "parent_id": None, "name": "C1", "region": "china"})
    # billing validates addresses; this one reaches us only if it did not
    app.record_account_config(
        1,
        {
            "company_id": "c-1",
            "push_enabled": True,
            "language": "en",
            "push_emails": ["bad@@example.com"],
        },
    )
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-1")))
    (row,) = log_rows(app)
    assert (row.status, row.attempts) == ("failed", 1) and "553" in row.last_error
    clock.advance(days=1)
    app.tick()
    (row,) = log_rows(app)
    assert (row.status, row.attempts) == ("failed", 1)
    notes = app.recorder.select_notifications(start=1, limit=100)
    wire = [
        m
        for note in notes
        for m in build_envelopes(
            "notifications", note.id, app.mapper.to_domain_event(note), to_wire, app
        )
    ]
    assert [m["type"] for m in wire] == ["mail_failed"] and validate(wire[0]) == {}


def test_without_smtp_each_mail_is_an_eml_file(tmp_path: Path, make_app) -> None:
    app = make_app(Mailer(host="", folder=tmp_path / "mail"))
    setup_company(app, "c-1", "zh", ["files@example.com"])
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-1", "o-1")))
    app.renewal_applied(envelope("devices", "renewal_applied", renewal("c-1", "o-2")))
    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert {f.stem for f in files} == {r.delivery_id for r in log_rows(app)}
    mail = email.message_from_bytes(files[0].read_bytes(), policy=default_policy)
    assert "回执" in mail["Subject"] and "100.00 CNY" in text_of(mail)


# -- the delivery log -------------------------------------------------------------------------
def test_the_delivery_log_shows_a_company_its_own_mails(sink: Sink, make_app) -> None:
    app = make_app(sink.mailer())
    app.record_company(
        1, {"company_id": "vendor", "parent_id": None, "name": "V", "region": "china"}
    )
    setup_company(app, "c-1", "en", ["one@example.com"])
    setup_company(app, "c-2", "en", ["two@example.com"])
    app.record_company(
        1, {"company_id": "c-1a", "parent_id": "c-1", "name": "C1a", "region": "china"}
    )
    setup_company(app, "c-1a", "en", ["one-a@example.com"])
    for company in ("c-1", "c-2", "c-1a"):
        app.renewal_applied(
            envelope("devices", "renewal_applied", renewal(company, f"o-{company}"))
        )

    customer = Actor("u-1", "customer", "customer", "c-1")
    mine = app.delivery_log(customer, {})
    assert {r["company_id"] for r in mine} == {"c-1", "c-1a"}  # its subtree
    row = mine[0]
    assert row["event"] == "devices.renewal_applied" and row["template"] == "renewal_receipt"
    assert row["status"] == "sent" and row["attempts"] == 1 and row["sent_at"] is not None
    assert len(app.delivery_log(ADMIN, {})) == 3
    assert len(app.delivery_log(ADMIN, {"company_id": "c-2", "status": "sent"})) == 1
    with pytest.raises(Forbidden):
        app.delivery_log(customer, {"company_id": "c-2"})
    other = app.delivery_log(ADMIN, {"company_id": "c-2"})[0]["delivery_id"]
    with pytest.raises(NotFound):
        app.delivery(customer, other)
    assert app.delivery(ADMIN, other)["company_id"] == "c-2"
