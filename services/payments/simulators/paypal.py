"""PayPal REST simulator (OAuth2 + Orders v2 + webhooks): the subset the payments service uses.

  POST /v1/oauth2/token                         client credentials (HTTP basic) -> bearer
  POST /v2/checkout/orders                      create (PayPal-Request-Id makes it idempotent)
  GET  /v2/checkout/orders/{id}                 get
  POST /v2/checkout/orders/{id}/capture         capture (idempotent per PayPal-Request-Id)
  GET  /checkoutnow?token={id}                  the payer's approval page
  GET  /v1/notifications/certs/{name}           the webhook signing certificate
Paying (POST /_sim/pay/{order id}) approves the order and sends CHECKOUT.ORDER.APPROVED; a
capture sends PAYMENT.CAPTURE.COMPLETED (or DENIED / PENDING for outcome "decline" /
"pending"). Webhooks are signed over ``id|time|webhook id|crc32(body)``.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid
import zlib
from datetime import UTC, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from services.common import clock
from services.payments import crypto
from services.payments.simulators.base import SimRequest, SimResponse, Simulator, pay_page
from services.payments.simulators.keys import SimKeys

CERT_NAME = "CERT-360caa42-fca2a594-sim"


def _id(length: int = 17) -> str:
    return "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(length))


def _time(shift: timedelta = timedelta(0)) -> str:
    return (clock.now() + shift).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class PaypalSimulator(Simulator):
    name = "paypal-sim"

    def __init__(
        self, keys: SimKeys, webhook_url: str = "", host: str = "127.0.0.1", port: int = 0
    ) -> None:
        super().__init__(host, port)
        self.client_id = keys.ids["paypal_client_id"]
        self.client_secret = keys.ids["paypal_client_secret"]
        self.webhook_id = keys.ids["paypal_webhook_id"]
        self.merchant_id = keys.ids["paypal_merchant_id"]
        self.webhook_url = webhook_url
        self.webhook_key = crypto.load_private_key(keys.path("paypal_webhook_key.pem"))
        self.webhook_cert = keys.path("paypal_webhook_cert.pem").read_bytes()
        self.wrong_key = crypto.load_private_key(keys.path("alipay_key.pem"))
        self.tokens: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.outcomes: dict[str, str] = {}
        self.requests: dict[str, tuple[int, dict]] = {}  # PayPal-Request-Id -> answer
        self.route("POST", r"/v1/oauth2/token", self._token)
        self.route("POST", r"/v2/checkout/orders", self._create)
        self.route("GET", r"/v2/checkout/orders/(?P<id>[^/]+)", self._get)
        self.route("POST", r"/v2/checkout/orders/(?P<id>[^/]+)/capture", self._capture)
        self.route("GET", r"/checkoutnow", self._checkout_page)
        self.route("GET", r"/v1/notifications/certs/(?P<name>[^/]+)", self._cert)

    @property
    def trades(self) -> dict[str, dict[str, Any]]:
        """Orders by id (every simulator has ``trades``)."""
        return self.orders

    # -- protocol -----------------------------------------------------------------------
    def _problem(self, status: int, name: str, issue: str, message: str) -> SimResponse:
        return SimResponse.json(
            status,
            {
                "name": name,
                "message": message,
                "debug_id": secrets.token_hex(6),
                "details": [{"issue": issue, "description": message}],
            },
        )

    def _token(self, request: SimRequest) -> SimResponse:
        auth = request.headers.get("Authorization") or ""
        try:
            user, _, password = (
                base64.b64decode(auth.removeprefix("Basic ")).decode().partition(":")
            )
        except ValueError:
            user = password = ""
        if (user, password) != (self.client_id, self.client_secret):
            return SimResponse.json(
                401,
                {"error": "invalid_client", "error_description": "Client Authentication failed"},
            )
        token = "A21AA" + secrets.token_urlsafe(32)
        with self.lock:
            self.tokens.add(token)
        return SimResponse.json(
            200,
            {
                "scope": "https://uri.paypal.com/services/payments/payment",
                "access_token": token,
                "token_type": "Bearer",
                "app_id": "APP-80W284485P519543T",
                "expires_in": 32400,
                "nonce": secrets.token_hex(8),
            },
        )

    def _authorized(self, request: SimRequest) -> bool:
        auth = request.headers.get("Authorization") or ""
        with self.lock:
            return auth.startswith("Bearer ") and auth.removeprefix("Bearer ") in self.tokens

    def _links(self, order_id: str) -> list[dict[str, str]]:
        return [
            {"href": f"{self.url}/v2/checkout/orders/{order_id}", "rel": "self", "method": "GET"},
            {
                "href": f"{self.url}/checkoutnow?token={order_id}",
                "rel": "payer-action",
                "method": "GET",
            },
        ]

    def _create(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return self._problem(
                401, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed"
            )
        request_id = request.headers.get("PayPal-Request-Id")
        with self.lock:
            if request_id and request_id in self.requests:
                status, body = self.requests[request_id]
                return SimResponse.json(status, body)
        try:
            data = request.json()
            unit = data["purchase_units"][0]
            amount = unit["amount"]
            value = Decimal(str(amount["value"]))
            if (
                data["intent"] != "CAPTURE"
                or value <= 0
                or value != value.quantize(Decimal("0.01"))
            ):
                raise ValueError
        except (ValueError, KeyError, IndexError, TypeError, InvalidOperation):
            return self._problem(
                400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", "Request is not well-formed"
            )
        if amount.get("currency_code") != "USD":
            return self._problem(
                422,
                "UNPROCESSABLE_ENTITY",
                "CURRENCY_NOT_SUPPORTED",
                "Currency code is not supported",
            )
        with self.lock:
            invoice = unit.get("invoice_id")
            if invoice and any(
                o["purchase_units"][0].get("invoice_id") == invoice for o in self.orders.values()
            ):
                return self._problem(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    "DUPLICATE_INVOICE_ID",
                    "Duplicate Invoice ID detected",
                )
            order_id = _id()
            order = {
                "id": order_id,
                "intent": "CAPTURE",
                "status": "PAYER_ACTION_REQUIRED",
                "create_time": _time(),
                "purchase_units": [
                    {
                        "reference_id": unit.get("reference_id", "default"),
                        "invoice_id": invoice,
                        "custom_id": unit.get("custom_id"),
                        "description": unit.get("description"),
                        "amount": {"currency_code": "USD", "value": f"{value:.2f}"},
                        "payee": {
                            "merchant_id": self.merchant_id,
                            "email_address": "merchant@example.com",
                        },
                    }
                ],
                "payment_source": {"paypal": {}},
            }
            self.orders[order_id] = order
            body = {**order, "links": self._links(order_id)}
            if request_id:
                self.requests[request_id] = (200, body)
        return SimResponse.json(200, body)

    def _get(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return self._problem(
                401, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed"
            )
        with self.lock:
            order = self.orders.get(request.params["id"])
            if order is None:
                return self._problem(
                    404,
                    "RESOURCE_NOT_FOUND",
                    "INVALID_RESOURCE_ID",
                    "Specified resource ID does not exist",
                )
            return SimResponse.json(200, {**order, "links": self._links(order["id"])})

    def _capture(self, request: SimRequest) -> SimResponse:
        if not self._authorized(request):
            return self._problem(
                401, "AUTHENTICATION_FAILURE", "INVALID_TOKEN", "Authentication failed"
            )
        request_id = request.headers.get("PayPal-Request-Id")
        with self.lock:
            if request_id and request_id in self.requests:
                status, body = self.requests[request_id]
                return SimResponse.json(status, body)
            order = self.orders.get(request.params["id"])
            if order is None:
                return self._problem(
                    404,
                    "RESOURCE_NOT_FOUND",
                    "INVALID_RESOURCE_ID",
                    "Specified resource ID does not exist",
                )
            if order["status"] == "COMPLETED":
                return self._problem(
                    422, "UNPROCESSABLE_ENTITY", "ORDER_ALREADY_CAPTURED", "Order already captured"
                )
            if order["status"] != "APPROVED":
                return self._problem(
                    422,
                    "UNPROCESSABLE_ENTITY",
                    "ORDER_NOT_APPROVED",
                    "Payer has not yet approved the Order",
                )
            unit = order["purchase_units"][0]
            outcome = self.outcomes.get(order["id"], "success")
            capture_status = {"decline": "DECLINED", "pending": "PENDING"}.get(outcome, "COMPLETED")
            capture = {
                "id": _id(),
                "status": capture_status,
                "amount": dict(unit["amount"]),
                "final_capture": True,
                "invoice_id": unit.get("invoice_id"),
                "custom_id": unit.get("custom_id"),
                "payee": dict(unit["payee"]),
                "create_time": _time(),
                "update_time": _time(),
                "supplementary_data": {"related_ids": {"order_id": order["id"]}},
            }
            if capture_status == "PENDING":
                capture["status_details"] = {"reason": "PENDING_REVIEW"}
            unit["payments"] = {"captures": [capture]}
            order["status"] = "COMPLETED"
            body = {**order, "links": self._links(order["id"])}
            if request_id:
                self.requests[request_id] = (201, body)
        kind = {"COMPLETED": "PAYMENT.CAPTURE.COMPLETED", "DECLINED": "PAYMENT.CAPTURE.DENIED"}.get(
            capture_status, "PAYMENT.CAPTURE.PENDING"
        )
        self._webhook(kind, "capture", order["id"], capture)
        return SimResponse.json(201, body)

    def _checkout_page(self, request: SimRequest) -> SimResponse:
        with self.lock:
            order = self.orders.get(request.query.get("token", ""))
        if order is None:
            return SimResponse(404, b"no such order")
        amount = order["purchase_units"][0]["amount"]
        return SimResponse.html(
            pay_page("PayPal (simulated)", f"/_sim/pay/{order['id']}", amount["value"], "USD")
        )

    def _cert(self, request: SimRequest) -> SimResponse:
        return SimResponse(200, self.webhook_cert, {"Content-Type": "application/x-pem-file"})

    # -- the payer and webhooks -----------------------------------------------------------
    def pay(self, trade: str, outcome: str) -> dict | None:
        """The payer approves the order (the outcome decides what the capture will do)."""
        with self.lock:
            order = self.orders.get(trade)
            if order is None:
                return None
            if order["status"] not in ("CREATED", "PAYER_ACTION_REQUIRED"):
                return dict(order)
            order["status"] = "APPROVED"
            order["payer"] = {"payer_id": _id(13), "email_address": "payer@example.com"}
            self.outcomes[trade] = outcome
            snapshot = json.loads(json.dumps(order))
        self._webhook("CHECKOUT.ORDER.APPROVED", "checkout-order", trade, snapshot)
        return snapshot

    def _webhook(self, kind: str, resource_type: str, trade: str, resource: dict) -> None:
        if self.webhook_url:
            self.deliver(
                kind,
                trade,
                self.webhook_url,
                lambda t: self._signed_event(kind, resource_type, resource, t),
            )

    def _signed_event(
        self, kind: str, resource_type: str, resource: dict, tamper: str | None
    ) -> tuple[dict[str, str], bytes]:
        resource = json.loads(json.dumps(resource))
        amount = (
            resource["amount"] if "amount" in resource else resource["purchase_units"][0]["amount"]
        )
        payee = resource["payee"] if "payee" in resource else resource["purchase_units"][0]["payee"]
        if tamper == "amount":
            amount["value"] = f"{Decimal(amount['value']) + Decimal('0.01'):.2f}"
        elif tamper == "currency":
            amount["currency_code"] = "EUR"
        elif tamper == "merchant":
            payee["merchant_id"] = "OTHERMERCHANT1"
        event = {
            "id": f"WH-{_id(17)}-{_id(17)}",
            "event_version": "1.0",
            "create_time": _time(),
            "resource_type": resource_type,
            "resource_version": "2.0",
            "event_type": kind,
            "summary": kind.replace(".", " ").lower(),
            "resource": resource,
        }
        body = json.dumps(event).encode()
        transmission_id = str(uuid.uuid1())
        transmission_time = _time(-timedelta(minutes=10) if tamper == "stale" else timedelta(0))
        message = f"{transmission_id}|{transmission_time}|{self.webhook_id}|{zlib.crc32(body)}"
        key = self.wrong_key if tamper == "key" else self.webhook_key
        headers = {
            "Content-Type": "application/json",
            "PAYPAL-TRANSMISSION-ID": transmission_id,
            "PAYPAL-TRANSMISSION-TIME": transmission_time,
            "PAYPAL-TRANSMISSION-SIG": crypto.sign(key, message.encode()),
            "PAYPAL-CERT-URL": f"{self.url}/v1/notifications/certs/{CERT_NAME}",
            "PAYPAL-AUTH-ALGO": "SHA256withRSA",
        }
        return headers, body

    def acknowledged(self, status: int, body: bytes) -> bool:
        return 200 <= status < 300

    def trade(self, trade: str) -> dict | None:
        with self.lock:
            order = self.orders.get(trade)
            return None if order is None else json.loads(json.dumps(order))
