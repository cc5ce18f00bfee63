"""WeChat Pay API v3, Native pay (the payer scans a QR code).

- Requests carry ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=..,nonce_str=..,
  signature=..,timestamp=..,serial_no=..``: SHA256withRSA with the merchant API key over
  ``METHOD\\nPATH?QUERY\\nTIMESTAMP\\nNONCE\\nBODY\\n``.
- Answers and callbacks are signed by the platform certificate over
  ``TIMESTAMP\\nNONCE\\nBODY\\n`` (headers Wechatpay-Timestamp/-Nonce/-Signature/-Serial);
  an unsigned 2xx answer counts as forged. Callbacks older or newer than the tolerance are
  refused (replay).
- A callback's ``resource`` is AEAD_AES_256_GCM-encrypted with the APIv3 key.
- Amounts are integer fen.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from services.common import clock
from services.payments import crypto
from services.payments.config import WechatConfig
from services.payments.providers.base import (
    CallbackAnswer,
    CallbackRejected,
    CreatedTrade,
    NewTrade,
    ProviderRefused,
    ProviderUnavailable,
    TradeReport,
    from_fen,
    header,
    to_fen,
)

SCHEMA = "WECHATPAY2-SHA256-RSA2048"
BEIJING = timezone(timedelta(hours=8))
TRADE_STATES = {
    "SUCCESS": "paid",
    "REFUND": "paid",  # it was paid (a refund is a separate matter)
    "NOTPAY": "pending",
    "USERPAYING": "pending",
    "CLOSED": "closed",
    "REVOKED": "closed",
    "PAYERROR": "failed",
}


class WechatPay:
    method = "wechat_pay"

    def __init__(
        self,
        config: WechatConfig,
        timeout: float = 10.0,
        tolerance: float = 300.0,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.tolerance = tolerance
        self.http = session or requests.Session()
        self._key = crypto.load_private_key(config.private_key_file)
        cert = crypto.load_certificate(config.platform_cert_file)
        self._platform_key = cert.public_key()
        self._platform_serial = crypto.certificate_serial(cert)
        self._apiv3_key = config.apiv3_key.encode()
        if len(self._apiv3_key) != 32:
            raise ValueError("IOTB_WECHAT_APIV3_KEY must be 32 bytes")

    # -- signing ----------------------------------------------------------------------
    def authorization(self, method: str, url: str, body: str) -> str:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        timestamp = str(int(clock.now().timestamp()))
        nonce = secrets.token_hex(16).upper()
        message = f"{method}\n{target}\n{timestamp}\n{nonce}\n{body}\n"
        signature = crypto.sign(self._key, message.encode())
        return (
            f'{SCHEMA} mchid="{self.config.mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{self.config.serial_no}"'
        )

    def _check_signed(self, headers: Mapping[str, str], body: bytes, now: datetime) -> None:
        """Raise CallbackRejected unless the platform certificate signed ``body`` recently."""
        timestamp = header(headers, "Wechatpay-Timestamp")
        nonce = header(headers, "Wechatpay-Nonce")
        signature = header(headers, "Wechatpay-Signature")
        serial = header(headers, "Wechatpay-Serial")
        if not (timestamp and nonce and signature and serial):
            raise CallbackRejected("the Wechatpay-* signature headers are missing")
        if serial != self._platform_serial:
            raise CallbackRejected("signed with a platform certificate we do not know")
        try:
            sent = datetime.fromtimestamp(int(timestamp), UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise CallbackRejected("Wechatpay-Timestamp is not a timestamp") from exc
        if abs((now - sent).total_seconds()) > self.tolerance:
            raise CallbackRejected("the timestamp is outside the tolerance (replay?)")
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        if not crypto.verify(self._platform_key, message, signature):
            raise CallbackRejected("the signature does not verify")

    # -- API ----------------------------------------------------------------------------
    def _call(self, method: str, path: str, payload: dict | None = None) -> tuple[int, dict]:
        url = self.config.base_url + path
        body = (
            ""
            if payload is None
            else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        )
        headers = {
            "Authorization": self.authorization(method, url, body),
            "Accept": "application/json",
            "User-Agent": "iot-billing-payments/1.0",
        }
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            answer = self.http.request(
                method,
                url,
                data=body.encode() if payload is not None else None,
                headers=headers,
                timeout=(min(5.0, self.timeout), self.timeout),
            )
        except requests.RequestException as exc:
            raise ProviderUnavailable(f"WeChat Pay did not answer ({type(exc).__name__})") from exc
        if answer.status_code >= 500:
            raise ProviderUnavailable(f"WeChat Pay answered {answer.status_code}")
        try:
            self._check_signed(answer.headers, answer.content, clock.now())
        except CallbackRejected as exc:
            # an unsigned or badly signed answer may be forged: decide nothing on it
            raise ProviderUnavailable(f"WeChat Pay's answer is not trustworthy: {exc}") from exc
        try:
            data = answer.json() if answer.content else {}
        except ValueError as exc:
            raise ProviderUnavailable(
                "WeChat Pay answered with something that is not JSON"
            ) from exc
        if answer.status_code >= 400:
            raise ProviderRefused(
                str(data.get("code", answer.status_code)), str(data.get("message", ""))
            )
        return answer.status_code, data

    def create(self, trade: NewTrade) -> CreatedTrade:
        _, data = self._call(
            "POST",
            "/v3/pay/transactions/native",
            {
                "appid": self.config.appid,
                "mchid": self.config.mchid,
                "description": (trade.description or "IoT billing payment")[:127],
                "out_trade_no": trade.out_trade_no,
                "time_expire": trade.expires_at.astimezone(BEIJING).isoformat(timespec="seconds"),
                "notify_url": self.config.notify_url,
                "amount": {"total": to_fen(trade.amount), "currency": "CNY"},
            },
        )
        code_url = data.get("code_url")
        if not isinstance(code_url, str) or not code_url:
            raise ProviderUnavailable("WeChat Pay's answer has no code_url")
        return CreatedTrade(code_url=code_url)

    def query(self, out_trade_no: str, provider_ref: str | None = None) -> TradeReport:
        path = (
            f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}"
            f"?mchid={quote(self.config.mchid, safe='')}"
        )
        try:
            _, data = self._call("GET", path)
        except ProviderRefused as exc:
            if exc.code == "ORDER_NOT_EXIST":
                return TradeReport(self.method, "absent", out_trade_no=out_trade_no)
            raise
        return self.report(data)

    def close(self, out_trade_no: str, provider_ref: str | None = None) -> TradeReport:
        try:
            self._call(
                "POST",
                f"/v3/pay/transactions/out-trade-no/{quote(out_trade_no, safe='')}/close",
                {"mchid": self.config.mchid},
            )
        except ProviderRefused as exc:
            if exc.code not in ("ORDERPAID", "ORDER_NOT_EXIST", "ORDERCLOSED"):
                raise
        return self.query(out_trade_no)  # the trade's state after closing, paid or not

    # -- what a transaction says ------------------------------------------------------
    def report(self, transaction: dict[str, Any], event_id: str | None = None) -> TradeReport:
        try:
            state = TRADE_STATES.get(str(transaction["trade_state"]), "pending")
            amount = transaction.get("amount") or {}
            total = from_fen(amount["total"]) if "total" in amount else None
            paid_at = (
                datetime.fromisoformat(transaction["success_time"]).astimezone(UTC)
                if transaction.get("success_time")
                else None
            )
            out_trade_no = str(transaction["out_trade_no"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CallbackRejected(f"the transaction is malformed ({exc})") from exc
        merchant_error = None
        if transaction.get("mchid") != self.config.mchid:
            merchant_error = f"mchid {transaction.get('mchid')} is not ours"
        elif transaction.get("appid") != self.config.appid:
            merchant_error = f"appid {transaction.get('appid')} is not ours"
        return TradeReport(
            provider=self.method,
            state=state,
            out_trade_no=out_trade_no,
            amount=total,
            currency=amount.get("currency"),
            provider_trade_no=transaction.get("transaction_id"),
            paid_at=paid_at,
            reason=str(transaction.get("trade_state_desc") or transaction.get("trade_state")),
            merchant_error=merchant_error,
            event_id=event_id,
        )

    # -- callbacks ----------------------------------------------------------------------
    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeReport:
        self._check_signed(headers, body, now)
        try:
            notice = json.loads(body)
            resource = notice["resource"]
            if resource.get("algorithm") != "AEAD_AES_256_GCM":
                raise CallbackRejected(f"unknown algorithm {resource.get('algorithm')!r}")
            plain = crypto.aead_decrypt(
                self._apiv3_key,
                str(resource["nonce"]),
                str(resource["ciphertext"]),
                str(resource.get("associated_data") or ""),
            )
            transaction = json.loads(plain)
        except CallbackRejected:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CallbackRejected(
                f"the notification cannot be read ({type(exc).__name__})"
            ) from exc
        if not isinstance(transaction, dict):
            raise CallbackRejected("the resource is not a transaction")
        return self.report(transaction, event_id=str(notice.get("id") or ""))

    def answer(self, accepted: bool, message: str, status: int | None = None) -> CallbackAnswer:
        if accepted:
            return CallbackAnswer(
                200,
                "application/json",
                json.dumps({"code": "SUCCESS", "message": "成功"}, ensure_ascii=False),
            )
        return CallbackAnswer(
            status or 400,
            "application/json",
            json.dumps({"code": "FAIL", "message": message}, ensure_ascii=False),
        )
