"""The actor: who is asking (user, role, company). The gateway sends it with every RPC."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from services.common.errors import BadRequest, Forbidden

ROLES = ("customer", "sales", "finance", "support", "admin")
STAFF = ("sales", "finance", "support", "admin")


@dataclass(frozen=True)
class Actor:
    user_id: str
    username: str
    role: str
    company_id: str
    email: str | None = None  # where mails about the user's own requests go
    language: str | None = None

    @classmethod
    def from_rpc(cls, data: object) -> Actor:
        if not isinstance(data, dict):
            raise BadRequest("actor is required")
        try:
            actor = cls(
                user_id=str(data["user_id"]),
                username=str(data["username"]),
                role=str(data["role"]),
                company_id=str(data["company_id"]),
                email=data.get("email") or None,
                language=data.get("language") or None,
            )
        except KeyError as exc:
            raise BadRequest(f"actor is missing {exc.args[0]}") from exc
        if actor.role not in ROLES:
            raise Forbidden(f"unknown role {actor.role!r}")
        return actor

    @property
    def is_system(self) -> bool:
        """Operations scripts (demo loader, CLIs) act as the system, over the whole tree."""
        return self.user_id == "system"

    def to_rpc(self) -> dict:
        return asdict(self)

    def require(self, *roles: str) -> None:
        if self.role not in roles:
            raise Forbidden(f"the {self.role} role may not do this (needs {', '.join(roles)})")

    def meta(self) -> dict:
        return {"actor": self.username, "actor_role": self.role}


SYSTEM = Actor(user_id="system", username="system", role="admin", company_id="")
