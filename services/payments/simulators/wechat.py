"""WeChat Pay API v3 simulator (Native pay): the subset the payments service uses.

  POST /v3/pay/transactions/native                        -> {"code_url": "weixin://..."}
  GET  /v3/pay/transactions/out-trade-no/{no}?mchid=      -> the transaction
  POST /v3/pay/transactions/out-trade-no/{no}/close       -> 204
Requests must carry a valid WECHATPAY2-SHA256-RSA2048 Authorization made with the merchant
key; answers and callbacks are signed with the platform key, and the callback resource is
AES-256-GCM-encrypted with the APIv3 key. Paying (POST /_sim/pay/{no}) sends
TRANSACTION.SUCCESS to the order's notify_url; outcome "fail" leaves it PAYERROR (WeChat
sends no callback for that: the merchant finds out by querying).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta, timezone
from typing import Any

from services.common import clock
from services.payments import crypto
from services.payments.simulators.base import SimRequest, SimResponse, Simulator
from services.payments.simulators.keys import SimKeys

BEIJING = timezone(timedelta(hours=8))
AUTH = re.compile(r'(\w+)="([^"]*)"')
TOLERANCE = 300


@dataclass
class Trade:
    out_trade_no: str
    appid: str
    mchid: str
    description: str
    total: int
    currency: str
    notify_url: str
    time_expire: str
    code_url: str
    state: str = "NOTPAY"
    transaction_id: str = ""
    success_time: str = ""


class WechatSimulator(Simulator):
    name = "wechat-sim"

    def __init__(self, keys: SimKeys, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.mchid = keys.ids["wechat_mchid"]
        self.appid = keys.ids["wechat_appid"]
        self.apiv3_key = keys.ids["wechat_apiv3_key"].encode()
        self.merchant_key = crypto.load_certificate(
            keys.path("wechat_merchant_cert.pem")
        ).public_key()
        self.merchant_serial = keys.wechat_merchant_serial
        self.platform_key = crypto.load_private_key(keys.path("wechat_platform_key.pem"))
        self.platform_serial = keys.wechat_platform_serial
        self.wrong_key = crypto.load_private_key(keys.path("alipay_key.pem"))  # any other key
        self.trades: dict[str, Trade] = {}
        self.route("POST", r"/v3/pay/transactions/native", self._native)
        self.route("GET", r"/v3/pay/transactions/out-trade-no/(?P<no>[^/]+)", self._query)
        self.route("POST", r"/v3/pay/transactions/out-trade-no/(?P<no>[^/]+)/close", self._close)

    # -- protocol -----------------------------------------------------------------------
    def _signed(self, status: int, data: Any = None) -> SimResponse:
        body = b"" if data is None else json.dumps(data, ensure_ascii=False).encode()
        timestamp = str(int(clock.now().timestamp()))
        nonce = secrets.token_hex(16)
        message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
        headers = {
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Signature": crypto.sign(self.platform_key, message),
            "Wechatpay-Serial": self.platform_serial,
            "Request-ID": secrets.token_hex(8),
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        return SimResponse(status, body, headers)

    def _authorized(self, request: SimRequest) -> str | None:
        """None if the merchant's signature holds, else why not."""
        value = request.headers.get("Authorization") or ""
        if not value.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return "missing or unknown Authorization schema"
        fields = dict(AUTH.findall(value))
        if fields.get("mchid") != self.mchid or fields.get("serial_no") != self.merchant_serial:
            return "unknown merchant or certificate serial"
        try:
            if abs(clock.now().timestamp() - int(fields.get("timestamp", "0"))) > TOLERANCE:
                return "request timestamp expired"
        except ValueError:
            return "bad timestamp"
        message = (
            f"{request.method}\n{request.target}\n{fields.get('timestamp')}\n{fields.get('nonce_str')}\n".encode()
            + request.body
            + b"\n"
        )
        if not crypto.verify(self.merchant_key, message, fields.get("signature", "")):
            return "signature does not verify"
        return None

    def _error(self, status: int, code: str, message: str) -> SimResponse:
        return self._signed(status, {"code": code, "message": message})

    def _native(self, request: SimRequest) -> SimResponse:
        problem = self._authorized(request)
        if problem:
            return self._error(401, "SIGN_ERROR", problem)
        try:
            data = request.json()
            amount = data["amount"]
            trade = Trade(
                out_trade_no=str(data["out_trade_no"]),
                appid=str(data["appid"]),
                mchid=str(data["mchid"]),
                description=str(data["description"]),
                total=amount["total"],
                currency=amount.get("currency", "CNY"),
                notify_url=str(data["notify_url"]),
                time_expire=str(data.get("time_expire", "")),
                code_url="",
            )
        except (ValueError, KeyError, TypeError) as exc:
            return self._error(400, "PARAM_ERROR", f"missing or malformed {exc}")
        if trade.mchid != self.mchid or trade.appid != self.appid:
            return self._error(400, "APPID_MCHID_NOT_MATCH", "appid and mchid do not match")
        if not isinstance(trade.total, int) or isinstance(trade.total, bool) or trade.total <= 0:
            return self._error(400, "PARAM_ERROR", "amount.total must be a positive integer (fen)")
        if trade.currency != "CNY":
            return self._error(400, "PARAM_ERROR", "currency must be CNY")
        if not re.fullmatch(r"[0-9A-Za-z_\-|*]{6,32}", trade.out_trade_no):
            return self._error(400, "PARAM_ERROR", "out_trade_no is malformed")
        with self.lock:
            found = self.trades.get(trade.out_trade_no)
            if found is not None:
                if (found.total, found.description) != (trade.total, trade.description):
                    return self._error(
                        400, "INVALID_REQUEST", "out_trade_no reused with other parameters"
                    )
                if found.state == "SUCCESS":
                    return self._error(400, "ORDERPAID", "the order is paid")
                return self._signed(200, {"code_url": found.code_url})
            trade.code_url = f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(6)}"
            self.trades[trade.out_trade_no] = trade
        return self._signed(200, {"code_url": trade.code_url})

    def _transaction(self, trade: Trade) -> dict[str, Any]:
        found: dict[str, Any] = {
            "appid": trade.appid,
            "mchid": trade.mchid,
            "out_trade_no": trade.out_trade_no,
            "trade_type": "NATIVE",
            "trade_state": trade.state,
            "trade_state_desc": {
                "SUCCESS": "支付成功",
                "NOTPAY": "未支付",
                "CLOSED": "已关闭",
                "PAYERROR": "支付失败",
            }.get(trade.state, trade.state),
            "attach": "",
            "amount": {"total": trade.total, "currency": trade.currency},
        }
        if trade.transaction_id:
            found["transaction_id"] = trade.transaction_id
            found["bank_type"] = "OTHERS"
            found["payer"] = {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"}
            found["amount"].update(payer_total=trade.total, payer_currency=trade.currency)
        if trade.success_time:
            found["success_time"] = trade.success_time
        return found

    def _query(self, request: SimRequest) -> SimResponse:
        problem = self._authorized(request)
        if problem:
            return self._error(401, "SIGN_ERROR", problem)
        if request.query.get("mchid") != self.mchid:
            return self._error(400, "PARAM_ERROR", "mchid is wrong")
        with self.lock:
            trade = self.trades.get(request.params["no"])
            if trade is None:
                return self._error(404, "ORDER_NOT_EXIST", "order does not exist")
            return self._signed(200, self._transaction(trade))

    def _close(self, request: SimRequest) -> SimResponse:
        problem = self._authorized(request)
        if problem:
            return self._error(401, "SIGN_ERROR", problem)
        with self.lock:
            trade = self.trades.get(request.params["no"])
            if trade is None:
                return self._error(404, "ORDER_NOT_EXIST", "order does not exist")
            if trade.state == "SUCCESS":
                return self._error(400, "ORDERPAID", "the order is paid")
            if trade.state == "NOTPAY":
                trade.state = "CLOSED"
        return self._signed(204)

    # -- the payer ----------------------------------------------------------------------
    def pay(self, trade_no: str, outcome: str) -> dict | None:
        with self.lock:
            trade = self.trades.get(trade_no)
            if trade is None:
                return None
            if trade.state != "NOTPAY":
                return self._transaction(trade)  # a closed or paid order cannot be paid
            if outcome != "success":
                trade.state = "PAYERROR"
                return self._transaction(trade)
            trade.state = "SUCCESS"
            trade.transaction_id = "4200" + str(int(time.time() * 1000)) + secrets.token_hex(3)
            trade.success_time = clock.now().astimezone(BEIJING).isoformat(timespec="seconds")
            transaction = self._transaction(trade)
        self.deliver(
            "TRANSACTION.SUCCESS",
            trade_no,
            trade.notify_url,
            lambda t: self._notification(transaction, t),
        )
        return transaction

    def _notification(
        self, transaction: dict[str, Any], tamper: str | None
    ) -> tuple[dict[str, str], bytes]:
        transaction = json.loads(json.dumps(transaction))
        if tamper == "amount":
            transaction["amount"]["total"] += 1
            transaction["amount"]["payer_total"] = transaction["amount"]["total"]
        elif tamper == "currency":
            transaction["amount"]["currency"] = "USD"
        elif tamper == "merchant":
            transaction["mchid"] = "1900000002"
        nonce = secrets.token_urlsafe(9)[:12]
        now = clock.now()
        notice = {
            "id": "EV-" + secrets.token_hex(10),
            "create_time": now.astimezone(BEIJING).isoformat(timespec="seconds"),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": crypto.aead_encrypt(
                    self.apiv3_key,
                    nonce,
                    json.dumps(transaction, ensure_ascii=False).encode(),
                    "transaction",
                ),
                "associated_data": "transaction",
                "nonce": nonce,
            },
        }
        body = json.dumps(notice, ensure_ascii=False).encode()
        sent = now - timedelta(minutes=10) if tamper == "stale" else now
        timestamp = str(int(sent.timestamp()))
        sign_nonce = secrets.token_hex(16)
        key = self.wrong_key if tamper == "key" else self.platform_key
        signature = crypto.sign(key, f"{timestamp}\n{sign_nonce}\n".encode() + body + b"\n")
        headers = {
            "Content-Type": "application/json",
            "Wechatpay-Timestamp": timestamp,
            "Wechatpay-Nonce": sign_nonce,
            "Wechatpay-Signature": signature,
            "Wechatpay-Serial": self.platform_serial,
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }
        return headers, body

    def acknowledged(self, status: int, body: bytes) -> bool:
        return status in (200, 204)

    def trade(self, trade_no: str) -> dict | None:
        with self.lock:
            trade = self.trades.get(trade_no)
            return (
                None
                if trade is None
                else {
                    **self._transaction(trade),
                    "code_url": trade.code_url,
                    "notify_url": trade.notify_url,
                }
            )

    def trade_by_code_url(self, code_url: str) -> str | None:
        with self.lock:
            return next(
                (t.out_trade_no for t in self.trades.values() if t.code_url == code_url), None
            )
