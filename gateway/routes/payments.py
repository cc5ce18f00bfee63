"""HTTP routes: payments (provider callbacks arrive here, unauthenticated but verified).

The callback endpoints take the raw body and headers (the providers sign their exact
bytes), hand them to the payments service, and answer in each provider's own format:
WeChat Pay JSON {"code": "SUCCESS"} or 4xx/5xx {"code": "FAIL", ...}; Alipay plain text
"success" / "failure"; PayPal 2xx or an error status. If the payments service cannot be
reached, the provider gets its own "try again" answer and will call back later (and
reconciliation settles the payment meanwhile).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import eventlet
from werkzeug.wrappers import Response

from contracts.rpc.payments import AttemptFilter, PaymentAttemptOut
from gateway.api import call, endpoint
from services.common.actor import Actor

log = logging.getLogger(__name__)

MAX_CALLBACK_BYTES = 256 * 1024
# only what verification needs crosses to the service (never cookies or Authorization)
FORWARDED_HEADERS = ("content-type",)
FORWARDED_PREFIXES = ("wechatpay-", "paypal-")
TRY_AGAIN = {
    "wechat_pay": (
        503,
        "application/json",
        json.dumps({"code": "FAIL", "message": "try again later"}),
    ),
    "alipay": (503, "text/plain; charset=utf-8", "failure"),
    "paypal": (503, "application/json", json.dumps({"error": "try again later"})),
}
CALLBACK_HELP = (
    "Called by the provider, not by clients. No token: the provider's signature over the raw "
    "body is verified by the payments service, and the trade is matched by our own records. "
    "Answered in the provider's own format."
)


def forwarded_headers(headers: Any) -> dict[str, str]:
    return {
        key: value
        for key, value in headers.items()
        if key.lower() in FORWARDED_HEADERS or key.lower().startswith(FORWARDED_PREFIXES)
    }


class PaymentsRoutes:
    def _provider_callback(self, method: str, request: Any) -> Response:
        body = request.get_data(cache=False)
        if len(body) > MAX_CALLBACK_BYTES:
            status, content_type, text = TRY_AGAIN[method]
            return Response(text, status=413, content_type=content_type)
        payload = {
            "provider": method,
            "headers": forwarded_headers(request.headers),
            "body": base64.b64encode(body).decode(),
        }
        try:
            answer = call(self.payments, "handle_callback", payload)
        except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - the provider retries
            log.error("a %s callback could not reach payments: %s", method, type(exc).__name__)
            status, content_type, text = TRY_AGAIN[method]
            return Response(text, status=status, content_type=content_type)
        return Response(
            answer["body"], status=answer["status"], content_type=answer["content_type"]
        )

    @endpoint(
        "POST",
        "/payments/callbacks/wechat",
        "WeChat Pay payment notification (API v3, signed and encrypted)",
        "payments",
        public=True,
        description=CALLBACK_HELP,
        errors=(),
    )
    def wechat_callback(self, request: Any) -> Any:
        return self._provider_callback("wechat_pay", request)

    @endpoint(
        "POST",
        "/payments/callbacks/alipay",
        "Alipay asynchronous notification (RSA2-signed form)",
        "payments",
        public=True,
        description=CALLBACK_HELP,
        errors=(),
    )
    def alipay_callback(self, request: Any) -> Any:
        return self._provider_callback("alipay", request)

    @endpoint(
        "POST",
        "/payments/callbacks/paypal",
        "PayPal webhook (signed transmission)",
        "payments",
        public=True,
        description=CALLBACK_HELP,
        errors=(),
    )
    def paypal_callback(self, request: Any) -> Any:
        return self._provider_callback("paypal", request)

    @endpoint(
        "GET",
        "/payments/attempts",
        "Payment attempts within your company subtree (filter by reference, status, ...)",
        "payments",
        query=AttemptFilter,
        response=PaymentAttemptOut,
        many=True,
    )
    def list_payment_attempts(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.payments, "list_attempts", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/payments/attempts/{attempt_id}",
        "One payment attempt: status, QR code or approve link, history",
        "payments",
        response=PaymentAttemptOut,
    )
    def get_payment_attempt(self, request: Any, actor: Actor, attempt_id: str) -> Any:
        return call(self.payments, "get_attempt", actor.to_rpc(), attempt_id)

    @endpoint(
        "POST",
        "/payments/attempts/{attempt_id}/close",
        "Close an unpaid attempt at its provider (a payment already made still counts)",
        "payments",
        response=PaymentAttemptOut,
        roles=("customer", "finance", "admin"),
    )
    def close_payment_attempt(self, request: Any, actor: Actor, attempt_id: str) -> Any:
        return call(self.payments, "close_attempt", actor.to_rpc(), attempt_id)
