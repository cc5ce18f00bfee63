"""Gateway users: who may log in, with which role, in which company.

Passwords are hashed with argon2. The table lives in the gateway's own database.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from services.common.actor import ROLES, Actor
from services.common.config import store_config
from services.common.errors import Conflict, Unauthorized, ValidationFailed
from services.common.store import make_engine

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(100), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("company_id", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("email", sa.String(200), nullable=True),
)

_hasher = PasswordHasher()
# a fixed hash to verify against when the user does not exist, so timing does not tell
_DUMMY_HASH = _hasher.hash("not-a-real-password")


@dataclass(frozen=True)
class User:
    user_id: str
    username: str
    role: str
    company_id: str
    display_name: str
    language: str
    email: str | None = None

    def actor(self) -> Actor:
        return Actor(
            self.user_id, self.username, self.role, self.company_id, self.email, self.language
        )


class Users:
    def __init__(self, engine: sa.Engine | None = None) -> None:
        self.engine = engine or make_engine(store_config("gateway"))
        metadata.create_all(self.engine)
        columns = {c["name"] for c in sa.inspect(self.engine).get_columns("users")}
        if "email" not in columns:  # a store made before users had an e-mail address
            with self.engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE users ADD COLUMN email VARCHAR(200)"))

    def create(
        self,
        username: str,
        password: str,
        role: str,
        company_id: str,
        display_name: str = "",
        language: str = "zh",
        email: str | None = None,
    ) -> User:
        username = username.strip().lower()
        if role not in ROLES:
            raise ValidationFailed(
                f"role: must be one of {', '.join(ROLES)}", {"role": ["unknown role"]}
            )
        if len(password) < 8:
            raise ValidationFailed(
                "password: at least 8 characters", {"password": ["at least 8 characters"]}
            )
        user = User(
            str(uuid.uuid4()),
            username,
            role,
            company_id,
            display_name or username,
            language,
            email.strip().lower() if email else None,
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    users.insert().values(password_hash=_hasher.hash(password), **user.__dict__)
                )
        except sa.exc.IntegrityError as exc:
            raise Conflict(f"user {username} already exists", {"username": ["taken"]}) from exc
        return user

    def find(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.username == username.strip().lower())
            ).first()
        if row is None:
            return None
        data = dict(row._mapping)
        data.pop("password_hash")
        return User(**data)

    def authenticate(self, username: str, password: str) -> User:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(users).where(users.c.username == username.strip().lower())
            ).first()
        try:
            _hasher.verify(row.password_hash if row is not None else _DUMMY_HASH, password)
        except (VerifyMismatchError, InvalidHashError):
            row = None
        if row is None:
            raise Unauthorized("wrong username or password")
        data = dict(row._mapping)
        data.pop("password_hash")
        return User(**data)

    def list(self, company_ids: set[str] | None = None) -> list[User]:
        query = sa.select(users).order_by(users.c.username)
        if company_ids is not None:
            query = query.where(users.c.company_id.in_(company_ids))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        result = []
        for row in rows:
            data = dict(row._mapping)
            data.pop("password_hash")
            result.append(User(**data))
        return result
