"""Alipay open API simulator (gateway.do, RSA2): the subset the payments service uses.

  POST /gateway.do  method=alipay.trade.precreate | alipay.trade.query | alipay.trade.close
  GET  /gateway.do  method=alipay.trade.page.pay  -> the payer's page
Requests must be signed with our app key (sorted k=v&..., without sign); answers are
{"<method>_response": {...}, "sign": ...} signed over the node's raw text with Alipay's key.
As at Alipay, a precreated trade exists only once the payer scans it: query and close
answer ACQ.TRADE_NOT_EXIST before. Paying (POST /_sim/pay/{out_trade_no}) sends the async
notify (TRADE_SUCCESS, or TRADE_CLOSED for outcome "fail") to the trade's notify_url; only
the answer "success" counts as received.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from services.common import clock
from services.payments import crypto
from services.payments.simulators.base import SimRequest, SimResponse, Simulator, pay_page
from services.payments.simulators.keys import SimKeys

BEIJING = timezone(timedelta(hours=8))
FORMAT = "%Y-%m-%d %H:%M:%S"
REQUEST_TOLERANCE = 900


@dataclass
class Trade:
    out_trade_no: str
    total_amount: str
    subject: str
    notify_url: str
    qr_code: str
    scanned: bool = False
    status: str = "WAIT_BUYER_PAY"
    trade_no: str = ""
    gmt_create: str = ""
    gmt_payment: str = ""


def _now_text(shift: timedelta = timedelta(0)) -> str:
    return (clock.now() + shift).astimezone(BEIJING).strftime(FORMAT)


class AlipaySimulator(Simulator):
    name = "alipay-sim"

    def __init__(self, keys: SimKeys, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self.app_id = keys.ids["alipay_app_id"]
        self.seller_id = keys.ids["alipay_seller_id"]
        self.app_key = crypto.load_public_key(keys.path("alipay_app_public.pem"))
        self.alipay_key = crypto.load_private_key(keys.path("alipay_key.pem"))
        self.wrong_key = crypto.load_private_key(keys.path("wechat_platform_key.pem"))
        self.trades: dict[str, Trade] = {}
        self.route("POST", r"/gateway\.do", self._gateway)
        self.route("GET", r"/gateway\.do", self._gateway)

    # -- protocol -----------------------------------------------------------------------
    @staticmethod
    def sign_string(params: dict[str, str], exclude: tuple[str, ...]) -> str:
        return "&".join(
            f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != ""
        )

    def _answer(self, method: str, node: dict[str, Any]) -> SimResponse:
        name = "error_response" if method == "error" else method.replace(".", "_") + "_response"
        raw = json.dumps(node, ensure_ascii=False, separators=(",", ":"))
        sign = crypto.sign(self.alipay_key, raw.encode())
        text = '{"' + name + '":' + raw + ',"sign":"' + sign + '"}'
        return SimResponse(200, text.encode(), {"Content-Type": "application/json;charset=utf-8"})

    def _refuse(self, method: str, sub_code: str, sub_msg: str, code: str = "40004") -> SimResponse:
        msg = "Business Failed" if code == "40004" else "Invalid Arguments"
        return self._answer(
            method, {"code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg}
        )

    def _gateway(self, request: SimRequest) -> SimResponse:
        if request.method == "POST":
            params = dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True))
        else:
            params = dict(request.query)
        method = params.get("method", "")
        if params.get("app_id") != self.app_id:
            return self._refuse("error", "isv.invalid-app-id", "无效的AppID参数", "40002")
        if params.get("sign_type") != "RSA2" or not crypto.verify(
            self.app_key, self.sign_string(params, ("sign",)).encode(), params.get("sign", "")
        ):
            return self._refuse("error", "isv.invalid-signature", "验签出错", "40002")
        try:
            sent = datetime.strptime(params["timestamp"], FORMAT).replace(tzinfo=BEIJING)
            if abs((clock.now() - sent).total_seconds()) > REQUEST_TOLERANCE:
                return self._refuse("error", "isv.invalid-timestamp", "时间戳过期", "40002")
            biz = json.loads(params["biz_content"])
        except (KeyError, ValueError):
            return self._refuse("error", "isv.missing-parameters", "缺少必选参数", "40002")
        handlers = {
            "alipay.trade.precreate": self._precreate,
            "alipay.trade.page.pay": self._page_pay,
            "alipay.trade.query": self._query,
            "alipay.trade.close": self._close,
        }
        if method not in handlers:
            return self._refuse("error", "isv.invalid-method", "不存在的方法名", "40002")
        return handlers[method](method, biz, params)

    def _new_trade(self, method: str, biz: dict, params: dict) -> Trade | SimResponse:
        try:
            amount = Decimal(str(biz["total_amount"]))
            if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                raise ValueError
            out_trade_no = str(biz["out_trade_no"])
            subject = str(biz["subject"])
        except (KeyError, ValueError, InvalidOperation):
            return self._refuse(method, "ACQ.INVALID_PARAMETER", "参数无效", "40004")
        with self.lock:
            found = self.trades.get(out_trade_no)
            if found is not None:
                if found.total_amount != biz["total_amount"]:
                    return self._refuse(method, "ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
                if found.status in ("TRADE_SUCCESS", "TRADE_FINISHED"):
                    return self._refuse(method, "ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
                return found
            trade = Trade(
                out_trade_no=out_trade_no,
                total_amount=str(biz["total_amount"]),
                subject=subject,
                notify_url=params.get("notify_url", ""),
                qr_code=f"https://qr.alipay.com/bax0{secrets.token_hex(10)}",
            )
            self.trades[out_trade_no] = trade
            return trade

    def _precreate(self, method: str, biz: dict, params: dict) -> SimResponse:
        trade = self._new_trade(method, biz, params)
        if isinstance(trade, SimResponse):
            return trade
        return self._answer(
            method,
            {
                "code": "10000",
                "msg": "Success",
                "out_trade_no": trade.out_trade_no,
                "qr_code": trade.qr_code,
            },
        )

    def _page_pay(self, method: str, biz: dict, params: dict) -> SimResponse:
        trade = self._new_trade(method, biz, params)
        if isinstance(trade, SimResponse):
            return trade
        return SimResponse.html(
            pay_page(
                "Alipay (simulated)", f"/_sim/pay/{trade.out_trade_no}", trade.total_amount, "CNY"
            )
        )

    def _node(self, trade: Trade) -> dict[str, Any]:
        node = {
            "code": "10000",
            "msg": "Success",
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "buyer_logon_id": "159****5620",
        }
        if trade.trade_no:
            node["trade_no"] = trade.trade_no
        if trade.gmt_payment:
            node.update(
                send_pay_date=trade.gmt_payment,
                receipt_amount=trade.total_amount,
                buyer_pay_amount=trade.total_amount,
            )
        return node

    def _query(self, method: str, biz: dict, params: dict) -> SimResponse:
        with self.lock:
            trade = self.trades.get(str(biz.get("out_trade_no")))
            if trade is None or not trade.scanned:
                return self._refuse(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
            return self._answer(method, self._node(trade))

    def _close(self, method: str, biz: dict, params: dict) -> SimResponse:
        with self.lock:
            trade = self.trades.get(str(biz.get("out_trade_no")))
            if trade is None or not trade.scanned:
                return self._refuse(method, "ACQ.TRADE_NOT_EXIST", "交易不存在")
            if trade.status != "WAIT_BUYER_PAY":
                return self._refuse(method, "ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
            trade.status = "TRADE_CLOSED"
            return self._answer(
                method,
                {
                    "code": "10000",
                    "msg": "Success",
                    "out_trade_no": trade.out_trade_no,
                    "trade_no": trade.trade_no,
                },
            )

    # -- the payer ----------------------------------------------------------------------
    def scan(self, trade_no: str) -> bool:
        """The payer scans the QR code: Alipay now knows the trade (WAIT_BUYER_PAY)."""
        with self.lock:
            trade = self.trades.get(trade_no)
            if trade is None:
                return False
            if not trade.scanned:
                trade.scanned = True
                trade.trade_no = clock.now().strftime("%Y%m%d") + "2200" + secrets.token_hex(8)
                trade.gmt_create = _now_text()
            return True

    def pay(self, trade_no: str, outcome: str) -> dict | None:
        if not self.scan(trade_no):
            return None
        with self.lock:
            trade = self.trades[trade_no]
            if trade.status != "WAIT_BUYER_PAY":
                return self._node(trade)
            if outcome == "success":
                trade.status = "TRADE_SUCCESS"
                trade.gmt_payment = _now_text()
            else:
                trade.status = "TRADE_CLOSED"
            node = self._node(trade)
            snapshot = Trade(**trade.__dict__)
        self.deliver(
            snapshot.status, trade_no, snapshot.notify_url, lambda t: self._notify(snapshot, t)
        )
        return node

    def _notify(self, trade: Trade, tamper: str | None) -> tuple[dict[str, str], bytes]:
        params = {
            "notify_time": _now_text(-timedelta(minutes=10) if tamper == "stale" else timedelta(0)),
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": "2021000000000000" if tamper == "merchant" else self.app_id,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "trade_status": trade.status,
            "total_amount": trade.total_amount,
            "subject": trade.subject,
            "gmt_create": trade.gmt_create,
            "seller_id": self.seller_id,
            "buyer_id": "2088102122524333",
        }
        if trade.gmt_payment:
            params.update(
                gmt_payment=trade.gmt_payment,
                receipt_amount=trade.total_amount,
                buyer_pay_amount=trade.total_amount,
            )
        if tamper == "amount":
            params["total_amount"] = str(Decimal(trade.total_amount) + Decimal("0.01"))
        if tamper == "currency":
            params["trans_currency"] = "USD"
        key = self.wrong_key if tamper == "key" else self.alipay_key
        params["sign"] = crypto.sign(key, self.sign_string(params, ("sign", "sign_type")).encode())
        params["sign_type"] = "RSA2"
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return headers, urlencode(params).encode()

    def acknowledged(self, status: int, body: bytes) -> bool:
        return body.strip() == b"success"

    def trade(self, trade_no: str) -> dict | None:
        with self.lock:
            trade = self.trades.get(trade_no)
            return None if trade is None else dict(trade.__dict__)
