"""HTTP routes: devices."""

from __future__ import annotations

from typing import Any

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
from gateway.api import call, endpoint
from gateway.schemas import (
    CompaniesQuery,
)
from services.common.actor import Actor


class DevicesRoutes:
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
        return call(self.devices, "list_companies", actor.to_rpc(), whole)

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
        return call(self.devices, "register_company", actor.to_rpc(), payload)

    @endpoint("GET", "/companies/{company_id}", "One company", "devices", response=CompanyOut)
    def get_company(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.devices, "get_company", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/devices",
        "Devices of your subtree, filtered and paged",
        "devices",
        query=DeviceFilter,
        response=DevicePage,
    )
    def list_devices(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.devices, "list_devices", actor.to_rpc(), query)

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
        return call(self.devices, "register_device", actor.to_rpc(), payload)

    @endpoint("GET", "/devices/{device_id}", "One device", "devices", response=DeviceOut)
    def get_device(self, request: Any, actor: Actor, device_id: str) -> Any:
        return call(self.devices, "get_device", actor.to_rpc(), device_id)

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
        return call(self.devices, "bind_package", actor.to_rpc(), payload)
