"""What the payments service publishes (nothing yet: see domain.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

from services.common.relay import WireEvent
from services.payments.application import PaymentsApplication


def open_store() -> tuple[PaymentsApplication, sa.Engine]:
    app = PaymentsApplication()
    return app, app.engine


def to_wire(e: Any, app: Any) -> Iterator[WireEvent]:
    return iter(())
