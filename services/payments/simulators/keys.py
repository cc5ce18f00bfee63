"""Keys, certificates and ids for the simulators, generated locally on first use, and the
payments service configuration that matches them.

Files in the keys directory (private keys 0600):
  wechat_merchant_key.pem / wechat_merchant_cert.pem   the merchant's API key pair (ours)
  wechat_platform_key.pem / wechat_platform_cert.pem   WeChat Pay's platform key pair (sim)
  alipay_app_key.pem / alipay_app_public.pem           our Alipay app key pair
  alipay_key.pem / alipay_public.pem                   Alipay's key pair (sim)
  paypal_webhook_key.pem / paypal_webhook_cert.pem     PayPal's webhook signing pair (sim)
  ids.json                                             merchant/app/client ids and secrets
"""

from __future__ import annotations

import json
import os
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from services.payments import crypto


def _write_private(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    os.chmod(path, 0o600)


def _write_public(path: Path, key: rsa.RSAPublicKey) -> None:
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _certificate(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )


def _key_pair(
    folder: Path,
    key_name: str,
    cert_name: str | None = None,
    public_name: str | None = None,
    common_name: str = "",
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(folder / key_name, key)
    if cert_name:
        cert = _certificate(key, common_name or key_name)
        (folder / cert_name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if public_name:
        _write_public(folder / public_name, key.public_key())


def _token(length: int, alphabet: str = string.ascii_uppercase + string.digits) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class SimKeys:
    folder: Path
    ids: dict[str, str]

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def wechat_merchant_serial(self) -> str:
        return crypto.certificate_serial(
            crypto.load_certificate(self.path("wechat_merchant_cert.pem"))
        )

    @property
    def wechat_platform_serial(self) -> str:
        return crypto.certificate_serial(
            crypto.load_certificate(self.path("wechat_platform_cert.pem"))
        )


def ensure_keys(folder: str | Path) -> SimKeys:
    """Load the keys in ``folder``, generating whatever is missing."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    if not (folder / "wechat_merchant_key.pem").exists():
        _key_pair(
            folder, "wechat_merchant_key.pem", "wechat_merchant_cert.pem", common_name="merchant"
        )
    if not (folder / "wechat_platform_key.pem").exists():
        _key_pair(
            folder,
            "wechat_platform_key.pem",
            "wechat_platform_cert.pem",
            common_name="Tenpay.com Root CA (sim)",
        )
    if not (folder / "alipay_app_key.pem").exists():
        _key_pair(folder, "alipay_app_key.pem", public_name="alipay_app_public.pem")
    if not (folder / "alipay_key.pem").exists():
        _key_pair(folder, "alipay_key.pem", public_name="alipay_public.pem")
    if not (folder / "paypal_webhook_key.pem").exists():
        _key_pair(
            folder,
            "paypal_webhook_key.pem",
            "paypal_webhook_cert.pem",
            common_name="messageverificationcerts.paypal.com (sim)",
        )
    ids_file = folder / "ids.json"
    if ids_file.exists():
        ids = json.loads(ids_file.read_text())
    else:
        ids = {
            "wechat_mchid": "19" + _token(8, string.digits),
            "wechat_appid": "wx" + _token(16, string.ascii_lowercase + string.digits),
            "wechat_apiv3_key": _token(32, string.ascii_letters + string.digits),
            "alipay_app_id": "2021" + _token(12, string.digits),
            "alipay_seller_id": "2088" + _token(12, string.digits),
            "paypal_client_id": "A" + _token(40, string.ascii_letters + string.digits),
            "paypal_client_secret": "E" + _token(40, string.ascii_letters + string.digits),
            "paypal_webhook_id": _token(17),
            "paypal_merchant_id": _token(13),
        }
        ids_file.write_text(json.dumps(ids, indent=2))
        os.chmod(ids_file, 0o600)
    return SimKeys(folder, ids)


def service_env(
    keys: SimKeys, wechat_url: str, alipay_url: str, paypal_url: str, callback_base: str
) -> dict[str, str]:
    """The payments service configuration that talks to these simulators."""
    base = callback_base.rstrip("/")
    return {
        "IOTB_WECHAT_BASE_URL": wechat_url,
        "IOTB_WECHAT_MCHID": keys.ids["wechat_mchid"],
        "IOTB_WECHAT_APPID": keys.ids["wechat_appid"],
        "IOTB_WECHAT_PRIVATE_KEY_FILE": str(keys.path("wechat_merchant_key.pem")),
        "IOTB_WECHAT_SERIAL_NO": keys.wechat_merchant_serial,
        "IOTB_WECHAT_PLATFORM_CERT_FILE": str(keys.path("wechat_platform_cert.pem")),
        "IOTB_WECHAT_APIV3_KEY": keys.ids["wechat_apiv3_key"],
        "IOTB_WECHAT_NOTIFY_URL": f"{base}/payments/callbacks/wechat",
        "IOTB_ALIPAY_GATEWAY_URL": f"{alipay_url}/gateway.do",
        "IOTB_ALIPAY_APP_ID": keys.ids["alipay_app_id"],
        "IOTB_ALIPAY_PRIVATE_KEY_FILE": str(keys.path("alipay_app_key.pem")),
        "IOTB_ALIPAY_PUBLIC_KEY_FILE": str(keys.path("alipay_public.pem")),
        "IOTB_ALIPAY_SELLER_ID": keys.ids["alipay_seller_id"],
        "IOTB_ALIPAY_NOTIFY_URL": f"{base}/payments/callbacks/alipay",
        "IOTB_PAYPAL_BASE_URL": paypal_url,
        "IOTB_PAYPAL_CLIENT_ID": keys.ids["paypal_client_id"],
        "IOTB_PAYPAL_CLIENT_SECRET": keys.ids["paypal_client_secret"],
        "IOTB_PAYPAL_WEBHOOK_ID": keys.ids["paypal_webhook_id"],
        "IOTB_PAYPAL_MERCHANT_ID": keys.ids["paypal_merchant_id"],
    }


def write_env_file(path: str | Path, values: dict[str, str]) -> Path:
    path = Path(path)
    lines = ["# written by python -m services.payments.simulators: local simulators only"]
    lines += [f"{k}={v}" for k, v in values.items()]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
