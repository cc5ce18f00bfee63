"""What the catalog publishes: domain events mapped to wire events (contracts/events)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.catalog.application import CatalogApplication
from services.catalog.domain import Package
from services.common.relay import WireEvent


def open_store() -> tuple[CatalogApplication, sa.Engine]:
    app = CatalogApplication()
    return app, app.engine


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    if isinstance(e, Package.Created):
        yield WireEvent(
            "package_created",
            str(e.originator_id),
            {
                "package_id": str(e.originator_id),
                "code": e.code,
                "name": e.name,
                "kind": e.kind,
                "pricing": e.pricing,
                "amount": e.amount,
                "currency": e.currency,
                "on_sale": True,
                "major_category_id": e.major_category_id,
                "minor_category_id": e.minor_category_id,
                "description": e.description,
            },
        )
