"""The device registry: companies, devices, expiry, package bindings, renewals."""

from __future__ import annotations

import calendar
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.domain import event

from services.common.domain import Aggregate, stable_id

REGIONS = ("china", "other")


def add_months(moment: datetime, months: int) -> datetime:
    """Calendar months; a day past the target month's end clamps to its last day."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


class Company(Aggregate):
    def __init__(self, name: str, parent_id: str | None, region: str) -> None:
        self.name = name
        self.parent_id = parent_id
        self.region = region


class DeviceRefused(Exception):
    """A renewal line that cannot be carried out (the reason is the message)."""


class Device(Aggregate):
    """One device. Its id derives from the device id (IMEI), so ids are unique."""

    def __init__(self, imei: str, device_type: str, company_id: str, expires_at: datetime) -> None:
        self.imei = imei
        self.device_type = device_type
        self.company_id = company_id
        self.expires_at = expires_at
        self.suspended = False
        self.package_id: str | None = None
        self.expired_notice_for: datetime | None = None
        self.renewed_lines: list[str] = []

    @staticmethod
    def create_id(imei: str) -> UUID:
        return device_key(imei)

    def status(self, now: datetime) -> str:
        if self.suspended:
            return "suspended"
        return "expired" if self.expires_at <= now else "active"

    @event("PackageBound")
    def bind_package(self, package_id: str, previous_package_id: str | None) -> None:
        self.package_id = package_id

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
        """Extend from the later of the current expiry and the payment time."""
        if line_id in self.renewed_lines:
            return self.expires_at
        if self.suspended:
            raise DeviceRefused("the device is suspended")
        start = max(self.expires_at, paid_at)
        new = add_months(start, months)
        self._renewed(
            order_id=order_id,
            line_id=line_id,
            months=months,
            old_expires_at=self.expires_at,
            new_expires_at=new,
        )
        return new


def device_key(imei: str) -> UUID:
    return stable_id("device", imei.strip().upper())


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
