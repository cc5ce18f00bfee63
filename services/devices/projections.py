"""Devices read views: the company tree, the device list, expiry history, value-added
bindings, device-type bindings and expiry imports.

Every device event moves the row's ``version`` to the event's: bulk work (S3 imports)
writes the next events from the view without loading each device, and a stale version
collides in the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.common.projector import Projection
from services.common.scope import company_scope, upsert_company
from services.common.views import UTCDateTime
from services.devices.domain import Company, Device, ExpiryImport, TypeBinding

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
    sa.Column("suspended_at", UTCDateTime),
    sa.Column("suspension_reason", sa.String(500)),
    sa.Column("package_id", sa.String(64), index=True),
    sa.Column("bound_by_device_type", sa.Boolean, nullable=False, default=False),
    sa.Column("value_added_count", sa.Integer, nullable=False, default=0),
    sa.Column("expired_notice_for", UTCDateTime),
    sa.Column("expiring_notice_for", UTCDateTime),
    sa.Column("registered_at", UTCDateTime, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
expiry_history = sa.Table(
    "expiry_history",
    metadata,
    sa.Column("entry_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("device_key", sa.String(64), nullable=False, index=True),
    sa.Column("changed_at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("old_expires_at", UTCDateTime, nullable=False),
    sa.Column("new_expires_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(500)),
    sa.Column("source", sa.String(20), nullable=False),  # manual, bulk_import, renewal
    sa.Column("reference", sa.String(100)),  # the import or the order
)
value_added = sa.Table(
    "value_added_bindings",
    metadata,
    sa.Column("binding_id", sa.String(64), primary_key=True),
    sa.Column("device_key", sa.String(64), nullable=False, index=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("package_id", sa.String(64), nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("bound_at", UTCDateTime, nullable=False),
)
type_bindings = sa.Table(
    "type_bindings",
    metadata,
    sa.Column("rule_id", sa.String(64), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("device_type", sa.String(100), nullable=False),
    sa.Column("package_id", sa.String(64), nullable=False),
    sa.Column("follow_new", sa.Boolean, nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)
expiry_imports = sa.Table(
    "expiry_imports",
    metadata,
    sa.Column("import_id", sa.String(64), primary_key=True),
    sa.Column("file_name", sa.String(300), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("imported_at", UTCDateTime, nullable=False),
    sa.Column("total_rows", sa.Integer, nullable=False),
    sa.Column("changed", sa.Integer, nullable=False),
)

projection = Projection("devices.views", metadata)
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

__all__ = [
    "company_scope",
    "devices",
    "expiry_history",
    "expiry_imports",
    "projection",
    "type_bindings",
    "value_added",
]


def _actor(e: Any) -> str | None:
    return (e.meta or {}).get("actor")


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
            bound_by_device_type=False,
            value_added_count=0,
            registered_at=e.timestamp,
            version=e.originator_version,
        )
    )


def _device(conn: sa.Connection, e: Any, **values: Any) -> None:
    conn.execute(
        devices.update()
        .where(devices.c.device_key == str(e.originator_id))
        .values(version=e.originator_version, **values)
    )


def _history(
    conn: sa.Connection,
    e: Any,
    old: datetime,
    new: datetime,
    reason: str | None,
    source: str,
    reference: str | None,
) -> None:
    conn.execute(
        expiry_history.insert().values(
            device_key=str(e.originator_id),
            changed_at=e.timestamp,
            actor=_actor(e),
            old_expires_at=old,
            new_expires_at=new,
            reason=reason,
            source=source,
            reference=reference,
        )
    )


@projection.on(Device.ExpiryChanged)
def expiry_changed(conn: sa.Connection, e: Any) -> None:
    if e.import_id:
        return  # applied with the whole import (expiry_imported)
    _device(conn, e, expires_at=e.new_expires_at)
    _history(conn, e, e.old_expires_at, e.new_expires_at, e.reason, e.source, None)


@projection.on(ExpiryImport.Created)
def expiry_imported(conn: sa.Connection, e: Any) -> None:
    """Apply every row of an import at once (one statement per table, not one per row)."""
    actor = _actor(e)
    reference = str(e.originator_id)
    if conn.dialect.name == "postgresql":
        # 100,000 rows: streamed with COPY into a scratch table, applied by two statements
        lines = "".join(
            f"{r[0]}\t{r[3]}\t{r[4]}\t{r[5]}\t{r[6].translate(_COPY_ESCAPES)}\n" for r in e.rows
        )
        with conn.connection.driver_connection.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE imported_rows (k text, v int, o timestamptz, n timestamptz,"
                " r text) ON COMMIT DROP"
            )
            with cur.copy("COPY imported_rows FROM STDIN") as copy:
                copy.write(lines)
            cur.execute(
                "UPDATE devices SET expires_at = i.n, version = i.v FROM imported_rows i"
                " WHERE devices.device_key = i.k"
            )
            cur.execute(
                "INSERT INTO expiry_history (device_key, changed_at, actor, old_expires_at,"
                " new_expires_at, reason, source, reference)"
                " SELECT k, %s, %s, o, n, r, 'bulk_import', %s FROM imported_rows",
                (e.timestamp, actor, reference),
            )
            cur.execute("DROP TABLE imported_rows")
    else:
        keys = [r[0] for r in e.rows]
        versions = [r[3] for r in e.rows]
        olds = [datetime.fromisoformat(r[4]) for r in e.rows]
        news = [datetime.fromisoformat(r[5]) for r in e.rows]
        reasons = [r[6] for r in e.rows]
        conn.execute(
            devices.update()
            .where(devices.c.device_key == sa.bindparam("k"))
            .values(expires_at=sa.bindparam("e", type_=UTCDateTime), version=sa.bindparam("v")),
            [{"k": k, "e": n, "v": v} for k, n, v in zip(keys, news, versions, strict=True)],
        )
        conn.execute(
            expiry_history.insert(),
            [
                {
                    "device_key": k,
                    "changed_at": e.timestamp,
                    "actor": actor,
                    "old_expires_at": o,
                    "new_expires_at": n,
                    "reason": r,
                    "source": "bulk_import",
                    "reference": reference,
                }
                for k, o, n, r in zip(keys, olds, news, reasons, strict=True)
            ],
        )
    conn.execute(
        expiry_imports.insert().values(
            import_id=reference,
            file_name=e.file_name,
            actor=actor,
            imported_at=e.timestamp,
            total_rows=e.total_rows,
            changed=len(e.rows),
        )
    )


@projection.on(Device.Renewed)
def device_renewed(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, expires_at=e.new_expires_at)
    _history(
        conn,
        e,
        e.old_expires_at,
        e.new_expires_at,
        f"{e.months} months paid",
        "renewal",
        e.order_id,
    )


@projection.on(Device.Suspended)
def device_suspended(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, suspended=True, suspended_at=e.timestamp, suspension_reason=e.reason)


@projection.on(Device.Reenabled)
def device_reenabled(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, suspended=False, suspended_at=None, suspension_reason=None)


@projection.on(Device.PackageBound)
def package_bound(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, package_id=e.package_id, bound_by_device_type=e.by_device_type)


@projection.on(Device.PackageUnbound)
def package_unbound(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, package_id=None, bound_by_device_type=False)


@projection.on(Device.ValueAddedBound)
def value_added_bound(conn: sa.Connection, e: Any) -> None:
    row = conn.execute(
        sa.select(devices.c.device_id, devices.c.company_id).where(
            devices.c.device_key == str(e.originator_id)
        )
    ).one()
    conn.execute(
        value_added.insert().values(
            binding_id=e.binding_id,
            device_key=str(e.originator_id),
            device_id=row.device_id,
            company_id=row.company_id,
            package_id=e.package_id,
            expires_at=e.expires_at,
            bound_at=e.timestamp,
        )
    )
    _device(conn, e, value_added_count=devices.c.value_added_count + 1)


@projection.on(Device.ValueAddedUnbound)
def value_added_unbound(conn: sa.Connection, e: Any) -> None:
    conn.execute(value_added.delete().where(value_added.c.binding_id == e.binding_id))
    _device(conn, e, value_added_count=devices.c.value_added_count - 1)


@projection.on(Device.ValueAddedRenewed)
def value_added_renewed(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        value_added.update()
        .where(value_added.c.binding_id == e.binding_id)
        .values(expires_at=e.new_expires_at)
    )
    _device(conn, e)


@projection.on(Device.Expired)
def device_expired(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, expired_notice_for=e.expires_at)


@projection.on(Device.Expiring)
def device_expiring(conn: sa.Connection, e: Any) -> None:
    _device(conn, e, expiring_notice_for=e.expires_at)


@projection.on(TypeBinding.Created, TypeBinding.Changed)
def type_binding_set(conn: sa.Connection, e: Any) -> None:
    rule_id = str(e.originator_id)
    values = {"package_id": e.package_id, "follow_new": e.follow_new, "active": True}
    if isinstance(e, TypeBinding.Created):
        conn.execute(
            type_bindings.insert().values(
                rule_id=rule_id,
                company_id=e.company_id,
                device_type=e.device_type,
                changed_at=e.timestamp,
                **values,
            )
        )
    else:
        conn.execute(
            type_bindings.update()
            .where(type_bindings.c.rule_id == rule_id)
            .values(changed_at=e.timestamp, **values)
        )


@projection.on(TypeBinding.Ended)
def type_binding_ended(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        type_bindings.update()
        .where(type_bindings.c.rule_id == str(e.originator_id))
        .values(active=False, changed_at=e.timestamp)
    )
