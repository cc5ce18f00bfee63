"""Bearer tokens (JWT, HS256). The secret comes from IOTB_JWT_SECRET; without it a random
secret is made once and kept in the data folder (fine on one machine only)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt

from gateway.users import User
from services.common.actor import Actor
from services.common.config import data_dir, env
from services.common.errors import Unauthorized

TOKEN_HOURS = 12


def _secret() -> str:
    configured = env("IOTB_JWT_SECRET")
    if configured:
        return configured
    path = data_dir() / "jwt-secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def issue(user: User) -> tuple[str, datetime]:
    expires = datetime.now(UTC) + timedelta(hours=TOKEN_HOURS)
    claims = {
        "sub": user.user_id,
        "username": user.username,
        "role": user.role,
        "company_id": user.company_id,
        "email": user.email,
        "language": user.language,
        "exp": expires,
    }
    return jwt.encode(claims, _secret(), algorithm="HS256"), expires


def verify(header: str | None) -> Actor:
    if not header or not header.startswith("Bearer "):
        raise Unauthorized(
            "send the token from POST /auth/login as 'Authorization: Bearer <token>'"
        )
    try:
        claims = jwt.decode(header[7:], _secret(), algorithms=["HS256"])
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired: log in again") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized("the token is not valid") from exc
    return Actor(
        claims["sub"],
        claims["username"],
        claims["role"],
        claims["company_id"],
        email=claims.get("email"),
        language=claims.get("language"),
    )
