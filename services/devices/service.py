"""Devices service entrypoints."""

from __future__ import annotations

import os

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
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
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.common.domain import event_meta
from services.devices.application import DevicesApplication

EXPIRY_SCAN_SECONDS = float(os.environ.get("IOTB_EXPIRY_SCAN_SECONDS", "5"))


class DevicesService:
    name = "devices"
    app: DevicesApplication = Store(DevicesApplication)
    catalog = RpcProxy("catalog")

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def register_company(self, actor: dict, payload: dict) -> dict:
        return CompanyOut().dump(
            self.app.register_company(Actor.from_rpc(actor), load(CompanyIn(), payload))
        )

    @rpc
    def get_company(self, actor: dict, company_id: str) -> dict:
        return CompanyOut().dump(self.app.company(Actor.from_rpc(actor), company_id))

    @rpc
    def list_companies(self, actor: dict, whole_subtree: bool = False) -> list[dict]:
        return CompanyOut(many=True).dump(
            self.app.list_companies(Actor.from_rpc(actor), bool(whole_subtree))
        )

    @rpc
    def register_device(self, actor: dict, payload: dict) -> dict:
        return DeviceOut().dump(
            self.app.register_device(Actor.from_rpc(actor), load(DeviceIn(), payload))
        )

    @rpc
    def get_device(self, actor: dict, device_id: str) -> dict:
        return DeviceOut().dump(self.app.device(Actor.from_rpc(actor), device_id))

    @rpc
    def list_devices(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(DeviceFilter(), filters or {})
        return DevicePage().dump(self.app.list_devices(Actor.from_rpc(actor), data))

    @rpc
    def bind_package(self, actor: dict, payload: dict) -> dict:
        who = Actor.from_rpc(actor)
        data = load(BindIn(), payload)
        result = self.app.bind_package(
            who, data, lambda package_id: self.catalog.get_package(who.to_rpc(), package_id)
        )
        return BindOut().dump(result)

    @rpc
    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]:
        return self.app.devices_for_order(Actor.from_rpc(actor), list(device_ids))

    @timer(interval=EXPIRY_SCAN_SECONDS)
    def expire_due(self) -> None:
        self.app.expire_due()

    @timer(interval=2)
    def catch_up(self) -> None:
        self.app.catch_up()  # views of events written by another replica

    @subscribe("billing", "order_paid")
    def on_order_paid(self, envelope: Envelope) -> None:
        if envelope.data["order_type"] not in ("renewal", "value_added"):
            return
        with event_meta(
            causation_id=envelope.id, correlation_id=envelope.correlation_id or envelope.id
        ):
            self.app.apply_paid_order(envelope.id, envelope.data)
