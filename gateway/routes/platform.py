"""HTTP routes: platform."""

from __future__ import annotations

import os
from typing import Any

import eventlet

from gateway import auth
from gateway.api import call, endpoint
from gateway.errors import json_response
from gateway.openapi import build_spec
from gateway.schemas import (
    ClockIn,
    ClockOut,
    HealthOut,
    LoginIn,
    LoginOut,
    UserIn,
    UserOut,
)
from services.common import clock
from services.common.actor import Actor
from services.common.config import SERVICES
from services.common.errors import Forbidden

HEALTH_TIMEOUT = 3.0


class PlatformRoutes:
    @endpoint(
        "GET",
        "/health",
        "Which services answer",
        "platform",
        public=True,
        response=HealthOut,
        errors=(),
    )
    def health(self, request: Any) -> Any:
        def probe(name: str) -> dict:
            try:
                with eventlet.Timeout(HEALTH_TIMEOUT):
                    getattr(self, name).health()
                return {"name": name, "up": True, "error": None}
            except (Exception, eventlet.Timeout) as exc:  # noqa: BLE001 - any failure means down
                return {"name": name, "up": False, "error": type(exc).__name__}

        pool = eventlet.GreenPool(len(SERVICES))
        services = list(pool.imap(probe, SERVICES))
        up = all(s["up"] for s in services)
        return json_response(
            200 if up else 503, {"status": "ok" if up else "degraded", "services": services}
        )

    @endpoint(
        "GET", "/openapi.json", "This API's OpenAPI document", "platform", public=True, errors=()
    )
    def openapi(self, request: Any) -> Any:
        return build_spec()

    @endpoint(
        "POST",
        "/auth/login",
        "Log in; returns a bearer token",
        "auth",
        public=True,
        body=LoginIn,
        response=LoginOut,
        errors=(400, 401),
    )
    def login(self, request: Any, payload: dict) -> Any:
        user = self.users.authenticate(payload["username"], payload["password"])
        token, expires = auth.issue(user)
        return LoginOut().dump(
            {"token": token, "token_type": "Bearer", "expires_at": expires, "user": user.__dict__}
        )

    @endpoint("GET", "/me", "Who the token belongs to", "auth", response=UserOut)
    def me(self, request: Any, actor: Actor) -> Any:
        user = self.users.find(actor.username)
        return UserOut().dump(user.__dict__ if user else actor.to_rpc())

    @endpoint(
        "POST",
        "/users",
        "Create a user",
        "auth",
        body=UserIn,
        response=UserOut,
        status=201,
        roles=("admin",),
    )
    def create_user(self, request: Any, actor: Actor, payload: dict) -> Any:
        call(self.devices, "get_company", actor.to_rpc(), payload["company_id"])  # scope check
        user = self.users.create(
            payload["username"],
            payload["password"],
            payload["role"],
            payload["company_id"],
            payload.get("display_name", ""),
            payload.get("language", "zh"),
            payload.get("email"),
        )
        return UserOut().dump(user.__dict__)

    @endpoint(
        "POST",
        "/admin/clock",
        "Shift the service clock (demo and tests only)",
        "platform",
        body=ClockIn,
        response=ClockOut,
        roles=("admin",),
        description="Enabled only when IOTB_CLOCK_CONTROL=1 (make run sets it). "
        "Give offset_seconds (absolute shift from real time) or advance_days.",
    )
    def set_clock(self, request: Any, actor: Actor, payload: dict) -> Any:
        if os.environ.get("IOTB_CLOCK_CONTROL") != "1" or not isinstance(
            clock.clock, clock.SystemClock
        ):
            raise Forbidden("clock control is disabled on this installation")
        current = clock.clock._read_offset().total_seconds()  # noqa: SLF001
        offset = payload.get("offset_seconds")
        if offset is None:
            offset = current + float(payload.get("advance_days") or 0) * 86400
        clock.clock.set_offset(float(offset))
        return ClockOut().dump({"now": clock.now(), "offset_seconds": float(offset)})

    @endpoint("GET", "/admin/clock", "The service clock", "platform", response=ClockOut)
    def get_clock(self, request: Any, actor: Actor) -> Any:
        offset = (
            clock.clock._read_offset().total_seconds()
            if isinstance(clock.clock, clock.SystemClock)
            else 0.0
        )  # noqa: SLF001
        return ClockOut().dump({"now": clock.now(), "offset_seconds": offset})
