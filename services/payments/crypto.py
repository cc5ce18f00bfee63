"""The few cryptographic primitives the providers' protocols are built from.

SHA256withRSA (PKCS#1 v1.5, base64) signs and verifies WeChat Pay API v3 messages, Alipay
RSA2 strings and PayPal webhook transmissions; AES-256-GCM carries WeChat Pay's encrypted
callback resources. Keys and certificates are PEM files named by configuration.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PublicKey = rsa.RSAPublicKey
PrivateKey = rsa.RSAPrivateKey


def load_private_key(path: str | Path) -> PrivateKey:
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{path} does not hold an RSA private key")
    return key


def load_certificate(path: str | Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def public_key_from_pem(data: bytes) -> PublicKey:
    """An RSA public key from a PEM public key or a PEM X.509 certificate."""
    if b"BEGIN CERTIFICATE" in data:
        key = x509.load_pem_x509_certificate(data).public_key()
    else:
        key = serialization.load_pem_public_key(data)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def load_public_key(path: str | Path) -> PublicKey:
    return public_key_from_pem(Path(path).read_bytes())


def certificate_serial(cert: x509.Certificate) -> str:
    """A certificate's serial number as the providers print it: upper-case hex."""
    return format(cert.serial_number, "X")


def sign(key: PrivateKey, message: bytes) -> str:
    """SHA256withRSA over ``message``, base64."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def verify(key: PublicKey, message: bytes, signature: str) -> bool:
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, message, padding.PKCS1v15(), hashes.SHA256())
        return True
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False


def aead_decrypt(key: bytes, nonce: str, ciphertext: str, associated_data: str) -> bytes:
    """AEAD_AES_256_GCM as WeChat Pay uses it: base64 ciphertext with the 16-byte tag
    appended, a text nonce, text associated data. Raises ValueError if it was altered."""
    try:
        return AESGCM(key).decrypt(
            nonce.encode(), base64.b64decode(ciphertext, validate=True), associated_data.encode()
        )
    except (InvalidTag, binascii.Error, ValueError) as exc:
        raise ValueError("the encrypted resource does not decrypt with our key") from exc


def aead_encrypt(key: bytes, nonce: str, plaintext: bytes, associated_data: str) -> str:
    return base64.b64encode(
        AESGCM(key).encrypt(nonce.encode(), plaintext, associated_data.encode())
    ).decode()
