"""Catalog read views.

``metadata`` holds the views of the catalog's own events (dropped and replayed by a
rebuild). ``usage_metadata`` holds what the catalog learns from the devices service
(which device is bound to which package); it is fed by devices' events, not by the
catalog's log, so a rebuild leaves it alone.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from services.catalog.domain import MajorCategory, MinorCategory, Package
from services.common.projector import Projection
from services.common.views import Money, UTCDateTime

metadata = sa.MetaData()
major_categories = sa.Table(
    "major_categories",
    metadata,
    sa.Column("category_id", sa.String(64), primary_key=True),
    sa.Column("code", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)
minor_categories = sa.Table(
    "minor_categories",
    metadata,
    sa.Column("category_id", sa.String(64), primary_key=True),
    sa.Column("code", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(20), nullable=False),
    sa.Column("major_category_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)
packages = sa.Table(
    "packages",
    metadata,
    sa.Column("package_id", sa.String(64), primary_key=True),
    # uniqueness is the code claims' job (case-insensitive); a view never refuses a row
    sa.Column("code", sa.String(64), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("pricing", sa.String(20), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("on_sale", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("major_category_id", sa.String(64), index=True),
    sa.Column("minor_category_id", sa.String(64), index=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

usage_metadata = sa.MetaData()
package_bindings = sa.Table(
    "package_bindings",
    usage_metadata,
    sa.Column("device_id", sa.String(64), primary_key=True),
    # "renewal" for the device's renewal package, "value_added:<binding id>" otherwise
    sa.Column("slot", sa.String(100), primary_key=True),
    sa.Column("package_id", sa.String(64), nullable=True, index=True),  # None: unbound
    sa.Column("company_id", sa.String(64), nullable=True),
    sa.Column("sequence", sa.BigInteger, nullable=False),
)

projection = Projection("catalog.views", metadata)


# -- categories -----------------------------------------------------------------------
@projection.on(MajorCategory.Created)
def major_created(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        major_categories.insert().values(
            category_id=str(e.originator_id),
            code=e.code,
            name=e.name,
            type=e.type,
            created_at=e.timestamp,
            changed_at=e.timestamp,
        )
    )


@projection.on(MajorCategory.Changed)
def major_changed(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        major_categories.update()
        .where(major_categories.c.category_id == str(e.originator_id))
        .values(code=e.code, name=e.name, type=e.type, changed_at=e.timestamp)
    )


@projection.on(MajorCategory.Deleted)
def major_deleted(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        major_categories.delete().where(major_categories.c.category_id == str(e.originator_id))
    )


@projection.on(MinorCategory.Created)
def minor_created(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        minor_categories.insert().values(
            category_id=str(e.originator_id),
            code=e.code,
            name=e.name,
            type=e.type,
            major_category_id=e.major_category_id,
            created_at=e.timestamp,
            changed_at=e.timestamp,
        )
    )


@projection.on(MinorCategory.Changed)
def minor_changed(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        minor_categories.update()
        .where(minor_categories.c.category_id == str(e.originator_id))
        .values(
            code=e.code,
            name=e.name,
            type=e.type,
            major_category_id=e.major_category_id,
            changed_at=e.timestamp,
        )
    )


@projection.on(MinorCategory.Deleted)
def minor_deleted(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        minor_categories.delete().where(minor_categories.c.category_id == str(e.originator_id))
    )


# -- packages -------------------------------------------------------------------------
@projection.on(Package.Created)
def package_created(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        packages.insert().values(
            package_id=str(e.originator_id),
            code=e.code,
            name=e.name,
            kind=e.kind,
            pricing=e.pricing,
            amount=e.amount,
            currency=e.currency,
            on_sale=True,
            description=e.description,
            major_category_id=e.major_category_id,
            minor_category_id=e.minor_category_id,
            created_at=e.timestamp,
            changed_at=e.timestamp,
        )
    )


@projection.on(Package.Changed)
def package_changed(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        packages.update()
        .where(packages.c.package_id == str(e.originator_id))
        .values(
            code=e.code,
            name=e.name,
            kind=e.kind,
            pricing=e.pricing,
            amount=e.amount,
            currency=e.currency,
            description=e.description,
            major_category_id=e.major_category_id,
            minor_category_id=e.minor_category_id,
            changed_at=e.timestamp,
        )
    )


@projection.on(Package.Withdrawn, Package.PutOnSale)
def package_sale_changed(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        packages.update()
        .where(packages.c.package_id == str(e.originator_id))
        .values(on_sale=isinstance(e, Package.PutOnSale), changed_at=e.timestamp)
    )


@projection.on(Package.Deleted)
def package_deleted(conn: sa.Connection, e: Any) -> None:
    conn.execute(packages.delete().where(packages.c.package_id == str(e.originator_id)))


# -- bindings (from the devices service) ----------------------------------------------
def record_binding(
    conn: sa.Connection,
    device_id: str,
    slot: str,
    package_id: str | None,
    company_id: str | None,
    sequence: int,
) -> bool:
    """Upsert one binding slot unless a later event for it was already applied.

    The devices service numbers each device's (or binding's) events; keeping that number
    on the row makes redelivered, duplicated and out-of-order messages change nothing.
    """
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = insert(package_bindings).values(
        device_id=device_id,
        slot=slot,
        package_id=package_id,
        company_id=company_id,
        sequence=sequence,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[package_bindings.c.device_id, package_bindings.c.slot],
        set_={
            "package_id": statement.excluded.package_id,
            "company_id": statement.excluded.company_id,
            "sequence": statement.excluded.sequence,
        },
        where=package_bindings.c.sequence < statement.excluded.sequence,
    )
    # a row comes back only when it was inserted or updated (rowcount is unreliable here)
    applied = conn.execute(statement.returning(package_bindings.c.sequence)).first()
    return applied is not None


def bound_devices_count() -> sa.ScalarSelect:
    """Per package row: how many devices have it bound (renewal or value-added)."""
    return (
        sa.select(sa.func.count(sa.distinct(package_bindings.c.device_id)))
        .where(package_bindings.c.package_id == packages.c.package_id)
        .correlate(packages)
        .scalar_subquery()
    )
