"""The device registry: companies, devices and who owns which device until when.

A device has an owner (company), an expiry, a status (active, expired, suspended), maybe a
bound renewal package and value-added packages with expiries of their own. Every change is
an event on the device; the events downstream systems subscribe to are made from these.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

REGIONS = ("china", "other")
STATUSES = ("active", "expired", "suspended")
EXPIRY_SOURCES = ("manual", "bulk_import")
# an expiry outside these bounds is a typing error (a year 20027, a serial number pasted)
EARLIEST_EXPIRY = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EXPIRY = datetime(2100, 1, 1, tzinfo=UTC)


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; a day past the target month's end clamps to its last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def expiry_problem(moment: datetime) -> str | None:
    """Why ``moment`` cannot be an expiry, or None."""
    if moment.tzinfo is None:
        return "must carry a time zone (UTC)"
    if not EARLIEST_EXPIRY <= moment < LATEST_EXPIRY:
        return f"must lie between {EARLIEST_EXPIRY:%Y-%m-%d} and {LATEST_EXPIRY:%Y-%m-%d}"
    return None


class DeviceRefused(Exception):
    """A change the device's rules do not allow (the reason is the message)."""


class Company(Aggregate):
    def __init__(self, name: str, parent_id: str | None, region: str) -> None:
        self.name = name
        self.parent_id = parent_id
        self.region = region


class Device(Aggregate):
    """One device. Its id derives from the device id (IMEI), so device ids are unique."""

    def __init__(self, imei: str, device_type: str, company_id: str, expires_at: datetime) -> None:
        self.imei = imei
        self.device_type = device_type
        self.company_id = company_id
        self.expires_at = expires_at
        self.suspended = False
        self.package_id: str | None = None
        self.value_added: dict[str, dict] = {}  # binding id -> package_id, expires_at
        self.expired_notice_for: datetime | None = None
        self.expiring_notice_for: datetime | None = None
        self.renewed_lines: list[str] = []

    @staticmethod
    def create_id(imei: str) -> UUID:
        return device_key(imei)

    def status(self, now: datetime) -> str:
        if self.suspended:
            return "suspended"
        return "expired" if self.expires_at <= now else "active"

    # -- T1 / S3: expiry maintenance -------------------------------------------------------
    @event("ExpiryChanged")
    def _expiry_changed(
        self,
        old_expires_at: datetime,
        new_expires_at: datetime,
        reason: str,
        source: str,
        import_id: str | None = None,
    ) -> None:
        self.expires_at = new_expires_at

    def change_expiry(self, expires_at: datetime, reason: str, source: str = "manual") -> bool:
        """Set the expiry by hand (kept in the history with the reason); False if unchanged."""
        problem = expiry_problem(expires_at)
        if problem:
            raise DeviceRefused(f"the expiry {problem}")
        if not reason.strip():
            raise DeviceRefused("a reason is required")
        if expires_at == self.expires_at:
            return False
        self._expiry_changed(
            old_expires_at=self.expires_at,
            new_expires_at=expires_at,
            reason=reason.strip(),
            source=source,
        )
        return True

    @classmethod
    def imported_expiry(
        cls,
        key: UUID,
        version: int,
        old_expires_at: datetime,
        new_expires_at: datetime,
        reason: str,
        import_id: str,
        meta: dict | None = None,
    ) -> Aggregate.Event:
        """The expiry change of one row of a bulk import, made without loading the device.

        An import touches up to 100,000 devices; loading each is one round trip. The only
        rule is a valid expiry (checked by the import), and ``version`` is the device's
        version as the import saw it: if the device changed since, the save collides.
        """
        problem = expiry_problem(new_expires_at)
        if problem:
            raise DeviceRefused(f"the expiry {problem}")
        return cls.ExpiryChanged(  # type: ignore[attr-defined]
            originator_id=key,
            originator_version=version + 1,
            timestamp=cls.Event.create_timestamp(),
            old_expires_at=old_expires_at,
            new_expires_at=new_expires_at,
            reason=reason,
            source="bulk_import",
            import_id=import_id,
            meta=meta,  # an import shares one (100,000 copies of a dict otherwise)
        )

    # -- C5: suspension --------------------------------------------------------------------
    @event("Suspended")
    def _suspended(self, reason: str | None) -> None:
        self.suspended = True

    def suspend(self, reason: str | None = None) -> bool:
        """Take the device out of renewals, reminders and auto-renewal; False if it was."""
        if self.suspended:
            return False
        self._suspended(reason=reason)
        return True

    @event("Reenabled")
    def _reenabled(self, reason: str | None) -> None:
        self.suspended = False

    def reenable(self, reason: str | None = None) -> bool:
        if not self.suspended:
            return False
        self._reenabled(reason=reason)
        return True

    # -- T3: renewal package ---------------------------------------------------------------
    @event("PackageBound")
    def _package_bound(
        self, package_id: str, previous_package_id: str | None, by_device_type: bool = False
    ) -> None:
        self.package_id = package_id

    def bind(self, package_id: str, by_device_type: bool = False) -> bool:
        if self.package_id == package_id:
            return False
        self._package_bound(
            package_id=package_id,
            previous_package_id=self.package_id,
            by_device_type=by_device_type,
        )
        return True

    @event("PackageUnbound")
    def _package_unbound(self, package_id: str) -> None:
        self.package_id = None

    def unbind(self) -> bool:
        if self.package_id is None:
            return False
        if self.value_added:
            # value-added packages ride on the renewal package (T4)
            raise DeviceRefused("remove its value-added packages first")
        self._package_unbound(package_id=self.package_id)
        return True

    # -- T4: value-added packages ----------------------------------------------------------
    @event("ValueAddedBound")
    def _value_added_bound(self, binding_id: str, package_id: str, expires_at: datetime) -> None:
        self.value_added[binding_id] = {"package_id": package_id, "expires_at": expires_at}

    def add_value_added(self, package_id: str, expires_at: datetime) -> tuple[str, bool]:
        """Bind a value-added package with its own expiry; (binding id, whether it is new)."""
        if self.package_id is None:
            raise DeviceRefused("bind a renewal package first")
        for binding_id, binding in self.value_added.items():
            if binding["package_id"] == package_id:
                return binding_id, False
        problem = expiry_problem(expires_at)
        if problem:
            raise DeviceRefused(f"the value-added expiry {problem}")
        binding_id = str(uuid5(self.id, f"value-added:{package_id}:{self.version}"))
        self._value_added_bound(binding_id=binding_id, package_id=package_id, expires_at=expires_at)
        return binding_id, True

    @event("ValueAddedUnbound")
    def _value_added_unbound(self, binding_id: str, package_id: str) -> None:
        del self.value_added[binding_id]

    def remove_value_added(self, binding_id: str) -> bool:
        binding = self.value_added.get(binding_id)
        if binding is None:
            return False
        self._value_added_unbound(binding_id=binding_id, package_id=binding["package_id"])
        return True

    # -- renewal (paid orders) -------------------------------------------------------------
    @event("Renewed")
    def _renewed(
        self,
        order_id: str,
        line_id: str,
        months: int,
        old_expires_at: datetime,
        new_expires_at: datetime,
    ) -> None:
        self.expires_at = new_expires_at
        self.renewed_lines.append(line_id)

    def renew(self, order_id: str, line_id: str, months: int, paid_at: datetime) -> datetime:
        """Extend from the later of the current expiry and the payment time (once a line)."""
        if line_id in self.renewed_lines:
            return self.expires_at
        if self.suspended:
            raise DeviceRefused("the device is suspended")
        new = add_months(max(self.expires_at, paid_at), months)
        self._renewed(
            order_id=order_id,
            line_id=line_id,
            months=months,
            old_expires_at=self.expires_at,
            new_expires_at=new,
        )
        return new

    @event("ValueAddedRenewed")
    def _value_added_renewed(
        self,
        binding_id: str,
        package_id: str,
        order_id: str,
        line_id: str,
        months: int,
        old_expires_at: datetime,
        new_expires_at: datetime,
    ) -> None:
        self.value_added[binding_id]["expires_at"] = new_expires_at
        self.renewed_lines.append(line_id)

    def renew_value_added(
        self, binding_id: str, order_id: str, line_id: str, months: int, paid_at: datetime
    ) -> tuple[datetime, datetime]:
        """Extend one value-added binding like a renewal; (old, new) expiry of the binding."""
        binding = self.value_added.get(binding_id)
        if line_id in self.renewed_lines:
            expires = binding["expires_at"] if binding else self.expires_at
            return expires, expires
        if self.suspended:
            raise DeviceRefused("the device is suspended")
        if binding is None:
            raise DeviceRefused("the value-added package is no longer bound to the device")
        old = binding["expires_at"]
        new = add_months(max(old, paid_at), months)
        self._value_added_renewed(
            binding_id=binding_id,
            package_id=binding["package_id"],
            order_id=order_id,
            line_id=line_id,
            months=months,
            old_expires_at=old,
            new_expires_at=new,
        )
        return old, new

    def value_added_binding(self, package_id: str) -> str | None:
        return next((b for b, v in self.value_added.items() if v["package_id"] == package_id), None)

    # -- the clock -------------------------------------------------------------------------
    def has_expired_notice(self) -> bool:
        return self.expired_notice_for == self.expires_at

    @event("Expired")
    def _expired(self, expires_at: datetime) -> None:
        self.expired_notice_for = expires_at

    def mark_expired(self, now: datetime) -> bool:
        """Record (once per expiry) that the device passed its expiry; False if nothing new."""
        if self.suspended or self.expires_at > now or self.has_expired_notice():
            return False
        self._expired(expires_at=self.expires_at)
        return True

    @event("Expiring")
    def _expiring(self, expires_at: datetime, days_before: int) -> None:
        self.expiring_notice_for = expires_at

    def mark_expiring(self, now: datetime, days_before: int) -> bool:
        """Record (once per expiry) that the expiry is ``days_before`` days away or less."""
        if self.suspended or self.expires_at <= now or self.expiring_notice_for == self.expires_at:
            return False
        if self.expires_at - timedelta(days=days_before) > now:
            return False
        self._expiring(expires_at=self.expires_at, days_before=days_before)
        return True


def device_key(imei: str) -> UUID:
    return stable_id("device", imei.strip().upper())


class TypeBinding(Aggregate):
    """T3: a renewal package for every device of a device type in a company; with
    ``follow_new`` the devices registered later of that type are bound too."""

    def __init__(
        self, company_id: str, device_type: str, package_id: str, follow_new: bool
    ) -> None:
        self.company_id = company_id
        self.device_type = device_type
        self.package_id = package_id
        self.follow_new = follow_new
        self.active = True

    @staticmethod
    def create_id(company_id: str, device_type: str) -> UUID:
        return stable_id("type-binding", f"{company_id}:{device_type}")

    @event("Changed")
    def change(self, package_id: str, follow_new: bool) -> None:
        self.package_id = package_id
        self.follow_new = follow_new
        self.active = True

    @event("Ended")
    def end(self) -> None:
        self.active = False


class ExpiryImport(Aggregate):
    """S3: one applied expiry file - who, when, and every row that changed a device.

    Rows are [device key, device id, company id, new device version, old expiry, new
    expiry, reason] (expiries as ISO text): the device list is updated from them in one
    statement instead of one per device event.
    """

    def __init__(self, file_name: str, total_rows: int, rows: list[list]) -> None:
        self.file_name = file_name
        self.total_rows = total_rows
        self.changed = len(rows)


class RenewalApplied(Aggregate):
    """The outcome of one paid order on the devices (one per order: its id derives from
    the order id, so an order is never applied twice)."""

    def __init__(
        self,
        order_id: str,
        order_number: str,
        company_id: str,
        currency: str,
        total: Decimal,
        paid_at: datetime,
        lines: list[dict],
    ) -> None:
        self.order_id = order_id
        self.lines = lines

    @staticmethod
    def create_id(order_id: str) -> UUID:
        return stable_id("renewal-applied", order_id)
