"""Mail templates in Chinese and English. Each template has a subject, a text body and an
HTML body per language; every language must define every template (a test checks)."""

from __future__ import annotations

import html
from datetime import datetime, timedelta, timezone
from decimal import Decimal

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

TEMPLATES: dict[str, dict[str, dict[str, str]]] = {
    "renewal_receipt": {
        "en": {
            "subject": "Receipt for order {order_number}: {total} {currency}",
            "intro": "Dear {company}, thank you for your payment of {total} {currency} "
            "on {paid_at}. Your devices have been renewed:",
            "line": "{device_id}: {months} months, {amount} {currency}, new expiry {new_expires_at}",
            "refused": "{device_id}: not renewed ({reason}); {amount} {currency} is refunded "
            "to your balance",
            "outro": "Order {order_number}. This mail was sent by the IoT billing platform.",
        },
        "zh": {
            "subject": "订单 {order_number} 付款回执：{total} {currency}",
            "intro": "尊敬的 {company}：感谢您于 {paid_at} 支付 {total} {currency}。"
            "以下设备已续费：",
            "line": "{device_id}：{months} 个月，{amount} {currency}，新到期时间 {new_expires_at}",
            "refused": "{device_id}：未续费（{reason}），{amount} {currency} 将退回您的余额",
            "outro": "订单号 {order_number}。本邮件由物联网计费平台发送。",
        },
    },
}


def local_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M CST")


def money(amount: Decimal | str) -> str:
    return f"{Decimal(str(amount)):,.2f}"


def render_receipt(language: str, company: str, data: dict) -> tuple[str, str, str]:
    """Subject, text and HTML of a renewal receipt."""
    t = TEMPLATES["renewal_receipt"][language]
    common = {
        "company": company,
        "order_number": data["order_number"],
        "total": money(data["total"]),
        "currency": data["currency"],
        "paid_at": local_time(data["paid_at"]),
    }
    lines = []
    for line in data["lines"]:
        values = {
            **common,
            "device_id": line["device_id"],
            "months": line["months"],
            "amount": money(line["amount"]),
            "new_expires_at": local_time(line.get("new_expires_at")),
            "reason": line.get("reason") or "",
        }
        lines.append((t["line"] if line["outcome"] == "renewed" else t["refused"]).format(**values))
    intro, outro = t["intro"].format(**common), t["outro"].format(**common)
    text = "\n".join([intro, "", *[f"- {line}" for line in lines], "", outro]) + "\n"
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    body = (
        f"<html><body><p>{html.escape(intro)}</p><ul>{items}</ul>"
        f"<p>{html.escape(outro)}</p></body></html>"
    )
    return t["subject"].format(**common), text, body
