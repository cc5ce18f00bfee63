"""Alipay open API (gateway.do, RSA2): precreate (QR code) or page pay, query, close.

- A request is form-encoded common parameters plus ``biz_content`` (JSON). Its ``sign`` is
  SHA256withRSA with our app key over the parameters sorted by name as ``k=v&k=v``, without
  ``sign`` and without empty values (``sign_type`` is included).
- An answer is ``{"<method>_response": {...}, "sign": "..."}``; the signature covers the raw
  text of the ``_response`` value exactly as received, verified with Alipay's public key.
- The async notify is form-encoded; its signature covers the sorted ``k=v&...`` string
  without ``sign`` and ``sign_type``. We answer ``success`` only once it is recorded;
  anything else makes Alipay send it again.
- Amounts are "0.00" strings; Alipay's clock is Beijing time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests

from services.common import clock
from services.payments import crypto
from services.payments.config import AlipayConfig
from services.payments.providers.base import (
    CallbackAnswer,
    CallbackRejected,
    CreatedTrade,
    NewTrade,
    ProviderRefused,
    ProviderUnavailable,
    TradeReport,
    from_decimal_string,
    to_decimal_string,
)

BEIJING = timezone(timedelta(hours=8))
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TRADE_STATES = {
    "TRADE_SUCCESS": "paid",
    "TRADE_FINISHED": "paid",
    "WAIT_BUYER_PAY": "pending",
    "TRADE_CLOSED": "closed",
}


def sign_content(params: Mapping[str, str], exclude: tuple[str, ...]) -> str:
    """The string Alipay signs: sorted ``k=v`` joined by ``&``, empty values left out."""
    return "&".join(
        f"{k}={params[k]}"
        for k in sorted(params)
        if k not in exclude and params[k] not in ("", None)
    )


def beijing_time(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_beijing_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=BEIJING).astimezone(UTC)


def response_node(text: str, name: str) -> tuple[str, dict, str | None]:
    """The raw text of ``name`` in an answer (what the signature covers), its value, and
    the signature."""
    whole = json.loads(text)
    if not isinstance(whole, dict) or name not in whole:
        raise ValueError(f"the answer has no {name}")
    key = f'"{name}"'
    start = text.index(key) + len(key)
    start = text.index(":", start) + 1
    while text[start] in " \t\r\n":
        start += 1
    value, end = json.JSONDecoder().raw_decode(text, start)
    return text[start:end], value, whole.get("sign")


class Alipay:
    method = "alipay"

    def __init__(
        self,
        config: AlipayConfig,
        timeout: float = 10.0,
        tolerance: float = 300.0,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.tolerance = tolerance
        self.http = session or requests.Session()
        self._key = crypto.load_private_key(config.private_key_file)
        self._alipay_key = crypto.load_public_key(config.alipay_public_key_file)

    # -- requests -----------------------------------------------------------------------
    def signed_params(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, str]:
        params = {
            "app_id": self.config.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": beijing_time(clock.now()),
            "version": "1.0",
            "biz_content": json.dumps(biz, separators=(",", ":"), ensure_ascii=False),
            **{k: v for k, v in extra.items() if v},
        }
        params["sign"] = crypto.sign(self._key, sign_content(params, ("sign",)).encode())
        return params

    def _call(self, method: str, biz: dict[str, Any], **extra: str) -> dict[str, Any]:
        params = self.signed_params(method, biz, **extra)
        try:
            answer = self.http.post(
                self.config.gateway_url,
                data=urlencode(params).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded;charset=utf-8"},
                timeout=(min(5.0, self.timeout), self.timeout),
            )
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"Alipay did not answer ({type(exc).__name__})") from exc
        if answer.status_code != 200:
            raise ProviderUnavailable(f"Alipay answered HTTP {answer.status_code}")
        text = answer.content.decode("utf-8", errors="replace")
        name = method.replace(".", "_") + "_response"
        try:
            raw, node, signature = response_node(text, name)
        except ValueError:
            try:
                raw, node, signature = response_node(text, "error_response")
            except ValueError as exc:
                raise ProviderUnavailable("Alipay's answer cannot be read") from exc
        if not signature or not crypto.verify(self._alipay_key, raw.encode(), signature):
            # Alipay signs every business answer; an unsigned one may be forged
            raise ProviderUnavailable("Alipay's answer is not signed by Alipay")
        if not isinstance(node, dict):
            raise ProviderUnavailable("Alipay's answer cannot be read")
        if node.get("code") != "10000":
            raise ProviderRefused(
                str(node.get("sub_code") or node.get("code")),
                str(node.get("sub_msg") or node.get("msg") or ""),
            )
        return node

    def _expiry(self, trade: NewTrade) -> str:
        minutes = max(1, int((trade.expires_at - clock.now()).total_seconds() // 60))
        return f"{minutes}m"

    def create(self, trade: NewTrade) -> CreatedTrade:
        biz = {
            "out_trade_no": trade.out_trade_no,
            "total_amount": to_decimal_string(trade.amount),
            "subject": (trade.description or "IoT billing payment")[:128],
            "timeout_express": self._expiry(trade),
        }
        if trade.scene == "page":
            # page pay is a signed redirect: the payer's browser carries it to Alipay
            params = self.signed_params(
                "alipay.trade.page.pay",
                {**biz, "product_code": "FAST_INSTANT_TRADE_PAY"},
                notify_url=self.config.notify_url,
                return_url=self.config.return_url,
            )
            return CreatedTrade(approve_url=f"{self.config.gateway_url}?{urlencode(params)}")
        node = self._call("alipay.trade.precreate", biz, notify_url=self.config.notify_url)
        if node.get("out_trade_no") not in (None, trade.out_trade_no):
            raise ProviderUnavailable("Alipay answered for another trade")
        qr_code = node.get("qr_code")
        if not isinstance(qr_code, str) or not qr_code:
            raise ProviderUnavailable("Alipay's answer has no qr_code")
        return CreatedTrade(code_url=qr_code)

    def query(self, out_trade_no: str, provider_ref: str | None = None) -> TradeReport:
        try:
            node = self._call("alipay.trade.query", {"out_trade_no": out_trade_no})
        except ProviderRefused as exc:
            if exc.code == "ACQ.TRADE_NOT_EXIST":
                return TradeReport(self.method, "absent", out_trade_no=out_trade_no)
            raise
        if node.get("out_trade_no") != out_trade_no:
            raise ProviderUnavailable("Alipay answered for another trade")
        return self.report(node, time_field="send_pay_date")

    def close(self, out_trade_no: str, provider_ref: str | None = None) -> TradeReport:
        try:
            self._call("alipay.trade.close", {"out_trade_no": out_trade_no})
        except ProviderRefused as exc:
            if exc.code not in ("ACQ.TRADE_NOT_EXIST", "ACQ.TRADE_STATUS_ERROR"):
                raise
        return self.query(out_trade_no)

    # -- what a trade says --------------------------------------------------------------
    def report(
        self, fields: Mapping[str, Any], time_field: str, event_id: str | None = None
    ) -> TradeReport:
        try:
            state = TRADE_STATES.get(str(fields["trade_status"]), "pending")
            amount = from_decimal_string(fields["total_amount"])
            paid_at = parse_beijing_time(fields[time_field]) if fields.get(time_field) else None
            out_trade_no = str(fields["out_trade_no"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CallbackRejected(f"the trade is malformed ({type(exc).__name__})") from exc
        merchant_error = None
        if "app_id" in fields and fields["app_id"] != self.config.app_id:
            merchant_error = f"app_id {fields['app_id']} is not ours"
        elif (
            self.config.seller_id
            and fields.get("seller_id", self.config.seller_id) != self.config.seller_id
        ):
            merchant_error = f"seller_id {fields.get('seller_id')} is not ours"
        return TradeReport(
            provider=self.method,
            state=state,
            out_trade_no=out_trade_no,
            amount=amount,
            # domestic Alipay trades are CNY; cross-border ones name their currency
            currency=str(fields.get("trans_currency") or "CNY"),
            provider_trade_no=fields.get("trade_no"),
            paid_at=paid_at,
            reason=str(fields["trade_status"]),
            merchant_error=merchant_error,
            event_id=event_id,
        )

    # -- callbacks ----------------------------------------------------------------------
    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeReport:
        try:
            pairs = parse_qsl(
                body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, errors="strict"
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise CallbackRejected("the notification is not a form") from exc
        params = dict(pairs)
        if len(params) != len(pairs):
            raise CallbackRejected("the notification repeats a field")
        if params.get("sign_type") != "RSA2" or not params.get("sign"):
            raise CallbackRejected("the notification is not RSA2-signed")
        message = sign_content(params, ("sign", "sign_type")).encode()
        if not crypto.verify(self._alipay_key, message, params["sign"]):
            raise CallbackRejected("the signature does not verify")
        try:
            sent = parse_beijing_time(params["notify_time"])
        except (KeyError, ValueError) as exc:
            raise CallbackRejected("notify_time is missing or malformed") from exc
        if abs((now - sent).total_seconds()) > self.tolerance:
            raise CallbackRejected("notify_time is outside the tolerance (replay?)")
        if params.get("app_id") is None:
            raise CallbackRejected("the notification names no app_id")
        return self.report(params, time_field="gmt_payment", event_id=params.get("notify_id"))

    def answer(self, accepted: bool, message: str, status: int | None = None) -> CallbackAnswer:
        if accepted:
            return CallbackAnswer(200, "text/plain; charset=utf-8", "success")
        return CallbackAnswer(status or 400, "text/plain; charset=utf-8", "failure")
