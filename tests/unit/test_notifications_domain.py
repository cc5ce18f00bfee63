"""Deliveries: made once per key, claimed before sending, retried with a growing pause after
a temporary failure, never retried after a permanent one; daily digests per local day."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from services.notifications.config import NotificationSettings, zone
from services.notifications.documents import attachment
from services.notifications.domain import (
    MAX_ATTEMPTS,
    SENDING_LEASE,
    Delivery,
    DeliveryRefused,
    daily_period,
    days_left,
)
from services.notifications.mailer import build_message

T0 = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)
SHANGHAI = zone("Asia/Shanghai")


def _delivery(key: str = "receipt:o-1", skipped: str | None = None) -> Delivery:
    return Delivery(
        key=key,
        template="renewal_receipt",
        company_id="c1",
        language="zh",
        recipients=["ops@example.com"],
        subject="回执",
        text="text",
        html="<p>html</p>",
        event="devices.renewal_applied",
        cause_id="env-1",
        about=["860000000000012"],
        skipped=skipped,
        created_at=T0,
    )


def test_the_same_key_makes_the_same_delivery_id() -> None:
    assert _delivery().id == _delivery().id == Delivery.create_id("receipt:o-1")
    assert _delivery("receipt:o-2").id != _delivery().id


def test_a_delivery_is_claimed_before_it_is_sent() -> None:
    delivery = _delivery()
    assert delivery.due(T0)
    delivery.start_attempt(T0)
    assert delivery.status == "sending" and not delivery.due(T0)
    with pytest.raises(DeliveryRefused):
        delivery.start_attempt(T0)  # a second worker may not send it too
    delivery.sent(at=T0)
    assert (delivery.status, delivery.attempts, delivery.sent_at) == ("sent", 1, T0)
    assert not delivery.due(T0 + timedelta(days=1))


def test_a_claim_left_by_a_crashed_worker_lapses() -> None:
    delivery = _delivery()
    delivery.start_attempt(T0)
    assert not delivery.due(T0 + SENDING_LEASE - timedelta(seconds=1))
    assert delivery.due(T0 + SENDING_LEASE)


def test_temporary_failures_are_retried_after_a_growing_pause_then_given_up() -> None:
    delivery = _delivery()
    at = T0
    pauses = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        delivery.start_attempt(at)
        delivery.fail(at, "451 try again later", permanent=False, backoff=(5, 30, 120))
        assert delivery.attempts == attempt
        if delivery.status == "failed":
            break
        assert delivery.status == "pending" and not delivery.due(at)
        pauses.append((delivery.retry_at - at).total_seconds())
        at = delivery.retry_at
    assert pauses == [5, 30, 120, 120, 120]
    assert delivery.status == "failed" and delivery.attempts == MAX_ATTEMPTS
    assert not delivery.due(at + timedelta(days=30))


def test_a_permanent_failure_is_recorded_and_not_retried() -> None:
    delivery = _delivery()
    delivery.start_attempt(T0)
    delivery.fail(T0, "550 no such user", permanent=True)
    assert (delivery.status, delivery.attempts, delivery.retry_at) == ("failed", 1, None)
    assert delivery.last_error == "550 no such user"
    assert not delivery.due(T0 + timedelta(days=1))


def test_a_skipped_delivery_is_never_sent() -> None:
    delivery = _delivery(skipped="no address")
    assert delivery.status == "skipped" and delivery.reason == "no address"
    assert not delivery.due(T0)


def test_a_daily_digest_belongs_to_the_local_day() -> None:
    late = datetime(2026, 3, 10, 17, 0, tzinfo=UTC)  # already 01:00 on the 11th in Shanghai
    assert daily_period(late, SHANGHAI, set()) == ("2026-03-11", None)
    assert daily_period(late, UTC, set()) == ("2026-03-10", None)
    # today's digest is made: the next one waits for tomorrow, local midnight
    period, not_before = daily_period(late, SHANGHAI, {"2026-03-11"})
    assert period == "2026-03-12"
    assert not_before == datetime(2026, 3, 11, 16, 0, tzinfo=UTC)


def test_days_left_count_local_calendar_days() -> None:
    assert days_left(T0 + timedelta(hours=5), T0, SHANGHAI) == 0
    assert days_left(datetime(2026, 3, 10, 16, 0, tzinfo=UTC), T0, SHANGHAI) == 1


def test_a_mail_has_a_text_and_an_html_part_and_its_attachments() -> None:
    message = build_message(
        "billing@example.com",
        ["a@example.com", "b@example.com"],
        "对账单",
        "正文 100.00 CNY",
        "<p>正文</p>",
        "d-1",
        [attachment("对账单-2026-03-01.xlsx", b"PK\x03\x04 workbook")],
        date=T0,
    )
    parsed = message_from_bytes(bytes(message), policy=default_policy)
    assert parsed["Subject"] == "对账单" and parsed["To"] == "a@example.com, b@example.com"
    assert parsed["Message-ID"] == "<d-1@iot-billing.local>"
    assert "100.00 CNY" in parsed.get_body(preferencelist=("plain",)).get_content()
    assert parsed.get_body(preferencelist=("html",)).get_content().strip() == "<p>正文</p>"
    files = list(parsed.iter_attachments())
    assert [f.get_filename() for f in files] == ["对账单-2026-03-01.xlsx"]
    assert files[0].get_content() == b"PK\x03\x04 workbook"
    assert base64.b64decode(attachment("x", b"y")["content_b64"]) == b"y"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IOTB_REMINDER_DAYS", "14")
    monkeypatch.setenv("IOTB_MAIL_BACKOFF", "1, 2")
    monkeypatch.setenv("IOTB_DIGEST_DELAY_SECONDS", "0")
    settings = NotificationSettings.from_env()
    assert settings.reminder_days == 14 and settings.backoff == (1, 2)
    assert settings.digest_delay == timedelta(0) and settings.timezone == "Asia/Shanghai"
