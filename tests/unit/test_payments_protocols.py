"""The providers' protocols, byte by byte: signing strings, verification, decryption, and
what a callback we must not trust looks like (no network: messages are built here)."""

from __future__ import annotations

import base64
import json
import secrets
import zlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from services.common import clock
from services.payments import crypto
from services.payments.config import load_settings
from services.payments.providers.alipay import Alipay, response_node, sign_content
from services.payments.providers.base import CallbackRejected
from services.payments.providers.paypal import PayPal
from services.payments.providers.wechat import WechatPay
from services.payments.simulators.keys import SimKeys, ensure_keys, service_env

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> SimKeys:
    return ensure_keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def settings(keys: SimKeys):
    return load_settings(
        service_env(keys, "http://wx.test", "http://ali.test", "http://pp.test", "http://gw.test")
    )


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "clock", clock.FixedClock(NOW))


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def flip(body: bytes, at: int | None = None) -> bytes:
    i = len(body) // 2 if at is None else at
    return body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]


# -- WeChat Pay API v3 ------------------------------------------------------------------------
def wechat_notice(
    keys: SimKeys,
    transaction: dict,
    key=None,
    sent: datetime = NOW,
    serial: str | None = None,
    apiv3: bytes | None = None,
) -> tuple[dict, bytes]:
    nonce = "a1b2c3d4e5f6"
    ciphertext = crypto.aead_encrypt(
        apiv3 or keys.ids["wechat_apiv3_key"].encode(),
        nonce,
        json.dumps(transaction).encode(),
        "transaction",
    )
    body = json.dumps(
        {
            "id": "EV-2018022511223320873",
            "create_time": sent.astimezone(BEIJING).isoformat(),
            "resource_type": "encrypt-resource",
            "event_type": "TRANSACTION.SUCCESS",
            "summary": "支付成功",
            "resource": {
                "original_type": "transaction",
                "algorithm": "AEAD_AES_256_GCM",
                "ciphertext": ciphertext,
                "associated_data": "transaction",
                "nonce": nonce,
            },
        },
        ensure_ascii=False,
    ).encode()
    timestamp = str(int(sent.timestamp()))
    sign_nonce = secrets.token_hex(16)
    signer = key or crypto.load_private_key(keys.path("wechat_platform_key.pem"))
    headers = {
        "Wechatpay-Timestamp": timestamp,
        "Wechatpay-Nonce": sign_nonce,
        "Wechatpay-Signature": crypto.sign(
            signer, f"{timestamp}\n{sign_nonce}\n".encode() + body + b"\n"
        ),
        "Wechatpay-Serial": serial or keys.wechat_platform_serial,
    }
    return headers, body


def transaction(keys: SimKeys, **changes) -> dict:
    found = {
        "appid": keys.ids["wechat_appid"],
        "mchid": keys.ids["wechat_mchid"],
        "out_trade_no": "P" + "0" * 31,
        "transaction_id": "4200000001",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "success_time": "2026-03-01T16:00:00+08:00",
        "amount": {"total": 8880, "payer_total": 8880, "currency": "CNY", "payer_currency": "CNY"},
    }
    found.update(changes)
    return found


def test_wechat_requests_carry_the_documented_authorization(keys: SimKeys, settings) -> None:
    wechat = WechatPay(settings.wechat)
    value = wechat.authorization(
        "GET", "http://wx.test/v3/pay/transactions/out-trade-no/P1?mchid=19", ""
    )
    scheme, _, params = value.partition(" ")
    assert scheme == "WECHATPAY2-SHA256-RSA2048"
    fields = dict(part.split("=", 1) for part in params.split(","))
    fields = {k: v.strip('"') for k, v in fields.items()}
    assert fields["mchid"] == keys.ids["wechat_mchid"]
    assert fields["serial_no"] == keys.wechat_merchant_serial
    assert fields["timestamp"] == str(int(NOW.timestamp()))
    # five lines, each ending in \n: method, path with query, timestamp, nonce, body
    message = f"GET\n/v3/pay/transactions/out-trade-no/P1?mchid=19\n{fields['timestamp']}\n{fields['nonce_str']}\n\n"
    merchant = crypto.load_certificate(keys.path("wechat_merchant_cert.pem")).public_key()
    assert crypto.verify(merchant, message.encode(), fields["signature"])


def test_a_genuine_wechat_notification_is_decrypted(keys: SimKeys, settings) -> None:
    headers, body = wechat_notice(keys, transaction(keys))
    report = WechatPay(settings.wechat).verify_callback(headers, body, NOW)
    assert (report.state, report.out_trade_no, report.amount, report.currency) == (
        "paid",
        "P" + "0" * 31,
        Decimal("88.80"),
        "CNY",
    )
    assert (
        report.paid_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC) and report.merchant_error is None
    )


@pytest.mark.parametrize(
    "spoil",
    ["byte", "key", "serial", "stale", "future", "apiv3", "headers"],
)
def test_a_wechat_notification_we_cannot_trust_is_rejected(
    keys: SimKeys, settings, spoil: str
) -> None:
    options: dict = {}
    if spoil == "key":
        options["key"] = other_key()
    if spoil == "serial":
        options["serial"] = "0" * 40
    if spoil == "stale":
        options["sent"] = NOW - timedelta(minutes=5, seconds=1)
    if spoil == "future":
        options["sent"] = NOW + timedelta(minutes=6)
    if spoil == "apiv3":
        options["apiv3"] = b"x" * 32
        # signed by the platform over a resource encrypted with another key
    headers, body = wechat_notice(keys, transaction(keys), **options)
    if spoil == "byte":
        body = flip(body)
    if spoil == "headers":
        headers.pop("Wechatpay-Signature")
    with pytest.raises(CallbackRejected):
        WechatPay(settings.wechat).verify_callback(headers, body, NOW)


def test_a_wechat_notification_within_the_tolerance_is_accepted(keys: SimKeys, settings) -> None:
    headers, body = wechat_notice(
        keys, transaction(keys), sent=NOW - timedelta(minutes=4, seconds=59)
    )
    assert WechatPay(settings.wechat).verify_callback(headers, body, NOW).state == "paid"


def test_a_notification_for_another_merchant_is_flagged(keys: SimKeys, settings) -> None:
    headers, body = wechat_notice(keys, transaction(keys, mchid="1900000002"))
    report = WechatPay(settings.wechat).verify_callback(headers, body, NOW)
    assert report.merchant_error == "mchid 1900000002 is not ours"


def test_wechat_answers_as_its_protocol_requires(settings) -> None:
    wechat = WechatPay(settings.wechat)
    ok = wechat.answer(True, "")
    assert ok.status == 200 and json.loads(ok.body)["code"] == "SUCCESS"
    refused = wechat.answer(False, "verification failed", 401)
    assert refused.status == 401 and json.loads(refused.body) == {
        "code": "FAIL",
        "message": "verification failed",
    }


# -- Alipay -------------------------------------------------------------------------------------
def test_alipay_sign_strings_follow_the_documented_rules() -> None:
    params = {
        "sign": "x",
        "sign_type": "RSA2",
        "b": "2",
        "a": "1",
        "empty": "",
        "biz_content": '{"k":"v & w"}',
    }
    # requests: everything but sign (sign_type included), sorted, empty values left out
    assert sign_content(params, ("sign",)) == 'a=1&b=2&biz_content={"k":"v & w"}&sign_type=RSA2'
    # notifications: without sign and sign_type
    assert sign_content(params, ("sign", "sign_type")) == 'a=1&b=2&biz_content={"k":"v & w"}'


def test_alipay_requests_are_signed_with_our_app_key(keys: SimKeys, settings) -> None:
    params = Alipay(settings.alipay).signed_params("alipay.trade.query", {"out_trade_no": "P1"})
    assert params["timestamp"] == "2026-03-01 16:00:00"  # Beijing time
    public = crypto.load_public_key(keys.path("alipay_app_public.pem"))
    assert crypto.verify(public, sign_content(params, ("sign",)).encode(), params["sign"])


def test_an_alipay_answer_is_verified_over_its_raw_text() -> None:
    raw = '{"code":"10000","msg":"Success","out_trade_no":"P1","total_amount":"88.80","subject":"\\u7eed\\u8d39"}'
    text = '{"alipay_trade_query_response": ' + raw + ',"sign":"SIG"}'
    found, node, signature = response_node(text, "alipay_trade_query_response")
    assert found == raw  # exactly as received, escapes and all
    assert node["subject"] == "续费" and signature == "SIG"
    with pytest.raises(ValueError):
        response_node('{"error_response":{"code":"40002"}}', "alipay_trade_query_response")


def alipay_notify(keys: SimKeys, key=None, sent: datetime = NOW, **changes: str) -> bytes:
    params = {
        "notify_time": sent.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S"),
        "notify_type": "trade_status_sync",
        "notify_id": "ac05099524730693a8b330c5ecf72da9786",
        "app_id": keys.ids["alipay_app_id"],
        "charset": "utf-8",
        "version": "1.0",
        "trade_no": "2026030122001",
        "out_trade_no": "P" + "0" * 31,
        "trade_status": "TRADE_SUCCESS",
        "total_amount": "88.80",
        "seller_id": keys.ids["alipay_seller_id"],
        "gmt_payment": "2026-03-01 15:59:58",
        "subject": "续费 & renewal",
        **changes,
    }
    signer = key or crypto.load_private_key(keys.path("alipay_key.pem"))
    params["sign"] = crypto.sign(signer, sign_content(params, ("sign", "sign_type")).encode())
    params["sign_type"] = "RSA2"
    return urlencode(params).encode()


def test_a_genuine_alipay_notify_is_accepted(keys: SimKeys, settings) -> None:
    report = Alipay(settings.alipay).verify_callback({}, alipay_notify(keys), NOW)
    assert (report.state, report.amount, report.currency, report.merchant_error) == (
        "paid",
        Decimal("88.80"),
        "CNY",
        None,
    )
    assert report.paid_at == datetime(2026, 3, 1, 7, 59, 58, tzinfo=UTC)


@pytest.mark.parametrize("spoil", ["byte", "key", "stale", "repeated", "unsigned"])
def test_an_alipay_notify_we_cannot_trust_is_rejected(keys: SimKeys, settings, spoil: str) -> None:
    body = alipay_notify(
        keys,
        key=other_key() if spoil == "key" else None,
        sent=NOW - timedelta(minutes=6) if spoil == "stale" else NOW,
    )
    if spoil == "byte":
        body = body.replace(b"total_amount=88.80", b"total_amount=88.81")
    if spoil == "repeated":
        body += b"&total_amount=0.01"
    if spoil == "unsigned":
        body = body.replace(b"sign_type=RSA2", b"sign_type=RSA")
    with pytest.raises(CallbackRejected):
        Alipay(settings.alipay).verify_callback({}, body, NOW)


def test_an_alipay_notify_for_another_app_or_currency_is_flagged(keys: SimKeys, settings) -> None:
    alipay = Alipay(settings.alipay)
    other_app = alipay.verify_callback({}, alipay_notify(keys, app_id="2021000000000000"), NOW)
    assert other_app.merchant_error == "app_id 2021000000000000 is not ours"
    other_seller = alipay.verify_callback(
        {}, alipay_notify(keys, seller_id="2088000000000000"), NOW
    )
    assert other_seller.merchant_error == "seller_id 2088000000000000 is not ours"
    usd = alipay.verify_callback({}, alipay_notify(keys, trans_currency="USD"), NOW)
    assert usd.currency == "USD"


def test_alipay_answers_success_or_failure_in_plain_text(settings) -> None:
    alipay = Alipay(settings.alipay)
    assert alipay.answer(True, "").body == "success"
    assert alipay.answer(False, "no").body == "failure"


# -- PayPal -------------------------------------------------------------------------------------
CERT_URL = "http://pp.test/v1/notifications/certs/CERT-1"


def paypal(settings, keys: SimKeys) -> PayPal:
    found = PayPal(settings.paypal)
    # the certificate as PayPal's API host serves it (no network in unit tests)
    found._certs[CERT_URL] = crypto.public_key_from_pem(
        keys.path("paypal_webhook_cert.pem").read_bytes()
    )
    return found


def capture_event(keys: SimKeys, status: str = "COMPLETED", merchant: str | None = None) -> dict:
    return {
        "id": "WH-58D329510W468432D-8HN650336L201105X",
        "event_version": "1.0",
        "event_type": f"PAYMENT.CAPTURE.{status}",
        "resource_type": "capture",
        "resource": {
            "id": "42311647XV020574X",
            "status": status,
            "amount": {"currency_code": "USD", "value": "12.00"},
            "payee": {"merchant_id": merchant or keys.ids["paypal_merchant_id"]},
            "create_time": "2026-03-01T07:59:00Z",
            "supplementary_data": {"related_ids": {"order_id": "5O190127TN364715T"}},
        },
    }


def paypal_headers(
    keys: SimKeys,
    body: bytes,
    key=None,
    sent: datetime = NOW,
    webhook_id: str | None = None,
    cert_url: str = CERT_URL,
) -> dict:
    transmission_id = "69cd13f0-d67a-11e5-baa3-778b53f4ae55"
    transmission_time = sent.strftime("%Y-%m-%dT%H:%M:%SZ")
    message = f"{transmission_id}|{transmission_time}|{webhook_id or keys.ids['paypal_webhook_id']}|{zlib.crc32(body)}"
    signer = key or crypto.load_private_key(keys.path("paypal_webhook_key.pem"))
    signature = base64.b64encode(
        signer.sign(message.encode(), padding.PKCS1v15(), hashes.SHA256())
    ).decode()
    return {
        "PAYPAL-TRANSMISSION-ID": transmission_id,
        "PAYPAL-TRANSMISSION-TIME": transmission_time,
        "PAYPAL-TRANSMISSION-SIG": signature,
        "PAYPAL-CERT-URL": cert_url,
        "PAYPAL-AUTH-ALGO": "SHA256withRSA",
    }


def test_a_genuine_paypal_webhook_is_accepted(keys: SimKeys, settings) -> None:
    body = json.dumps(capture_event(keys)).encode()
    report = paypal(settings, keys).verify_callback(paypal_headers(keys, body), body, NOW)
    assert (report.state, report.provider_ref, report.amount, report.currency) == (
        "paid",
        "5O190127TN364715T",
        Decimal("12.00"),
        "USD",
    )
    assert report.provider_trade_no == "42311647XV020574X" and report.merchant_error is None


@pytest.mark.parametrize("spoil", ["byte", "key", "stale", "webhook", "cert_url", "algorithm"])
def test_a_paypal_webhook_we_cannot_trust_is_rejected(keys: SimKeys, settings, spoil: str) -> None:
    body = json.dumps(capture_event(keys)).encode()
    headers = paypal_headers(
        keys,
        body,
        key=other_key() if spoil == "key" else None,
        sent=NOW - timedelta(minutes=10) if spoil == "stale" else NOW,
        webhook_id="OTHERWEBHOOK" if spoil == "webhook" else None,
        cert_url="https://evil.example/cert.pem" if spoil == "cert_url" else CERT_URL,
    )
    if spoil == "byte":
        body = flip(body)
    if spoil == "algorithm":
        headers["PAYPAL-AUTH-ALGO"] = "SHA1withRSA"
    with pytest.raises(CallbackRejected):
        paypal(settings, keys).verify_callback(headers, body, NOW)


def test_paypal_counts_the_capture_not_the_order(keys: SimKeys, settings) -> None:
    adapter = paypal(settings, keys)

    def order(capture_status: str) -> dict:
        capture = capture_event(keys, capture_status)["resource"]
        return {
            "id": "5O190127TN364715T",
            "status": "COMPLETED",
            "purchase_units": [{"amount": capture["amount"], "payments": {"captures": [capture]}}],
        }

    assert adapter.order_report(order("COMPLETED")).state == "paid"
    assert adapter.order_report(order("PENDING")).state == "pending"
    assert adapter.order_report(order("DECLINED")).state == "failed"
    approved = {
        "id": "X",
        "status": "APPROVED",
        "purchase_units": [{"amount": {"currency_code": "USD", "value": "12.00"}}],
    }
    assert adapter.order_report(approved).state == "approved"


def test_a_paypal_capture_for_another_payee_is_flagged(keys: SimKeys, settings) -> None:
    body = json.dumps(capture_event(keys, merchant="OTHERMERCHANT1")).encode()
    report = paypal(settings, keys).verify_callback(paypal_headers(keys, body), body, NOW)
    assert report.merchant_error == "payee merchant OTHERMERCHANT1 is not ours"


def test_secrets_stay_out_of_reprs(settings) -> None:
    for config in (settings.wechat, settings.alipay, settings.paypal):
        text = repr(config)
        assert settings.wechat.apiv3_key not in text and settings.paypal.client_secret not in text


def test_config_reads_an_env_file_under_the_environment(tmp_path: Path, keys: SimKeys) -> None:
    env_file = tmp_path / "payments.env"
    env = service_env(keys, "http://wx.test", "http://ali.test", "http://pp.test", "http://gw.test")
    env_file.write_text("\n".join(f"{k}={v}" for k, v in env.items()))
    found = load_settings(
        {"IOTB_PAYMENTS_ENV_FILE": str(env_file), "IOTB_WECHAT_MCHID": "1900000001"}
    )
    assert found.wechat is not None and found.wechat.mchid == "1900000001"  # the environment wins
    assert found.paypal is not None and found.alipay is not None
    assert load_settings({}).wechat is None  # nothing configured: nothing enabled
