"""The HTTP gateway: authenticates, checks roles, forwards to the services by RPC with the
actor, and answers every failure in one JSON error format. Services enforce scope."""

from __future__ import annotations

import os
from typing import Any

import eventlet
from nameko.rpc import RpcProxy

from contracts.rpc.billing import (
    AccountConfigIn,
    AccountConfigOut,
    AccountOut,
    ApplicationFilter,
    OfflineApplicationIn,
    OfflineApplicationOut,
    OrderFilter,
    OrderOut,
    OrderPage,
    PayIn,
    RenewalCandidateOut,
    RenewalCenterFilter,
    RenewalOrderIn,
    ReviewIn,
)
from contracts.rpc.catalog import PackageFilter, PackageIn, PackageOut
from contracts.rpc.devices import (
    BindIn,
    BindOut,
    CompanyIn,
    CompanyOut,
    DeviceFilter,
    DeviceIn,
    DeviceOut,
    DevicePage,
)
from contracts.rpc.notifications import DeliveryOut
from gateway import auth
from gateway.api import endpoint
from gateway.dependencies import UserStore
from gateway.errors import json_response
from gateway.openapi import build_spec
from gateway.schemas import (
    ClockIn,
    ClockOut,
    CompaniesQuery,
    DeliveriesQuery,
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

RPC_TIMEOUT = float(os.environ.get("IOTB_RPC_TIMEOUT", "30"))
HEALTH_TIMEOUT = 3.0


def _call(proxy: Any, method: str, *args: Any) -> Any:
    with eventlet.Timeout(RPC_TIMEOUT):
        return getattr(proxy, method)(*args)


class GatewayService:
    name = "gateway"
    users = UserStore()
    catalog = RpcProxy("catalog")
    devices = RpcProxy("devices")
    billing = RpcProxy("billing")
    payments = RpcProxy("payments")
    notifications = RpcProxy("notifications")

    # -- platform ------------------------------------------------------------------------
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
        _call(self.devices, "get_company", actor.to_rpc(), payload["company_id"])  # scope check
        user = self.users.create(
            payload["username"],
            payload["password"],
            payload["role"],
            payload["company_id"],
            payload.get("display_name", ""),
            payload.get("language", "zh"),
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

    # -- companies and devices -----------------------------------------------------------
    @endpoint(
        "GET",
        "/companies",
        "Companies: direct children, or the whole subtree",
        "devices",
        query=CompaniesQuery,
        response=CompanyOut,
        many=True,
    )
    def list_companies(self, request: Any, actor: Actor, query: dict) -> Any:
        whole = str(query.get("whole_subtree", "false")).lower() in ("1", "true", "yes")
        return _call(self.devices, "list_companies", actor.to_rpc(), whole)

    @endpoint(
        "POST",
        "/companies",
        "Register a company under a parent in your subtree",
        "devices",
        body=CompanyIn,
        response=CompanyOut,
        status=201,
        roles=("admin",),
    )
    def create_company(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.devices, "register_company", actor.to_rpc(), payload)

    @endpoint("GET", "/companies/{company_id}", "One company", "devices", response=CompanyOut)
    def get_company(self, request: Any, actor: Actor, company_id: str) -> Any:
        return _call(self.devices, "get_company", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/devices",
        "Devices of your subtree, filtered and paged",
        "devices",
        query=DeviceFilter,
        response=DevicePage,
    )
    def list_devices(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.devices, "list_devices", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/devices",
        "Register a device",
        "devices",
        body=DeviceIn,
        response=DeviceOut,
        status=201,
        roles=("admin", "support"),
    )
    def create_device(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.devices, "register_device", actor.to_rpc(), payload)

    @endpoint("GET", "/devices/{device_id}", "One device", "devices", response=DeviceOut)
    def get_device(self, request: Any, actor: Actor, device_id: str) -> Any:
        return _call(self.devices, "get_device", actor.to_rpc(), device_id)

    @endpoint(
        "POST",
        "/renewal-bindings",
        "T3: bind a renewal package to devices (all or nothing)",
        "devices",
        body=BindIn,
        response=BindOut,
        roles=("support", "admin"),
    )
    def bind_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.devices, "bind_package", actor.to_rpc(), payload)

    # -- catalog -------------------------------------------------------------------------
    @endpoint(
        "GET",
        "/packages",
        "Packages of the catalog",
        "catalog",
        query=PackageFilter,
        response=PackageOut,
        many=True,
    )
    def list_packages(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.catalog, "list_packages", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/packages",
        "Create a package",
        "catalog",
        body=PackageIn,
        response=PackageOut,
        status=201,
        roles=("support", "admin"),
    )
    def create_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.catalog, "create_package", actor.to_rpc(), payload)

    @endpoint("GET", "/packages/{package_id}", "One package", "catalog", response=PackageOut)
    def get_package(self, request: Any, actor: Actor, package_id: str) -> Any:
        return _call(self.catalog, "get_package", actor.to_rpc(), package_id)

    # -- accounts ------------------------------------------------------------------------
    @endpoint(
        "GET",
        "/accounts/{company_id}",
        "Balances of a company's account",
        "billing",
        response=AccountOut,
    )
    def get_account(self, request: Any, actor: Actor, company_id: str) -> Any:
        return _call(self.billing, "get_account", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/accounts/{company_id}/config",
        "C4/S2: a company's billing account config",
        "billing",
        response=AccountConfigOut,
    )
    def get_account_config(self, request: Any, actor: Actor, company_id: str) -> Any:
        return _call(self.billing, "get_account_config", actor.to_rpc(), company_id)

    @endpoint(
        "PUT",
        "/accounts/{company_id}/config",
        "S2: create or change a billing account config",
        "billing",
        body=AccountConfigIn,
        response=AccountConfigOut,
        roles=("sales", "admin"),
    )
    def set_account_config(self, request: Any, actor: Actor, company_id: str, payload: dict) -> Any:
        return _call(self.billing, "set_account_config", actor.to_rpc(), company_id, payload)

    # -- offline recharge ----------------------------------------------------------------
    @endpoint(
        "POST",
        "/offline-applications",
        "S1: file an offline recharge (draft, or submit at once)",
        "billing",
        body=OfflineApplicationIn,
        response=OfflineApplicationOut,
        status=201,
        roles=("sales", "admin"),
    )
    def file_application(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.billing, "file_offline_application", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/offline-applications",
        "S1/F1: offline recharge applications",
        "billing",
        query=ApplicationFilter,
        response=OfflineApplicationOut,
        many=True,
        roles=("sales", "finance", "admin"),
    )
    def list_applications(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.billing, "list_offline_applications", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/offline-applications/{application_id}",
        "One application with its history",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "finance", "admin"),
    )
    def get_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return _call(self.billing, "get_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/submit",
        "S1: submit a draft or returned application for review",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "admin"),
    )
    def submit_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return _call(self.billing, "submit_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/review",
        "F1: approve (credits the balance), return or reject, with an opinion",
        "billing",
        body=ReviewIn,
        response=OfflineApplicationOut,
        roles=("finance", "admin"),
    )
    def review_application(
        self, request: Any, actor: Actor, application_id: str, payload: dict
    ) -> Any:
        return _call(
            self.billing, "review_offline_application", actor.to_rpc(), application_id, payload
        )

    # -- renewal and orders --------------------------------------------------------------
    @endpoint(
        "GET",
        "/renewal-center",
        "C1: devices expired or expiring within the window, with package and price",
        "billing",
        query=RenewalCenterFilter,
        response=RenewalCandidateOut,
        many=True,
    )
    def renewal_center(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.billing, "renewal_center", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/orders",
        "C1: create a renewal order for devices and a month count",
        "billing",
        body=RenewalOrderIn,
        response=OrderOut,
        status=201,
        roles=("customer", "admin"),
    )
    def create_order(self, request: Any, actor: Actor, payload: dict) -> Any:
        return _call(self.billing, "create_renewal_order", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/orders",
        "C2: orders of your company, filtered and paged",
        "billing",
        query=OrderFilter,
        response=OrderPage,
    )
    def list_orders(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.billing, "list_orders", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/orders/{order_id}",
        "C2: one order with its lines and history",
        "billing",
        response=OrderOut,
    )
    def get_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return _call(self.billing, "get_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/confirm",
        "C1: the second confirmation",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def confirm_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return _call(self.billing, "confirm_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/pay",
        "C1: pay a confirmed order",
        "billing",
        body=PayIn,
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def pay_order(self, request: Any, actor: Actor, order_id: str, payload: dict) -> Any:
        return _call(self.billing, "pay_order", actor.to_rpc(), order_id, payload)

    @endpoint(
        "POST",
        "/orders/{order_id}/cancel",
        "C2: cancel an unpaid order",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def cancel_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return _call(self.billing, "cancel_order", actor.to_rpc(), order_id)

    # -- notifications -------------------------------------------------------------------
    @endpoint(
        "GET",
        "/deliveries",
        "Mails sent to your company (admins: all)",
        "notifications",
        query=DeliveriesQuery,
        response=DeliveryOut,
        many=True,
    )
    def deliveries(self, request: Any, actor: Actor, query: dict) -> Any:
        return _call(self.notifications, "delivery_log", actor.to_rpc(), query.get("company_id"))
