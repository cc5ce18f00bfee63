"""Devices read views: the company tree and the device list."""

from __future__ import annotations

import sqlalchemy as sa

from services.common.projector import Projection
from services.common.scope import company_scope, upsert_company
from services.common.views import UTCDateTime
from services.devices.domain import Company, Device

metadata = sa.MetaData()
company_scope.to_metadata(metadata)  # here the company tree is this service's own view
devices = sa.Table(
    "devices",
    metadata,
    sa.Column("device_key", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False, unique=True),
    sa.Column("device_type", sa.String(100), nullable=False, index=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, nullable=False, index=True),
    sa.Column("suspended", sa.Boolean, nullable=False),
    sa.Column("package_id", sa.String(64)),
    sa.Column("expired_notice_for", UTCDateTime),
    sa.Column("registered_at", UTCDateTime, nullable=False),
)

projection = Projection("devices.views", metadata)

__all__ = ["company_scope", "devices", "projection"]


@projection.on(Company.Created)
def company_created(conn: sa.Connection, e: Company.Created) -> None:
    upsert_company(conn, str(e.originator_id), e.parent_id, e.name, e.region, e.originator_version)


@projection.on(Device.Created)
def device_registered(conn: sa.Connection, e: Device.Created) -> None:
    conn.execute(
        devices.insert().values(
            device_key=str(e.originator_id),
            device_id=e.imei,
            device_type=e.device_type,
            company_id=e.company_id,
            expires_at=e.expires_at,
            suspended=False,
            package_id=None,
            registered_at=e.timestamp,
        )
    )


def _device(e: object) -> sa.Update:
    return devices.update().where(devices.c.device_key == str(e.originator_id))  # type: ignore[attr-defined]


@projection.on(Device.PackageBound)
def package_bound(conn: sa.Connection, e: Device.PackageBound) -> None:
    conn.execute(_device(e).values(package_id=e.package_id))


@projection.on(Device.Expired)
def device_expired(conn: sa.Connection, e: Device.Expired) -> None:
    conn.execute(_device(e).values(expired_notice_for=e.expires_at))


@projection.on(Device.Renewed)
def device_renewed(conn: sa.Connection, e: Device.Renewed) -> None:
    conn.execute(_device(e).values(expires_at=e.new_expires_at))
