"""PayPal Orders v2 (intent CAPTURE): create, approve link, capture, get; webhooks.

- OAuth2 client credentials give a bearer token (cached until shortly before it expires).
- Creating and capturing send ``PayPal-Request-Id`` derived from our trade number, so a
  retry after a timeout never makes a second order or a second capture.
- A payment counts only when the *capture* is COMPLETED (an order can be COMPLETED with its
  capture PENDING or DECLINED).
- Webhooks are verified locally as PayPal documents: SHA256withRSA, by the certificate at
  ``PAYPAL-CERT-URL`` (fetched only from PayPal's own API host, then cached), over
  ``<transmission id>|<transmission time>|<our webhook id>|<CRC32 of the raw body>``.
  Transmissions outside the tolerance are refused (replay).
- Amounts are "0.00" strings.
"""

from __future__ import annotations

import json
import threading
import time
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from services.payments import crypto
from services.payments.config import PaypalConfig
from services.payments.providers.base import (
    CallbackAnswer,
    CallbackRejected,
    CreatedTrade,
    NewTrade,
    ProviderRefused,
    ProviderUnavailable,
    TradeReport,
    from_decimal_string,
    header,
    to_decimal_string,
)

ORDER_STATES = {
    "CREATED": "pending",
    "SAVED": "pending",
    "PAYER_ACTION_REQUIRED": "pending",
    "APPROVED": "approved",
    "VOIDED": "closed",
}
CAPTURE_STATES = {
    "COMPLETED": "paid",
    "REFUNDED": "paid",  # it was paid (a refund is a separate matter)
    "PARTIALLY_REFUNDED": "paid",
    "PENDING": "pending",
    "DECLINED": "failed",
    "FAILED": "failed",
}


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class PayPal:
    method = "paypal"

    def __init__(
        self,
        config: PaypalConfig,
        timeout: float = 10.0,
        tolerance: float = 300.0,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.tolerance = tolerance
        self.http = session or requests.Session()
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None
        self._certs: dict[str, crypto.PublicKey] = {}

    # -- OAuth2 -------------------------------------------------------------------------
    def _bearer(self, renew: bool = False) -> str:
        with self._lock:
            if self._token is None or renew or self._token[1] <= time.monotonic():
                try:
                    answer = self.http.post(
                        self.config.base_url + "/v1/oauth2/token",
                        auth=(self.config.client_id, self.config.client_secret),
                        data={"grant_type": "client_credentials"},
                        headers={"Accept": "application/json"},
                        timeout=(min(5.0, self.timeout), self.timeout),
                    )
                except requests.RequestException as exc:
                    raise ProviderUnavailable(
                        f"PayPal did not answer ({type(exc).__name__})"
                    ) from exc
                if answer.status_code != 200:
                    raise ProviderUnavailable(
                        f"PayPal refused our credentials ({answer.status_code})"
                    )
                data = answer.json()
                lifetime = float(data.get("expires_in", 300))
                self._token = (data["access_token"], time.monotonic() + max(lifetime - 60, 1))
            return self._token[0]

    def _call(
        self, method: str, path: str, payload: dict | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        for attempt in (1, 2):
            headers = {
                "Authorization": f"Bearer {self._bearer(renew=attempt == 2)}",
                "Accept": "application/json",
                "Prefer": "return=representation",
            }
            if request_id:
                headers["PayPal-Request-Id"] = request_id
            try:
                answer = self.http.request(
                    method,
                    self.config.base_url + path,
                    json=payload,
                    headers=headers,
                    timeout=(min(5.0, self.timeout), self.timeout),
                )
            except requests.RequestException as exc:
                raise ProviderUnavailable(f"PayPal did not answer ({type(exc).__name__})") from exc
            if answer.status_code == 401 and attempt == 1:
                continue  # the token expired early: get a new one once
            break
        if answer.status_code >= 500 or answer.status_code == 401:
            raise ProviderUnavailable(f"PayPal answered {answer.status_code}")
        try:
            data = answer.json() if answer.content else {}
        except ValueError as exc:
            raise ProviderUnavailable("PayPal answered with something that is not JSON") from exc
        if answer.status_code >= 400:
            details = data.get("details") or [{}]
            raise ProviderRefused(
                str(details[0].get("issue") or data.get("name") or answer.status_code),
                str(data.get("message") or ""),
            )
        return data

    # -- orders -------------------------------------------------------------------------
    def create(self, trade: NewTrade) -> CreatedTrade:
        order = self._call(
            "POST",
            "/v2/checkout/orders",
            {
                "intent": "CAPTURE",
                "purchase_units": [
                    {
                        "reference_id": trade.out_trade_no,
                        "invoice_id": trade.out_trade_no,
                        "custom_id": trade.out_trade_no,
                        "description": (trade.description or "IoT billing payment")[:127],
                        "amount": {
                            "currency_code": "USD",
                            "value": to_decimal_string(trade.amount),
                        },
                    }
                ],
                "payment_source": {
                    "paypal": {
                        "experience_context": {
                            "user_action": "PAY_NOW",
                            "return_url": self.config.return_url,
                            "cancel_url": self.config.cancel_url,
                        }
                    }
                },
            },
            request_id=trade.out_trade_no,
        )
        links = {link.get("rel"): link.get("href") for link in order.get("links", [])}
        approve = links.get("payer-action") or links.get("approve")
        if not order.get("id") or not approve:
            raise ProviderUnavailable("PayPal's answer has no order id or approve link")
        return CreatedTrade(approve_url=approve, provider_ref=str(order["id"]))

    def query(self, out_trade_no: str, provider_ref: str | None) -> TradeReport:
        if not provider_ref:
            return TradeReport(self.method, "absent", out_trade_no=out_trade_no)
        try:
            order = self._call("GET", f"/v2/checkout/orders/{quote(provider_ref, safe='')}")
        except ProviderRefused as exc:
            if exc.code in ("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID", "404"):
                return TradeReport(self.method, "absent", provider_ref=provider_ref)
            raise
        return self.order_report(order)

    def capture(self, out_trade_no: str, provider_ref: str) -> TradeReport:
        try:
            order = self._call(
                "POST",
                f"/v2/checkout/orders/{quote(provider_ref, safe='')}/capture",
                {},
                request_id=f"{out_trade_no}-capture",
            )
        except ProviderRefused as exc:
            if exc.code in ("ORDER_ALREADY_CAPTURED", "ORDER_NOT_APPROVED"):
                return self.query(out_trade_no, provider_ref)
            raise
        return self.order_report(order)

    def close(self, out_trade_no: str, provider_ref: str | None) -> TradeReport:
        # Orders v2 has no cancel for an uncaptured order: it simply expires. Never capturing
        # it is what closes it; the caller learns whether it was paid already.
        return self.query(out_trade_no, provider_ref)

    # -- what an order or a capture says ------------------------------------------------
    def _merchant_error(self, payee: Any) -> str | None:
        if not self.config.merchant_id:
            return None
        found = payee.get("merchant_id") if isinstance(payee, dict) else None
        if found != self.config.merchant_id:
            return f"payee merchant {found} is not ours"
        return None

    def order_report(self, order: Mapping[str, Any], event_id: str | None = None) -> TradeReport:
        try:
            unit = order["purchase_units"][0]
            status = str(order["status"])
            captures = ((unit.get("payments") or {}).get("captures")) or []
            order_id = str(order["id"])
        except (KeyError, IndexError, TypeError) as exc:
            raise CallbackRejected(f"the order is malformed ({type(exc).__name__})") from exc
        if status == "COMPLETED":
            if not captures:
                return TradeReport(self.method, "pending", provider_ref=order_id, event_id=event_id)
            # the order's status is not enough: the money moved only if the capture did
            capture = next((c for c in captures if c.get("status") == "COMPLETED"), captures[0])
            return self.capture_report(
                capture,
                order_id,
                event_id=event_id,
                payee=capture.get("payee") or unit.get("payee"),
            )
        amount = unit.get("amount") or {}
        try:
            value = from_decimal_string(amount["value"]) if "value" in amount else None
        except ValueError as exc:
            raise CallbackRejected("the order's amount is malformed") from exc
        return TradeReport(
            provider=self.method,
            state=ORDER_STATES.get(status, "pending"),
            provider_ref=order_id,
            amount=value,
            currency=amount.get("currency_code"),
            reason=status,
            merchant_error=self._merchant_error(unit.get("payee")) if unit.get("payee") else None,
            event_id=event_id,
        )

    def capture_report(
        self,
        capture: Mapping[str, Any],
        order_id: str,
        event_id: str | None = None,
        payee: Any = None,
    ) -> TradeReport:
        try:
            status = str(capture["status"])
            amount = from_decimal_string(capture["amount"]["value"])
            currency = str(capture["amount"]["currency_code"])
            paid_at = _time(capture.get("create_time") or capture.get("update_time"))
        except (KeyError, TypeError, ValueError) as exc:
            raise CallbackRejected(f"the capture is malformed ({type(exc).__name__})") from exc
        return TradeReport(
            provider=self.method,
            state=CAPTURE_STATES.get(status, "pending"),
            provider_ref=order_id,
            amount=amount,
            currency=currency,
            provider_trade_no=capture.get("id"),
            paid_at=paid_at,
            reason=f"capture {status}",
            merchant_error=self._merchant_error(
                payee if payee is not None else capture.get("payee")
            ),
            event_id=event_id,
        )

    # -- webhooks -----------------------------------------------------------------------
    def _trusted_cert_url(self, url: str) -> bool:
        target, ours = urlsplit(url), urlsplit(self.config.base_url)
        if (target.scheme, target.netloc) == (ours.scheme, ours.netloc):
            return True
        host = target.hostname or ""
        return target.scheme == "https" and (host == "paypal.com" or host.endswith(".paypal.com"))

    def _certificate_key(self, url: str) -> crypto.PublicKey:
        with self._lock:
            cached = self._certs.get(url)
        if cached is not None:
            return cached
        try:
            answer = self.http.get(url, timeout=(min(5.0, self.timeout), self.timeout))
        except requests.RequestException as exc:
            raise ProviderUnavailable("PayPal's signing certificate cannot be fetched") from exc
        if answer.status_code != 200:
            raise ProviderUnavailable(f"PayPal's signing certificate: HTTP {answer.status_code}")
        try:
            key = crypto.public_key_from_pem(answer.content)
        except ValueError as exc:
            raise CallbackRejected("the signing certificate is not a certificate") from exc
        with self._lock:
            self._certs[url] = key
        return key

    def verify_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> TradeReport:
        transmission_id = header(headers, "PAYPAL-TRANSMISSION-ID")
        transmission_time = header(headers, "PAYPAL-TRANSMISSION-TIME")
        signature = header(headers, "PAYPAL-TRANSMISSION-SIG")
        cert_url = header(headers, "PAYPAL-CERT-URL")
        algorithm = header(headers, "PAYPAL-AUTH-ALGO")
        if not (transmission_id and transmission_time and signature and cert_url):
            raise CallbackRejected("the PAYPAL-TRANSMISSION-* headers are missing")
        if algorithm != "SHA256withRSA":
            raise CallbackRejected(f"unsupported signature algorithm {algorithm!r}")
        if not self._trusted_cert_url(cert_url):
            raise CallbackRejected("the certificate URL is not PayPal's")
        try:
            sent = _time(transmission_time)
        except ValueError as exc:
            raise CallbackRejected("PAYPAL-TRANSMISSION-TIME is malformed") from exc
        if sent is None or abs((now - sent).total_seconds()) > self.tolerance:
            raise CallbackRejected("the transmission time is outside the tolerance (replay?)")
        message = (
            f"{transmission_id}|{transmission_time}|{self.config.webhook_id}|{zlib.crc32(body)}"
        )
        if not crypto.verify(self._certificate_key(cert_url), message.encode(), signature):
            raise CallbackRejected("the signature does not verify")
        try:
            notice = json.loads(body)
            kind = str(notice["event_type"])
            resource = notice["resource"]
            event_id = str(notice.get("id") or transmission_id)
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("the webhook event cannot be read") from exc
        if kind.startswith("CHECKOUT.ORDER."):
            return self.order_report(resource, event_id=event_id)
        if kind.startswith("PAYMENT.CAPTURE."):
            try:
                order_id = str(resource["supplementary_data"]["related_ids"]["order_id"])
            except (KeyError, TypeError) as exc:
                raise CallbackRejected("the capture names no order") from exc
            return self.capture_report(resource, order_id, event_id=event_id)
        return TradeReport(self.method, "pending", reason=f"ignored {kind}", event_id=event_id)

    def answer(self, accepted: bool, message: str, status: int | None = None) -> CallbackAnswer:
        if accepted:
            return CallbackAnswer(200, "application/json", "{}")
        return CallbackAnswer(status or 400, "application/json", json.dumps({"error": message}))
