"""What the catalog publishes: domain events mapped to wire events (contracts/events).

Every package and category event carries the entry's whole state as of that event, read
from the aggregate at the event's version, so a subscriber can keep its own copy of the
catalog from any one event. Code claims and the categories' bookkeeping of what they hold
stay inside the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.catalog.application import CatalogApplication
from services.catalog.domain import MajorCategory, MinorCategory, Package
from services.common.relay import WireEvent


def open_store() -> tuple[CatalogApplication, sa.Engine]:
    app = CatalogApplication()
    return app, app.engine


PACKAGE_EVENTS = {
    Package.Created: "package_created",
    Package.Changed: "package_changed",
    Package.Withdrawn: "package_withdrawn",
    Package.PutOnSale: "package_put_on_sale",
    Package.Deleted: "package_deleted",
}
MAJOR_EVENTS = {
    MajorCategory.Created: "major_category_created",
    MajorCategory.Changed: "major_category_changed",
    MajorCategory.Deleted: "major_category_deleted",
}
MINOR_EVENTS = {
    MinorCategory.Created: "minor_category_created",
    MinorCategory.Changed: "minor_category_changed",
    MinorCategory.Deleted: "minor_category_deleted",
}


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    kind = type(e)
    if kind not in PACKAGE_EVENTS and kind not in MAJOR_EVENTS and kind not in MINOR_EVENTS:
        return
    subject = str(e.originator_id)
    entry = app.repository.get(e.originator_id, version=e.originator_version)
    if kind in PACKAGE_EVENTS:
        yield WireEvent(
            PACKAGE_EVENTS[kind],
            subject,
            {"package_id": subject, **entry.state(), "on_sale": entry.on_sale},
        )
        return
    data = {"category_id": subject, "code": entry.code, "name": entry.name, "type": entry.type}
    if kind in MAJOR_EVENTS:
        yield WireEvent(MAJOR_EVENTS[kind], subject, data)
    else:
        yield WireEvent(
            MINOR_EVENTS[kind], subject, {**data, "major_category_id": entry.major_category_id}
        )
