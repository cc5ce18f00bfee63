"""Mail templates in Chinese and English.

Every string a mail shows lives in CATALOG, under the same keys in both languages (a unit
test fails on a key, a placeholder or a translation missing in either, and on English left
in a Chinese mail or Chinese in an English one). A renderer turns an event's data into a
Document (subject, paragraphs, one table), which becomes a plain-text and an HTML body.

Amounts are shown with their currency ("1,000.00 CNY"); times in the company's time zone.
"""

from __future__ import annotations

import html as _html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from services.notifications.domain import days_left

LANGUAGES = ("zh", "en")

CATALOG: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "common": {
            "greeting": "Dear {company},",
            "greeting_person": "Hello {name},",
            "footer": "This mail was sent automatically by the IoT billing platform. "
            "Please do not reply to it.",
            "label_sep": ": ",
            "item_sep": "; ",
            "missing": "none",
            "device": "Device",
            "package": "Package",
            "months": "Months",
            "amount": "Amount",
            "outcome": "Result",
            "new_expiry": "New expiry",
            "valid_until": "Valid until",
            "expires_at": "Expires",
            "expired_at": "Expired",
            "days_left": "Days left",
            "change": "Change",
            "time": "Time",
            "reason": "Reason",
            "currency": "Currency",
            "opening_balance": "Opening balance",
            "credits": "Credits",
            "debits": "Debits",
            "closing_balance": "Closing balance",
            "entries": "Entries",
            "balance_now": "Your {currency} balance is now {balance}.",
            "reference": "Reference: {reference}.",
            "payment_method": "Payment method: {method}.",
            "today": "today",
            "days_one": "1 day",
            "days_other": "{days} days",
            "outcome.renewed": "renewed",
            "outcome.refused": "not renewed: {reason}",
            "method.balance": "account balance",
            "method.wechat_pay": "WeChat Pay",
            "method.alipay": "Alipay",
            "method.paypal": "PayPal",
            "method.offline": "bank transfer",
            "credit.recharge": "online recharge",
            "credit.offline_application": "offline recharge by bank transfer",
            "credit.refund": "refund",
            "credit.overpayment": "overpayment returned",
            "cycle.monthly": "monthly",
            "cycle.quarterly": "quarterly",
            "status.suspended": "suspended",
            "status.reenabled": "re-enabled",
            "direction.credit": "credit",
            "direction.debit": "debit",
        },
        "renewal_receipt": {
            "subject": "Receipt for order {order_number}: {total}",
            "intro": "Thank you for your payment of {total} on {paid_at}. "
            "Your devices were renewed as follows:",
            "refunded": "Devices that could not be renewed are refunded to your balance.",
            "outro": "Order number: {order_number}.",
        },
        "value_added_receipt": {
            "subject": "Receipt for value-added order {order_number}: {total}",
            "intro": "Thank you for your payment of {total} on {paid_at}. "
            "You bought these value-added services:",
            "outro": "Order number: {order_number}.",
        },
        "balance_credited": {
            "subject": "{amount} credited to your balance",
            "intro": "{amount} was credited to your balance on {at} ({reason}).",
        },
        "refund_credited": {
            "subject": "Refund of {amount} credited to your balance",
            "intro": "{amount} was returned to your balance on {at} ({reason}).",
        },
        "offline_application_approved": {
            "subject": "Offline recharge {reference_number} approved: {amount}",
            "intro": "The offline recharge you filed for {company} (payer {payer}, {amount}, "
            "bank reference {reference_number}) was approved by {reviewer}. The amount is "
            "credited to the customer's balance.",
            "opinion": "Reviewer's opinion: {opinion}",
        },
        "offline_application_returned": {
            "subject": "Offline recharge {reference_number} returned for changes",
            "intro": "The offline recharge you filed for {company} (payer {payer}, {amount}, "
            "bank reference {reference_number}) was returned by {reviewer}. Please correct "
            "it and submit it again.",
            "opinion": "Reviewer's opinion: {opinion}",
        },
        "offline_application_rejected": {
            "subject": "Offline recharge {reference_number} rejected",
            "intro": "The offline recharge you filed for {company} (payer {payer}, {amount}, "
            "bank reference {reference_number}) was rejected by {reviewer}. The application "
            "is closed.",
            "opinion": "Reviewer's opinion: {opinion}",
        },
        "expiry_reminders": {
            "subject": "Renewal reminder: {count} devices expire soon",
            "subject_one": "Renewal reminder: 1 device expires soon",
            "intro": "These devices expire within {days} days. Renew them in the renewal "
            "center to keep them online:",
        },
        "devices_expired": {
            "subject": "{count} devices have expired",
            "subject_one": "1 device has expired",
            "intro": "These devices reached their expiry date and are out of service. Renew "
            "them in the renewal center to bring them back online:",
        },
        "device_status": {
            "subject": "Device status changed: {count} devices",
            "subject_one": "Device status changed: 1 device",
            "intro": "The status of these devices changed:",
            "suspended_note": "Suspended devices leave the renewal center, reminders and "
            "auto-renewal until they are re-enabled.",
        },
        "auto_renewal_failed": {
            "subject": "Auto-renewal failed for device {device_id}: {missing} missing",
            "intro": "Device {device_id} reached its expiry on {expires_at}, but auto-renewal "
            "could not renew it: the renewal costs {amount} and your balance was {balance}, "
            "so {missing} was missing.",
            "package": "Renewal package: {package}.",
            "action": "Please top up your balance and renew the device in the renewal center.",
        },
        "statement": {
            "subject": "Your statement for {period}",
            "intro": "Your {cycle} statement for {period} is ready. Summary per currency:",
            "attachment": "The full statement is attached as an Excel workbook ({filename}).",
            "filename": "statement-{start}.xlsx",
            "sheet": "Statement",
            "statement_id": "Statement",
            "company": "Company",
            "cycle": "Billing cycle",
            "period_start": "Period start",
            "period_end": "Period end",
            "time_zone": "Time zone",
            "direction": "Direction",
            "balance_after": "Balance after",
            "reference": "Reference",
            "no_entries": "No entries in this period.",
        },
    },
    "zh": {
        "common": {
            "greeting": "尊敬的 {company}：",
            "greeting_person": "{name}，您好：",
            "footer": "本邮件由物联网计费平台自动发送，请勿直接回复。",
            "label_sep": "：",
            "item_sep": "；",
            "missing": "无",
            "device": "设备",
            "package": "套餐",
            "months": "月数",
            "amount": "金额",
            "outcome": "结果",
            "new_expiry": "新到期时间",
            "valid_until": "有效期至",
            "expires_at": "到期时间",
            "expired_at": "到期时间",
            "days_left": "剩余天数",
            "change": "变更",
            "time": "时间",
            "reason": "原因",
            "currency": "币种",
            "opening_balance": "期初余额",
            "credits": "入账合计",
            "debits": "支出合计",
            "closing_balance": "期末余额",
            "entries": "笔数",
            "balance_now": "您当前的 {currency} 余额为 {balance}。",
            "reference": "参考号：{reference}。",
            "payment_method": "付款方式：{method}。",
            "today": "今天",
            "days_one": "1 天",
            "days_other": "{days} 天",
            "outcome.renewed": "已续费",
            "outcome.refused": "未续费：{reason}",
            "method.balance": "账户余额",
            "method.wechat_pay": "微信支付",
            "method.alipay": "支付宝",
            "method.paypal": "PayPal 支付",
            "method.offline": "银行转账",
            "credit.recharge": "在线充值",
            "credit.offline_application": "线下银行转账充值",
            "credit.refund": "退款",
            "credit.overpayment": "多付款项退回",
            "cycle.monthly": "月度",
            "cycle.quarterly": "季度",
            "status.suspended": "已停用",
            "status.reenabled": "已恢复",
            "direction.credit": "入账",
            "direction.debit": "支出",
        },
        "renewal_receipt": {
            "subject": "订单 {order_number} 付款回执：{total}",
            "intro": "感谢您于 {paid_at} 支付 {total}。设备续费结果如下：",
            "refunded": "未能续费的设备，其金额已退回您的账户余额。",
            "outro": "订单号：{order_number}。",
        },
        "value_added_receipt": {
            "subject": "增值服务订单 {order_number} 付款回执：{total}",
            "intro": "感谢您于 {paid_at} 支付 {total}。您已购买以下增值服务：",
            "outro": "订单号：{order_number}。",
        },
        "balance_credited": {
            "subject": "账户余额已入账 {amount}",
            "intro": "您的账户余额已于 {at} 入账 {amount}（{reason}）。",
        },
        "refund_credited": {
            "subject": "退款 {amount} 已退回账户余额",
            "intro": "{amount} 已于 {at} 退回您的账户余额（{reason}）。",
        },
        "offline_application_approved": {
            "subject": "线下充值申请 {reference_number} 已通过：{amount}",
            "intro": "您为 {company} 提交的线下充值申请（付款方 {payer}，金额 {amount}，"
            "银行流水号 {reference_number}）已由 {reviewer} 审核通过，款项已计入客户余额。",
            "opinion": "审核意见：{opinion}",
        },
        "offline_application_returned": {
            "subject": "线下充值申请 {reference_number} 已退回修改",
            "intro": "您为 {company} 提交的线下充值申请（付款方 {payer}，金额 {amount}，"
            "银行流水号 {reference_number}）已被 {reviewer} 退回。请修改后重新提交。",
            "opinion": "审核意见：{opinion}",
        },
        "offline_application_rejected": {
            "subject": "线下充值申请 {reference_number} 已被驳回",
            "intro": "您为 {company} 提交的线下充值申请（付款方 {payer}，金额 {amount}，"
            "银行流水号 {reference_number}）已被 {reviewer} 驳回，该申请已关闭。",
            "opinion": "审核意见：{opinion}",
        },
        "expiry_reminders": {
            "subject": "续费提醒：{count} 台设备即将到期",
            "subject_one": "续费提醒：1 台设备即将到期",
            "intro": "以下设备将在 {days} 天内到期。请在续费中心及时续费，以免设备停止服务：",
        },
        "devices_expired": {
            "subject": "{count} 台设备已到期",
            "subject_one": "1 台设备已到期",
            "intro": "以下设备已到期并停止服务。请在续费中心续费以恢复服务：",
        },
        "device_status": {
            "subject": "设备状态变更通知：{count} 台设备",
            "subject_one": "设备状态变更通知：1 台设备",
            "intro": "以下设备的状态发生了变化：",
            "suspended_note": "已停用的设备在恢复之前不会出现在续费中心，也不会收到到期提醒或自动续费。",
        },
        "auto_renewal_failed": {
            "subject": "设备 {device_id} 自动续费失败：余额尚缺 {missing}",
            "intro": "设备 {device_id} 已于 {expires_at} 到期，但自动续费未能完成：续费需要 "
            "{amount}，当时余额为 {balance}，尚缺 {missing}。",
            "package": "续费套餐：{package}。",
            "action": "请充值后在续费中心为该设备续费。",
        },
        "statement": {
            "subject": "{period} 对账单",
            "intro": "您 {period} 的{cycle}对账单已生成。各币种汇总如下：",
            "attachment": "完整对账单见附件 Excel 文件（{filename}）。",
            "filename": "对账单-{start}.xlsx",
            "sheet": "对账单",
            "statement_id": "对账单编号",
            "company": "公司",
            "cycle": "账单周期",
            "period_start": "期间开始",
            "period_end": "期间结束",
            "time_zone": "时区",
            "direction": "方向",
            "balance_after": "交易后余额",
            "reference": "参考号",
            "no_entries": "本期无交易。",
        },
    },
}

TEMPLATES = tuple(name for name in CATALOG["en"] if name != "common")


# -- formatting ------------------------------------------------------------------------------
def money(amount: Decimal | str | int, currency: str) -> str:
    """An amount with its currency, two decimals: "1,000.00 CNY"."""
    return f"{Decimal(str(amount)):,.2f} {currency}"


def zone_label(moment: datetime) -> str:
    name = moment.strftime("%Z")
    if name and name[0].isalpha():
        return name
    offset = moment.strftime("%z")  # +0800
    return f"UTC{offset[:3]}:{offset[3:]}" if offset else "UTC"


def local_time(moment: datetime | None, tz: tzinfo) -> str | None:
    if moment is None:
        return None
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {zone_label(local)}"


def local_date(moment: datetime, tz: tzinfo) -> str:
    return moment.astimezone(tz).date().isoformat()


# -- documents -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


@dataclass
class Document:
    subject: str
    greeting: str
    before: list[str]
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    after: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Context:
    """Who a mail is for and how to write it."""

    language: str
    tz: tzinfo
    company: str  # the company's name
    now: datetime
    reminder_days: int = 7


class Texts:
    """One template's strings in one language, plus the shared ones."""

    def __init__(self, language: str, template: str) -> None:
        self.language = language
        self.own = CATALOG[language][template]
        self.common = CATALOG[language]["common"]

    def __call__(self, key: str, **values: Any) -> str:
        return self.own[key].format(**values)

    def c(self, key: str, **values: Any) -> str:
        return self.common[key].format(**values)

    def value(self, group: str, code: str | None, **values: Any) -> str:
        """A translated code (payment method, credit reason...); unknown codes as given."""
        if not code:
            return self.common["missing"]
        template = self.common.get(f"{group}.{code}")
        return template.format(**values) if template is not None else code

    def days(self, days: int) -> str:
        if days <= 0:
            return self.common["today"]
        return self.common["days_one"] if days == 1 else self.common["days_other"].format(days=days)

    def label(self, label: str, value: str) -> str:
        return f"{label}{self.common['label_sep']}{value}"


def _text(t: Texts, doc: Document) -> str:
    parts = [doc.greeting, "", *doc.before]
    if doc.rows:
        parts.append("")
        for row in doc.rows:
            cells = [t.label(h, v) for h, v in zip(doc.headers, row, strict=True)]
            parts.append("- " + t.common["item_sep"].join(cells))
    if doc.after:
        parts += ["", *doc.after]
    parts += ["", t.c("footer")]
    return "\n".join(parts) + "\n"


def _html_body(t: Texts, doc: Document) -> str:
    esc = _html.escape
    cell = "padding:4px 8px;border:1px solid #ccc;text-align:left"
    out = [
        f'<!DOCTYPE html><html lang="{t.language}"><head><meta charset="utf-8">'
        f"<title>{esc(doc.subject)}</title></head>"
        '<body style="font-family:sans-serif;font-size:14px;color:#222">',
        f"<p>{esc(doc.greeting)}</p>",
        *[f"<p>{esc(p)}</p>" for p in doc.before],
    ]
    if doc.rows:
        out.append('<table style="border-collapse:collapse"><thead><tr>')
        out += [f'<th style="{cell};background:#f2f2f2">{esc(h)}</th>' for h in doc.headers]
        out.append("</tr></thead><tbody>")
        for row in doc.rows:
            out.append("<tr>" + "".join(f'<td style="{cell}">{esc(v)}</td>' for v in row) + "</tr>")
        out.append("</tbody></table>")
    out += [f"<p>{esc(p)}</p>" for p in doc.after]
    out.append(f'<p style="color:#888;font-size:12px">{esc(t.c("footer"))}</p></body></html>')
    return "".join(out)


# -- one renderer per template ----------------------------------------------------------------
def _receipt(t: Texts, ctx: Context, data: dict, value_added: bool) -> Document:
    currency = data["currency"]
    values = {
        "order_number": data["order_number"],
        "total": money(data["total"], currency),
        "paid_at": local_time(data["paid_at"], ctx.tz),
    }
    packages = data.get("package_names") or {}  # line id -> package name, when known
    with_packages = any(line["line_id"] in packages for line in data["lines"])
    headers = [t.c("device")] + ([t.c("package")] if with_packages else [])
    headers += [t.c("months"), t.c("amount")]
    headers += [t.c("valid_until")] if value_added else [t.c("outcome"), t.c("new_expiry")]
    rows, refused = [], False
    for line in data["lines"]:
        row = [line["device_id"]]
        if with_packages:
            row.append(packages.get(line["line_id"]) or t.c("missing"))
        row += [str(line["months"]), money(line["amount"], currency)]
        new_expiry = local_time(line.get("new_expires_at"), ctx.tz) or t.c("missing")
        if value_added:
            row.append(new_expiry)
        else:
            outcome = line.get("outcome", "renewed")
            refused = refused or outcome == "refused"
            reason = line.get("reason") or t.c("missing")
            row += [t.value("outcome", outcome, reason=reason), new_expiry]
        rows.append(row)
    after = [t("refunded")] if refused else []
    if data.get("method"):
        after.append(t.c("payment_method", method=t.value("method", data["method"])))
    after.append(t("outro", **values))
    return Document(
        subject=t("subject", **values),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro", **values)],
        headers=headers,
        rows=rows,
        after=after,
    )


def renewal_receipt(t: Texts, ctx: Context, data: dict) -> Document:
    return _receipt(t, ctx, data, value_added=False)


def value_added_receipt(t: Texts, ctx: Context, data: dict) -> Document:
    return _receipt(t, ctx, data, value_added=True)


def _credited(t: Texts, ctx: Context, data: dict) -> Document:
    currency = data["currency"]
    values = {
        "amount": money(data["amount"], currency),
        "at": local_time(data.get("at") or ctx.now, ctx.tz),
        "reason": t.value("credit", data["reason"]),
    }
    return Document(
        subject=t("subject", **values),
        greeting=t.c("greeting", company=ctx.company),
        before=[
            t("intro", **values),
            t.c("balance_now", currency=currency, balance=money(data["balance"], currency)),
            t.c("reference", reference=data["reference"]),
        ],
    )


balance_credited = refund_credited = _credited


def _application(t: Texts, ctx: Context, data: dict) -> Document:
    values = {
        "company": ctx.company,
        "payer": data["payer"],
        "amount": money(data["amount"], data["currency"]),
        "reference_number": data["reference_number"],
        "reviewer": data["reviewer"],
    }
    return Document(
        subject=t("subject", **values),
        greeting=t.c("greeting_person", name=data["applicant"]),
        before=[t("intro", **values), t("opinion", opinion=data["opinion"] or t.c("missing"))],
    )


offline_application_approved = offline_application_returned = offline_application_rejected = (
    _application
)


def _counted_subject(t: Texts, count: int) -> str:
    return t("subject_one") if count == 1 else t("subject", count=count)


def expiry_reminders(t: Texts, ctx: Context, data: dict) -> Document:
    """data: {"devices": [{device_id, expires_at}, ...]} sorted by expiry."""
    devices = data["devices"]
    lefts = [days_left(d["expires_at"], ctx.now, ctx.tz) for d in devices]
    window = max([ctx.reminder_days, *lefts])
    return Document(
        subject=_counted_subject(t, len(devices)),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro", days=window)],
        headers=[t.c("device"), t.c("expires_at"), t.c("days_left")],
        rows=[
            [d["device_id"], local_time(d["expires_at"], ctx.tz), t.days(left)]
            for d, left in zip(devices, lefts, strict=True)
        ],
    )


def devices_expired(t: Texts, ctx: Context, data: dict) -> Document:
    devices = data["devices"]
    return Document(
        subject=_counted_subject(t, len(devices)),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro")],
        headers=[t.c("device"), t.c("expired_at")],
        rows=[[d["device_id"], local_time(d["expires_at"], ctx.tz)] for d in devices],
    )


def device_status(t: Texts, ctx: Context, data: dict) -> Document:
    """data: {"changes": [{device_id, change: suspended|reenabled, at, reason}, ...]}"""
    changes = data["changes"]
    after = [t("suspended_note")] if any(c["change"] == "suspended" for c in changes) else []
    return Document(
        subject=_counted_subject(t, len({c["device_id"] for c in changes})),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro")],
        headers=[t.c("device"), t.c("change"), t.c("time"), t.c("reason")],
        rows=[
            [
                c["device_id"],
                t.value("status", c["change"]),
                local_time(c["at"], ctx.tz),
                c.get("reason") or t.c("missing"),
            ]
            for c in changes
        ],
        after=after,
    )


def auto_renewal_failed(t: Texts, ctx: Context, data: dict) -> Document:
    currency = data["currency"]
    values = {
        "device_id": data["device_id"],
        "expires_at": local_time(data["expires_at"], ctx.tz),
        "amount": money(data["amount"], currency),
        "balance": money(data["balance"], currency),
        "missing": money(data["missing"], currency),
    }
    package = data.get("package_name") or data["package_id"]
    return Document(
        subject=t("subject", **values),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro", **values), t("package", package=package), t("action")],
    )


def statement_period(data: dict, tz: tzinfo) -> str:
    """[start, end) as local dates, the end shown inclusive: "2026-03-01 - 2026-03-31"."""
    start = local_date(data["period_start"], tz)
    end = local_date(data["period_end"] - timedelta(microseconds=1), tz)
    return f"{start} - {end}"


def statement_filename(data: dict, language: str, tz: tzinfo) -> str:
    t = Texts(language if language in LANGUAGES else "zh", "statement")
    return t("filename", start=local_date(data["period_start"], tz))


def statement(t: Texts, ctx: Context, data: dict) -> Document:
    period = statement_period(data, ctx.tz)
    rows = [
        [
            b["currency"],
            money(b["opening_balance"], b["currency"]),
            money(b["total_credits"], b["currency"]),
            money(b["total_debits"], b["currency"]),
            money(b["closing_balance"], b["currency"]),
            str(b["entries"]),
        ]
        for b in data["balances"]
    ]
    return Document(
        subject=t("subject", period=period),
        greeting=t.c("greeting", company=ctx.company),
        before=[t("intro", period=period, cycle=t.value("cycle", data["cycle"]))],
        headers=[
            t.c("currency"),
            t.c("opening_balance"),
            t.c("credits"),
            t.c("debits"),
            t.c("closing_balance"),
            t.c("entries"),
        ],
        rows=rows,
        after=[t("attachment", filename=statement_filename(data, t.language, ctx.tz))],
    )


RENDERERS: dict[str, Callable[[Texts, Context, dict], Document]] = {
    "renewal_receipt": renewal_receipt,
    "value_added_receipt": value_added_receipt,
    "balance_credited": balance_credited,
    "refund_credited": refund_credited,
    "offline_application_approved": offline_application_approved,
    "offline_application_returned": offline_application_returned,
    "offline_application_rejected": offline_application_rejected,
    "expiry_reminders": expiry_reminders,
    "devices_expired": devices_expired,
    "device_status": device_status,
    "auto_renewal_failed": auto_renewal_failed,
    "statement": statement,
}


def render(template: str, ctx: Context, data: dict) -> Rendered:
    """Subject, plain text and HTML of ``template`` for ``data`` in ``ctx.language``."""
    language = ctx.language if ctx.language in LANGUAGES else "zh"
    t = Texts(language, template)
    doc = RENDERERS[template](t, ctx, data)
    return Rendered(subject=doc.subject, text=_text(t, doc), html=_html_body(t, doc))
