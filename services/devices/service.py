"""Devices service entrypoints: parse, call the application, dump."""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.devices import (
    XLSX_TYPE,
    BindIn,
    BindOut,
    CompanyFilter,
    CompanyIn,
    CompanyOut,
    DeviceBatchIn,
    DeviceFilter,
    DeviceIn,
    DeviceOut,
    DevicePage,
    ExpiryChangeIn,
    ExpiryHistoryOut,
    ExpiryImportIn,
    ExpiryImportOut,
    FileOut,
    ReasonIn,
    ReenableOut,
    SuspendOut,
    TypeBindingOut,
    UnbindIn,
    UnbindOut,
    ValueAddedAddOut,
    ValueAddedFilter,
    ValueAddedIn,
    ValueAddedItem,
    ValueAddedPage,
    ValueAddedRemoveIn,
    ValueAddedRemoveOut,
)
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.common.domain import event_meta
from services.common.errors import BadRequest
from services.devices import excel
from services.devices.application import DevicesApplication, pasted_ids

EXPIRY_SCAN_SECONDS = float(os.environ.get("IOTB_EXPIRY_SCAN_SECONDS", "5"))


def _file(name: str, content: bytes) -> dict:
    return FileOut().dump(
        {
            "file_name": name,
            "content_type": XLSX_TYPE,
            "content": base64.b64encode(content).decode("ascii"),
        }
    )


def _decode(content: str) -> bytes:
    if len(content) > excel.MAX_BYTES * 4 // 3 + 4:
        why = f"the file is larger than {excel.MAX_BYTES // (1024 * 1024)} MB"
        raise BadRequest(f"file: {why}", {"file": [why]})
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("content: not base64", {"content": ["not base64"]}) from exc


def _batch_ids(data: dict) -> list[str]:
    return list(data.get("device_ids") or []) + pasted_ids(data.get("text") or "")


class DevicesService:
    name = "devices"
    app: DevicesApplication = Store(DevicesApplication)
    catalog = RpcProxy("catalog")

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    # -- companies -------------------------------------------------------------------------
    @rpc
    def register_company(self, actor: dict, payload: dict) -> dict:
        return CompanyOut().dump(
            self.app.register_company(Actor.from_rpc(actor), load(CompanyIn(), payload))
        )

    @rpc
    def get_company(self, actor: dict, company_id: str) -> dict:
        return CompanyOut().dump(self.app.company(Actor.from_rpc(actor), company_id))

    @rpc
    def list_companies(
        self, actor: dict, whole_subtree: bool = False, parent_id: str | None = None
    ) -> list[dict]:
        data = load(CompanyFilter(), {"whole_subtree": bool(whole_subtree)})
        return CompanyOut(many=True).dump(
            self.app.list_companies(Actor.from_rpc(actor), data["whole_subtree"], parent_id)
        )

    # -- devices ---------------------------------------------------------------------------
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
    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]:
        found = self.app.devices_for_order(Actor.from_rpc(actor), list(device_ids))
        return DeviceOut(many=True).dump(found)

    # -- T1 / S3: expiry -------------------------------------------------------------------
    @rpc
    def change_expiry(self, actor: dict, device_id: str, payload: dict) -> dict:
        data = load(ExpiryChangeIn(), payload)
        return DeviceOut().dump(self.app.change_expiry(Actor.from_rpc(actor), device_id, data))

    @rpc
    def expiry_history(self, actor: dict, device_id: str) -> list[dict]:
        return ExpiryHistoryOut(many=True).dump(
            self.app.expiry_history(Actor.from_rpc(actor), device_id)
        )

    @rpc
    def expiry_template(self, actor: dict) -> dict:
        Actor.from_rpc(actor)
        return _file("expiry-import-template.xlsx", self.app.expiry_template())

    @rpc
    def import_expiry(self, actor: dict, payload: dict) -> dict:
        who = Actor.from_rpc(actor)
        data = load(ExpiryImportIn(), payload)
        result = self.app.import_expiry(
            who, data["file_name"], _decode(data["content"]), data["dry_run"]
        )
        return ExpiryImportOut().dump(result)

    # -- C5: suspension --------------------------------------------------------------------
    @rpc
    def suspend_device(self, actor: dict, device_id: str, payload: dict | None = None) -> dict:
        data = load(ReasonIn(), payload or {})
        return SuspendOut().dump(
            self.app.suspend(Actor.from_rpc(actor), [device_id], data["reason"])
        )

    @rpc
    def suspend_devices(self, actor: dict, payload: dict) -> dict:
        data = load(DeviceBatchIn(), payload)
        return SuspendOut().dump(
            self.app.suspend(Actor.from_rpc(actor), _batch_ids(data), data["reason"])
        )

    @rpc
    def reenable_device(self, actor: dict, device_id: str, payload: dict | None = None) -> dict:
        data = load(ReasonIn(), payload or {})
        return ReenableOut().dump(
            self.app.reenable(Actor.from_rpc(actor), [device_id], data["reason"])
        )

    @rpc
    def reenable_devices(self, actor: dict, payload: dict) -> dict:
        data = load(DeviceBatchIn(), payload)
        return ReenableOut().dump(
            self.app.reenable(Actor.from_rpc(actor), _batch_ids(data), data["reason"])
        )

    # -- T3: renewal bindings --------------------------------------------------------------
    def _lookup(self, who: Actor) -> Callable[[str], dict]:
        return lambda package_id: self.catalog.get_package(who.to_rpc(), package_id)

    @rpc
    def bind_package(self, actor: dict, payload: dict) -> dict:
        who = Actor.from_rpc(actor)
        data = load(BindIn(), payload)
        return BindOut().dump(self.app.bind_package(who, data, self._lookup(who)))

    @rpc
    def unbind_package(self, actor: dict, payload: dict) -> dict:
        data = load(UnbindIn(), payload)
        return UnbindOut().dump(self.app.unbind_package(Actor.from_rpc(actor), data))

    @rpc
    def type_bindings(self, actor: dict, company_id: str) -> list[dict]:
        return TypeBindingOut(many=True).dump(
            self.app.type_bindings(Actor.from_rpc(actor), company_id)
        )

    @rpc
    def export_bindings(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(DeviceFilter(), filters or {})
        return _file(*self.app.export_bindings(Actor.from_rpc(actor), data))

    # -- T4: value-added bindings ----------------------------------------------------------
    @rpc
    def add_value_added(self, actor: dict, payload: dict) -> dict:
        who = Actor.from_rpc(actor)
        data = load(ValueAddedIn(), payload)
        return ValueAddedAddOut().dump(self.app.add_value_added(who, data, self._lookup(who)))

    @rpc
    def remove_value_added(self, actor: dict, payload: dict) -> dict:
        data = load(ValueAddedRemoveIn(), payload)
        return ValueAddedRemoveOut().dump(
            self.app.remove_value_added(Actor.from_rpc(actor), data["binding_ids"])
        )

    @rpc
    def list_value_added(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(ValueAddedFilter(), filters or {})
        return ValueAddedPage().dump(self.app.list_value_added(Actor.from_rpc(actor), data))

    @rpc
    def value_added_for_order(self, actor: dict, binding_ids: list[str]) -> list[dict]:
        found = self.app.value_added_for_order(Actor.from_rpc(actor), list(binding_ids))
        return ValueAddedItem(many=True).dump(found)

    # -- the clock and reactions -----------------------------------------------------------
    @timer(interval=EXPIRY_SCAN_SECONDS)
    def expire_due(self) -> None:
        self.app.remind_due()
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
