"""The gateway's provider callback routes: raw bytes and signature headers go to payments
untouched, the provider gets its own answer format, and an unreachable payments service
still gets each provider's "try again" (the RPC proxy is replaced by a stand-in)."""

from __future__ import annotations

import base64
import json
import warnings

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # eventlet announces its deprecation on import
    from gateway.routes.payments import PaymentsRoutes


class StandIn:
    """Plays the payments service's handle_callback."""

    def __init__(self, answer: dict | None = None, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.calls: list[dict] = []

    def handle_callback(self, payload: dict) -> dict:
        self.calls.append(payload)
        if self.fail:
            raise ConnectionError("payments is down")
        return self.answer or {}


def routes(stand_in: StandIn) -> PaymentsRoutes:
    found = PaymentsRoutes()
    found.payments = stand_in  # type: ignore[attr-defined]
    return found


def request(path: str, body: bytes, headers: dict[str, str]) -> Request:
    return Request(
        EnvironBuilder(method="POST", path=path, data=body, headers=headers).get_environ()
    )


def test_the_raw_body_and_signature_headers_reach_payments_untouched() -> None:
    body = '{"id":"EV-1","summary":"支付成功"}  '.encode()
    stand_in = StandIn(
        {"status": 200, "content_type": "application/json", "body": '{"code": "SUCCESS"}'}
    )
    headers = {
        "Content-Type": "application/json",
        "Wechatpay-Signature": "c2ln",
        "Wechatpay-Timestamp": "1554208460",
        "Authorization": "Bearer not-for-payments",
        "Cookie": "session=secret",
    }
    answer = routes(stand_in).wechat_callback(request("/payments/callbacks/wechat", body, headers))
    assert answer.status_code == 200 and json.loads(answer.get_data()) == {"code": "SUCCESS"}
    (call,) = stand_in.calls
    assert call["provider"] == "wechat_pay"
    assert base64.b64decode(call["body"]) == body  # byte for byte: the signature covers it
    forwarded = {k.lower() for k in call["headers"]}
    assert forwarded == {"content-type", "wechatpay-signature", "wechatpay-timestamp"}


@pytest.mark.parametrize(
    ("route", "status", "content_type", "text"),
    [
        (
            "wechat_callback",
            503,
            "application/json",
            '{"code": "FAIL", "message": "try again later"}',
        ),
        ("alipay_callback", 503, "text/plain; charset=utf-8", "failure"),
        ("paypal_callback", 503, "application/json", '{"error": "try again later"}'),
    ],
)
def test_an_unreachable_payments_service_gets_each_provider_a_try_again(
    route: str, status: int, content_type: str, text: str
) -> None:
    handler = getattr(routes(StandIn(fail=True)), route)
    answer = handler(request("/payments/callbacks/x", b"notify_id=1", {}))
    assert (answer.status_code, answer.content_type, answer.get_data(as_text=True)) == (
        status,
        content_type,
        text,
    )


def test_alipay_hears_plain_text() -> None:
    stand_in = StandIn(
        {"status": 200, "content_type": "text/plain; charset=utf-8", "body": "success"}
    )
    answer = routes(stand_in).alipay_callback(
        request(
            "/payments/callbacks/alipay",
            b"a=1",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
    )
    assert answer.get_data(as_text=True) == "success" and answer.mimetype == "text/plain"
    assert stand_in.calls[0]["provider"] == "alipay"


def test_an_oversized_callback_is_refused_before_it_reaches_payments() -> None:
    stand_in = StandIn()
    answer = routes(stand_in).paypal_callback(
        request("/payments/callbacks/paypal", b"x" * (300 * 1024), {})
    )
    assert answer.status_code == 413 and stand_in.calls == []
