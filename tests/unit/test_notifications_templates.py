"""Every mail template renders in Chinese and English, completely: no key, placeholder or
translation missing, no English left in a Chinese mail, no Chinese in an English one."""

from __future__ import annotations

import html
import io
import re
import string
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from services.notifications.config import CHINA_STANDARD_TIME, zone
from services.notifications.documents import statement_workbook
from services.notifications.templates import (
    CATALOG,
    LANGUAGES,
    TEMPLATES,
    Context,
    local_time,
    money,
    render,
)

NOW = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
COMPANY = "ACME Fleet"
CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")
# codes that read the same in both languages
ALLOWED_LATIN = {"CNY", "USD", "CST", "UTC", "PayPal", "Excel", "xlsx"}


def _line(n: int, outcome: str = "renewed") -> dict:
    return {
        "line_id": f"L{n}",
        "device_id": f"86000000000001{n}",
        "outcome": outcome,
        "reason": "no renewal package bound" if outcome == "refused" else None,
        "months": 12,
        "amount": Decimal("100.00"),
        "old_expires_at": NOW - timedelta(days=2),
        "new_expires_at": NOW + timedelta(days=363) if outcome == "renewed" else None,
    }


SAMPLES: dict[str, dict] = {
    "renewal_receipt": {
        "order_id": "8d0c",
        "order_number": "R202603100001",
        "company_id": "c1",
        "currency": "CNY",
        "total": Decimal("1200.00"),
        "paid_at": NOW,
        "method": "balance",
        "package_names": {"L1": "年度续费套餐", "L2": "年度续费套餐"},
        "lines": [_line(1), _line(2, "refused")],
    },
    "value_added_receipt": {
        "order_id": "8d0d",
        "order_number": "V202603100002",
        "company_id": "c1",
        "currency": "USD",
        "total": Decimal("30.00"),
        "paid_at": NOW,
        "method": "paypal",
        "lines": [
            {
                "line_id": "L1",
                "device_id": "860000000000011",
                "package_name": "云存储 30 天",
                "months": 3,
                "amount": Decimal("30.00"),
            }
        ],
        "package_names": {"L1": "云存储 30 天"},
    },
    "balance_credited": {
        "company_id": "c1",
        "currency": "CNY",
        "amount": Decimal("1000.00"),
        "balance": Decimal("1250.50"),
        "reason": "offline_application",
        "reference": "a-77",
        "at": NOW,
    },
    "refund_credited": {
        "company_id": "c1",
        "currency": "CNY",
        "amount": Decimal("100.00"),
        "balance": Decimal("900.00"),
        "reason": "refund",
        "reference": "o-1:l-2",
        "at": NOW,
    },
    **{
        f"offline_application_{decision}": {
            "application_id": "app-1",
            "company_id": "c1",
            "applicant": "wang.sales",
            "payer": "深圳车队物流",
            "currency": "CNY",
            "amount": Decimal("1000.00"),
            "reference_number": "BANK-2026-0001",
            "reviewer": "li.finance",
            "opinion": "流水核对无误",
        }
        for decision in ("approved", "returned", "rejected")
    },
    "expiry_reminders": {
        "devices": [
            {"device_id": "860000000000011", "expires_at": NOW + timedelta(hours=5)},
            {"device_id": "860000000000012", "expires_at": NOW + timedelta(days=1)},
            {"device_id": "860000000000013", "expires_at": NOW + timedelta(days=6)},
        ]
    },
    "devices_expired": {
        "devices": [{"device_id": "860000000000014", "expires_at": NOW - timedelta(hours=1)}]
    },
    "device_status": {
        "changes": [
            {"device_id": "860000000000015", "change": "suspended", "at": NOW, "reason": "停运"},
            {"device_id": "860000000000016", "change": "reenabled", "at": NOW, "reason": None},
        ]
    },
    "auto_renewal_failed": {
        "company_id": "c1",
        "device_id": "860000000000017",
        "package_id": "pk-9",
        "expires_at": NOW,
        "currency": "CNY",
        "amount": Decimal("100.00"),
        "balance": Decimal("40.00"),
        "missing": Decimal("60.00"),
    },
    "statement": {
        "statement_id": "st-1",
        "company_id": "c1",
        "cycle": "monthly",
        # March in Shanghai: [Feb 28 16:00 UTC, Mar 31 16:00 UTC)
        "period_start": datetime(2026, 2, 28, 16, 0, tzinfo=UTC),
        "period_end": datetime(2026, 3, 31, 16, 0, tzinfo=UTC),
        "balances": [
            {
                "currency": "CNY",
                "opening_balance": Decimal("0.00"),
                "total_credits": Decimal("1000.00"),
                "total_debits": Decimal("100.00"),
                "closing_balance": Decimal("900.00"),
                "entries": 2,
            }
        ],
    },
}


def _data_strings(value: object) -> set[str]:
    """Every string the sample data carries (it may be in any language)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return {s for v in [*value.values(), *value.keys()] for s in _data_strings(v)}
    if isinstance(value, list):
        return {s for v in value for s in _data_strings(v)}
    return set()


def _visible_text(rendered_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", rendered_html))


def _strip(text: str, data: dict) -> str:
    for value in sorted(_data_strings(data) | {COMPANY}, key=len, reverse=True):
        text = text.replace(value, " ")
    return text


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def _context(language: str) -> Context:
    return Context(language, zone("Asia/Shanghai"), COMPANY, NOW, reminder_days=7)


def test_every_template_has_a_sample_here() -> None:
    assert set(SAMPLES) == set(TEMPLATES)


def test_both_languages_define_the_same_strings_with_the_same_placeholders() -> None:
    assert set(CATALOG["zh"]) == set(CATALOG["en"])
    for section, english in CATALOG["en"].items():
        chinese = CATALOG["zh"][section]
        assert set(chinese) == set(english), f"{section}: keys differ"
        for key, en_text in english.items():
            zh_text = chinese[key]
            assert en_text.strip() and zh_text.strip(), f"{section}.{key} is empty"
            assert _placeholders(zh_text) == _placeholders(en_text), f"{section}.{key}"
            # a translation, not a copy: Chinese carries Chinese characters
            if key not in ("label_sep", "item_sep"):
                assert CJK.search(zh_text), f"zh {section}.{key} is not translated: {zh_text!r}"
            assert not CJK.search(en_text), f"en {section}.{key} has Chinese: {en_text!r}"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_completely(template: str, language: str) -> None:
    data = SAMPLES[template]
    mail = render(template, _context(language), data)
    assert mail.subject and "\n" not in mail.subject
    for part in (mail.subject, mail.text, _visible_text(mail.html)):
        assert "{" not in part and "}" not in part, part
        assert "None" not in part, part
        rest = _strip(part, data)
        if language == "zh":
            latin = set(re.findall(r"[A-Za-z][A-Za-z-]+", rest)) - ALLOWED_LATIN
            assert not latin, f"English left in the Chinese {template}: {latin}"
        else:
            assert not CJK.search(rest), f"Chinese in the English {template}: {rest!r}"
    assert mail.html.startswith("<!DOCTYPE html>") and f'lang="{language}"' in mail.html


def test_an_untranslated_string_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # the check above must be able to fail: an English sentence in the Chinese catalog
    monkeypatch.setitem(CATALOG["zh"]["devices_expired"], "intro", "These devices expired:")
    mail = render("devices_expired", _context("zh"), SAMPLES["devices_expired"])
    latin = set(re.findall(r"[A-Za-z][A-Za-z-]+", _strip(mail.text, {}))) - ALLOWED_LATIN
    assert latin == {"These", "devices", "expired"}


def test_a_missing_placeholder_value_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CATALOG["en"]["statement"], "subject", "Statement {unknown}")
    with pytest.raises(KeyError):
        render("statement", _context("en"), SAMPLES["statement"])


def test_the_renewal_receipt_reads_as_the_e2e_test_expects() -> None:
    mail = render("renewal_receipt", _context("zh"), SAMPLES["renewal_receipt"])
    assert "回执" in mail.subject and "R202603100001" in mail.subject
    assert "1,200.00 CNY" in mail.subject
    assert "860000000000011" in mail.text and "100.00 CNY" in mail.text
    assert "2026-03-10 09:30 CST" in mail.text  # paid at 01:30 UTC, shown in Shanghai
    assert "未续费：no renewal package bound" in mail.text
    assert "年度续费套餐" in mail.text and "账户余额" in mail.text


def test_amounts_carry_their_currency_and_times_the_company_zone() -> None:
    assert money(Decimal("1000"), "CNY") == "1,000.00 CNY"
    assert money("-12.5", "USD") == "-12.50 USD"
    assert local_time(NOW, CHINA_STANDARD_TIME) == "2026-03-10 09:30 CST"
    assert local_time(NOW, zone("Europe/Amsterdam")) == "2026-03-10 02:30 CET"
    assert local_time(NOW, zone("Asia/Dubai")) == "2026-03-10 05:30 UTC+04:00"
    assert zone("Not/AZone") is CHINA_STANDARD_TIME


def test_expiry_reminders_count_days_in_local_dates() -> None:
    en = render("expiry_reminders", _context("en"), SAMPLES["expiry_reminders"])
    assert en.subject == "Renewal reminder: 3 devices expire soon"
    assert "860000000000011; Expires: 2026-03-10 14:30 CST; Days left: today" in en.text
    assert "Days left: 1 day" in en.text and "Days left: 6 days" in en.text
    zh = render("expiry_reminders", _context("zh"), SAMPLES["expiry_reminders"])
    assert zh.subject == "续费提醒：3 台设备即将到期" and "剩余天数：今天" in zh.text
    one = render("devices_expired", _context("en"), SAMPLES["devices_expired"])
    assert one.subject == "1 device has expired"


def test_the_statement_names_its_period_in_local_dates() -> None:
    en = render("statement", _context("en"), SAMPLES["statement"])
    assert en.subject == "Your statement for 2026-03-01 - 2026-03-31"
    assert "monthly statement" in en.text and "900.00 CNY" in en.text
    assert "statement-2026-03-01.xlsx" in en.text
    zh = render("statement", _context("zh"), SAMPLES["statement"])
    assert "月度对账单" in zh.text and "对账单-2026-03-01.xlsx" in zh.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_statement_workbook_is_labelled_in_the_mail_language(language: str) -> None:
    entries = [
        {
            "at": "2026-03-02T02:00:00+00:00",
            "currency": "CNY",
            "direction": "credit",
            "amount": "1000.00",
            "balance_after": "1000.00",
            "reason": "recharge",
            "reference": "r-1",
        }
    ]
    content = statement_workbook(
        SAMPLES["statement"], COMPANY, language, zone("Asia/Shanghai"), entries
    )
    sheet = load_workbook(io.BytesIO(content)).active
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
    labels = [c for c in cells if isinstance(c, str)]
    assert Decimal("900.00") in [Decimal(str(c)) for c in cells if isinstance(c, (int, float))]
    assert datetime(2026, 3, 2, 10, 0) in cells  # the entry at local time
    assert datetime(2026, 3, 1, 0, 0) in cells  # the period starts at local midnight
    rest = " ".join(_strip(label, {"x": ["st-1", "r-1"]}) for label in labels)
    if language == "zh":
        assert not set(re.findall(r"[A-Za-z][A-Za-z-]+", rest)) - ALLOWED_LATIN, rest
    else:
        assert not CJK.search(rest), rest
