"""What the devices service publishes (contracts/events/devices.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.common.relay import WireEvent
from services.devices.application import DevicesApplication
from services.devices.domain import Company, Device, RenewalApplied


def open_store() -> tuple[DevicesApplication, sa.Engine]:
    app = DevicesApplication()
    return app, app.engine


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    subject = str(e.originator_id)
    if isinstance(e, Company.Created):
        yield WireEvent(
            "company_registered",
            subject,
            {"company_id": subject, "parent_id": e.parent_id, "name": e.name, "region": e.region},
        )
    elif isinstance(e, Device.Created):
        yield WireEvent(
            "device_registered",
            e.imei,
            {
                "device_id": e.imei,
                "device_type": e.device_type,
                "company_id": e.company_id,
                "expires_at": e.expires_at,
            },
        )
    elif isinstance(e, (Device.PackageBound, Device.Expired, Device.Renewed)):
        yield from _device_event(
            e, app.repository.get(e.originator_id, version=e.originator_version)
        )
    elif isinstance(e, RenewalApplied.Created):
        yield WireEvent(
            "renewal_applied",
            e.order_id,
            {
                "order_id": e.order_id,
                "order_number": e.order_number,
                "company_id": e.company_id,
                "currency": e.currency,
                "total": e.total,
                "paid_at": e.paid_at,
                "lines": e.lines,
            },
        )


def _device_event(e: Any, device: Device) -> Iterator[WireEvent]:
    # wire events name the device by its device id and owner, which the domain event does
    # not repeat: the relay reads them from the aggregate as of this event
    base = {"device_id": device.imei, "company_id": device.company_id}
    if isinstance(e, Device.PackageBound):
        yield WireEvent(
            "package_bound",
            device.imei,
            {**base, "package_id": e.package_id, "previous_package_id": e.previous_package_id},
        )
    elif isinstance(e, Device.Expired):
        yield WireEvent(
            "device_expired",
            device.imei,
            {**base, "expires_at": e.expires_at, "package_id": device.package_id},
        )
    elif isinstance(e, Device.Renewed):
        yield WireEvent(
            "device_renewed",
            device.imei,
            {
                **base,
                "order_id": e.order_id,
                "line_id": e.line_id,
                "months": e.months,
                "old_expires_at": e.old_expires_at,
                "new_expires_at": e.new_expires_at,
            },
        )
