"""Catalog read views."""

from __future__ import annotations

import sqlalchemy as sa

from services.catalog.domain import Package
from services.common.projector import Projection
from services.common.views import Money, UTCDateTime

metadata = sa.MetaData()
packages = sa.Table(
    "packages",
    metadata,
    sa.Column("package_id", sa.String(64), primary_key=True),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("pricing", sa.String(20), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("on_sale", sa.Boolean, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("major_category_id", sa.String(64)),
    sa.Column("minor_category_id", sa.String(64)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

projection = Projection("catalog.views", metadata)


@projection.on(Package.Created)
def package_created(conn: sa.Connection, e: Package.Created) -> None:
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


@projection.on(Package.Withdrawn)
def package_withdrawn(conn: sa.Connection, e: Package.Withdrawn) -> None:
    conn.execute(
        packages.update()
        .where(packages.c.package_id == str(e.originator_id))
        .values(on_sale=False, changed_at=e.timestamp)
    )
