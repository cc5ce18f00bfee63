"""What the devices service publishes (contracts/events/devices.py)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.common.relay import WireEvent
from services.devices.application import DevicesApplication
from services.devices.domain import Company, Device, ExpiryImport, RenewalApplied
from services.devices.projections import devices


def open_store() -> tuple[DevicesApplication, sa.Engine]:
    app = DevicesApplication()
    return app, app.engine


class _Identities:
    """Device key -> (device id, company): what every wire event names and most domain
    events do not repeat. Neither ever changes, so they are cached; a 100,000-row import
    primes the cache with its rows instead of 100,000 look-ups."""

    def __init__(self, size: int = 200_000) -> None:
        self.size = size
        self.known: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def remember(self, key: str, device_id: str, company_id: str) -> None:
        self.known[key] = (device_id, company_id)
        if len(self.known) > self.size:
            self.known.popitem(last=False)

    def of(self, app: Any, key: UUID) -> tuple[str, str]:
        found = self.known.get(str(key))
        if found is None:
            with app.engine.connect() as conn:
                row = conn.execute(
                    sa.select(devices.c.device_id, devices.c.company_id).where(
                        devices.c.device_key == str(key)
                    )
                ).first()
            if row is None:  # the view lags the log: ask the store
                device = app.repository.get(key)
                row = (device.imei, device.company_id)
            found = (row[0], row[1])
            self.remember(str(key), *found)
        return found


identities = _Identities()


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    subject = str(e.originator_id)
    if isinstance(e, Company.Created):
        yield WireEvent(
            "company_registered",
            subject,
            {"company_id": subject, "parent_id": e.parent_id, "name": e.name, "region": e.region},
        )
    elif isinstance(e, Device.Created):
        identities.remember(subject, e.imei, e.company_id)
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
    elif isinstance(e, ExpiryImport.Created):
        for key, device_id, company_id, *_ in e.rows:
            identities.remember(key, device_id, company_id)
    elif isinstance(e, Device.Event):
        device_id, company_id = identities.of(app, e.originator_id)
        wire = _device_event(e, app, {"device_id": device_id, "company_id": company_id})
        if wire is not None:
            yield WireEvent(wire[0], device_id, wire[1])
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


def _device_event(e: Any, app: Any, base: dict) -> tuple[str, dict] | None:
    if isinstance(e, Device.ExpiryChanged):
        return "device_expiry_changed", {
            **base,
            "old_expires_at": e.old_expires_at,
            "new_expires_at": e.new_expires_at,
            "reason": e.reason,
            "source": e.source,
        }
    if isinstance(e, Device.Expiring):
        return "device_expiring", {
            **base,
            "expires_at": e.expires_at,
            "days_before": e.days_before,
            "package_id": _package_at(e, app),
        }
    if isinstance(e, Device.Expired):
        return "device_expired", {
            **base,
            "expires_at": e.expires_at,
            "package_id": _package_at(e, app),
        }
    if isinstance(e, Device.Renewed):
        return "device_renewed", {
            **base,
            "order_id": e.order_id,
            "line_id": e.line_id,
            "months": e.months,
            "old_expires_at": e.old_expires_at,
            "new_expires_at": e.new_expires_at,
        }
    if isinstance(e, Device.Suspended):
        return "device_suspended", {**base, "reason": e.reason}
    if isinstance(e, Device.Reenabled):
        return "device_reenabled", {**base, "reason": e.reason}
    if isinstance(e, Device.PackageBound):
        return "package_bound", {
            **base,
            "package_id": e.package_id,
            "previous_package_id": e.previous_package_id,
            "by_device_type": e.by_device_type,
        }
    if isinstance(e, Device.PackageUnbound):
        return "package_unbound", {**base, "package_id": e.package_id}
    if isinstance(e, Device.ValueAddedBound):
        return "value_added_bound", {
            **base,
            "package_id": e.package_id,
            "binding_id": e.binding_id,
            "expires_at": e.expires_at,
        }
    if isinstance(e, Device.ValueAddedUnbound):
        return "value_added_unbound", {
            **base,
            "package_id": e.package_id,
            "binding_id": e.binding_id,
        }
    if isinstance(e, Device.ValueAddedRenewed):
        return "value_added_renewed", {
            **base,
            "package_id": e.package_id,
            "binding_id": e.binding_id,
            "order_id": e.order_id,
            "line_id": e.line_id,
            "months": e.months,
            "old_expires_at": e.old_expires_at,
            "new_expires_at": e.new_expires_at,
        }
    return None


def _package_at(e: Any, app: Any) -> str | None:
    """The renewal package bound when the notice was recorded (reminders quote it)."""
    return app.repository.get(e.originator_id, version=e.originator_version).package_id
