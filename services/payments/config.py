"""Payments configuration from the environment (values are never logged).

A provider is enabled when its required variables are set. Variables not set in the
environment are read from the env file named by IOTB_PAYMENTS_ENV_FILE, or, when that is
unset, from ``<IOTB_DATA_DIR>/sim-keys/payments.env`` if the local simulators wrote one
(``python -m services.payments.simulators``): ``make run`` pays against the simulators
with no set-up, and production sets the real values.

WeChat Pay (API v3, Native):
  IOTB_WECHAT_BASE_URL           https://api.mch.weixin.qq.com
  IOTB_WECHAT_MCHID              merchant id                                  (required)
  IOTB_WECHAT_APPID              app id the merchant is bound to              (required)
  IOTB_WECHAT_PRIVATE_KEY_FILE   merchant API private key, PEM                (required)
  IOTB_WECHAT_SERIAL_NO          serial number of the merchant API cert       (required)
  IOTB_WECHAT_PLATFORM_CERT_FILE WeChat Pay platform certificate, PEM         (required)
  IOTB_WECHAT_APIV3_KEY          32-byte APIv3 key (decrypts callbacks)       (required)
  IOTB_WECHAT_NOTIFY_URL         public callback URL (gateway /payments/callbacks/wechat)
Alipay (open API, RSA2):
  IOTB_ALIPAY_GATEWAY_URL        https://openapi.alipay.com/gateway.do
  IOTB_ALIPAY_APP_ID             (required)
  IOTB_ALIPAY_PRIVATE_KEY_FILE   our app private key, PEM                     (required)
  IOTB_ALIPAY_PUBLIC_KEY_FILE    Alipay's public key, PEM                     (required)
  IOTB_ALIPAY_SELLER_ID          our seller (partner) id; checked when set
  IOTB_ALIPAY_NOTIFY_URL         public callback URL (gateway /payments/callbacks/alipay)
  IOTB_ALIPAY_RETURN_URL         where page pay sends the payer back (optional)
PayPal (Orders v2):
  IOTB_PAYPAL_BASE_URL           https://api-m.sandbox.paypal.com
  IOTB_PAYPAL_CLIENT_ID          (required)
  IOTB_PAYPAL_CLIENT_SECRET      (required)
  IOTB_PAYPAL_WEBHOOK_ID         id of the webhook pointing at /payments/callbacks/paypal (required)
  IOTB_PAYPAL_MERCHANT_ID        our payee merchant id; checked when set
  IOTB_PAYPAL_RETURN_URL / IOTB_PAYPAL_CANCEL_URL   where approval sends the payer back
Behaviour:
  IOTB_PAYMENTS_HTTP_TIMEOUT          seconds to wait for a provider's answer (10)
  IOTB_PAYMENTS_CALLBACK_TOLERANCE    seconds a callback's timestamp may differ from now (300)
  IOTB_PAYMENTS_RECONCILE_AFTER       query attempts still pending after this many seconds (120)
  IOTB_PAYMENTS_RECONCILE_INTERVAL    seconds between reconciliation rounds (30)
  IOTB_PAYMENTS_ATTEMPT_TTL           an unpaid attempt is closed after this many seconds (7200)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import data_dir


@dataclass(frozen=True)
class WechatConfig:
    base_url: str
    mchid: str
    appid: str
    private_key_file: str
    serial_no: str
    platform_cert_file: str
    apiv3_key: str
    notify_url: str

    def __repr__(self) -> str:  # keep the APIv3 key out of logs and tracebacks
        return f"WechatConfig(base_url={self.base_url!r}, mchid={self.mchid!r})"


@dataclass(frozen=True)
class AlipayConfig:
    gateway_url: str
    app_id: str
    private_key_file: str
    alipay_public_key_file: str
    seller_id: str
    notify_url: str
    return_url: str

    def __repr__(self) -> str:
        return f"AlipayConfig(gateway_url={self.gateway_url!r}, app_id={self.app_id!r})"


@dataclass(frozen=True)
class PaypalConfig:
    base_url: str
    client_id: str
    client_secret: str
    webhook_id: str
    merchant_id: str
    return_url: str
    cancel_url: str

    def __repr__(self) -> str:
        return f"PaypalConfig(base_url={self.base_url!r}, client_id={self.client_id!r})"


@dataclass(frozen=True)
class PaymentsSettings:
    wechat: WechatConfig | None
    alipay: AlipayConfig | None
    paypal: PaypalConfig | None
    http_timeout: float = 10.0
    callback_tolerance: float = 300.0
    reconcile_after: float = 120.0
    reconcile_interval: float = 30.0
    attempt_ttl: float = 7200.0


def read_env_file(path: str | Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments ignored; no shell expansion."""
    values: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def default_env_file() -> Path:
    return Path(os.environ.get("IOTB_DATA_DIR") or data_dir()) / "sim-keys" / "payments.env"


def _merged(environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    named = env.get("IOTB_PAYMENTS_ENV_FILE")
    path = Path(named) if named else (default_env_file() if environ is None else None)
    if path is not None and path.is_file():
        return {**read_env_file(path), **{k: v for k, v in env.items() if v != ""}}
    return env


def load_settings(environ: Mapping[str, str] | None = None) -> PaymentsSettings:
    env = _merged(environ)

    def get(name: str, default: str = "") -> str:
        return env.get(name) or default

    def all_set(*names: str) -> bool:
        return all(get(n) for n in names)

    wechat = None
    if all_set(
        "IOTB_WECHAT_MCHID",
        "IOTB_WECHAT_APPID",
        "IOTB_WECHAT_PRIVATE_KEY_FILE",
        "IOTB_WECHAT_SERIAL_NO",
        "IOTB_WECHAT_PLATFORM_CERT_FILE",
        "IOTB_WECHAT_APIV3_KEY",
    ):
        wechat = WechatConfig(
            base_url=get("IOTB_WECHAT_BASE_URL", "https://api.mch.weixin.qq.com").rstrip("/"),
            mchid=get("IOTB_WECHAT_MCHID"),
            appid=get("IOTB_WECHAT_APPID"),
            private_key_file=get("IOTB_WECHAT_PRIVATE_KEY_FILE"),
            serial_no=get("IOTB_WECHAT_SERIAL_NO"),
            platform_cert_file=get("IOTB_WECHAT_PLATFORM_CERT_FILE"),
            apiv3_key=get("IOTB_WECHAT_APIV3_KEY"),
            notify_url=get(
                "IOTB_WECHAT_NOTIFY_URL", "http://127.0.0.1:8000/payments/callbacks/wechat"
            ),
        )
    alipay = None
    if all_set("IOTB_ALIPAY_APP_ID", "IOTB_ALIPAY_PRIVATE_KEY_FILE", "IOTB_ALIPAY_PUBLIC_KEY_FILE"):
        alipay = AlipayConfig(
            gateway_url=get("IOTB_ALIPAY_GATEWAY_URL", "https://openapi.alipay.com/gateway.do"),
            app_id=get("IOTB_ALIPAY_APP_ID"),
            private_key_file=get("IOTB_ALIPAY_PRIVATE_KEY_FILE"),
            alipay_public_key_file=get("IOTB_ALIPAY_PUBLIC_KEY_FILE"),
            seller_id=get("IOTB_ALIPAY_SELLER_ID"),
            notify_url=get(
                "IOTB_ALIPAY_NOTIFY_URL", "http://127.0.0.1:8000/payments/callbacks/alipay"
            ),
            return_url=get("IOTB_ALIPAY_RETURN_URL"),
        )
    paypal = None
    if all_set("IOTB_PAYPAL_CLIENT_ID", "IOTB_PAYPAL_CLIENT_SECRET", "IOTB_PAYPAL_WEBHOOK_ID"):
        paypal = PaypalConfig(
            base_url=get("IOTB_PAYPAL_BASE_URL", "https://api-m.sandbox.paypal.com").rstrip("/"),
            client_id=get("IOTB_PAYPAL_CLIENT_ID"),
            client_secret=get("IOTB_PAYPAL_CLIENT_SECRET"),
            webhook_id=get("IOTB_PAYPAL_WEBHOOK_ID"),
            merchant_id=get("IOTB_PAYPAL_MERCHANT_ID"),
            return_url=get("IOTB_PAYPAL_RETURN_URL", "http://127.0.0.1:8000/"),
            cancel_url=get("IOTB_PAYPAL_CANCEL_URL", "http://127.0.0.1:8000/"),
        )
    return PaymentsSettings(
        wechat=wechat,
        alipay=alipay,
        paypal=paypal,
        http_timeout=float(get("IOTB_PAYMENTS_HTTP_TIMEOUT", "10")),
        callback_tolerance=float(get("IOTB_PAYMENTS_CALLBACK_TOLERANCE", "300")),
        reconcile_after=float(get("IOTB_PAYMENTS_RECONCILE_AFTER", "120")),
        reconcile_interval=float(get("IOTB_PAYMENTS_RECONCILE_INTERVAL", "30")),
        attempt_ttl=float(get("IOTB_PAYMENTS_ATTEMPT_TTL", "7200")),
    )
