"""The devices service on the embedded SQLite store (what `make run` uses on one
machine): the bulk paths that take PostgreSQL shortcuts have plain fallbacks here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.common import clock
from services.common.actor import SYSTEM
from services.common.config import StoreConfig
from services.common.errors import ValidationFailed
from services.devices.application import DevicesApplication
from services.devices.domain import device_key
from tests.integration.test_devices import CATALOG, T0, Tree, _applied, _order
from tests.integration.test_devices_excel import workbook

pytestmark = pytest.mark.integration


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DevicesApplication]:
    monkeypatch.setattr(clock, "clock", clock.FixedClock(T0))
    config = StoreConfig(service="devices", kind="sqlite", sqlite_path=tmp_path / "devices.db")
    application = DevicesApplication(config=config)
    yield application
    application.close()


def test_the_whole_registry_works_on_sqlite(app: DevicesApplication) -> None:
    tree = Tree(app)
    devices = [tree.device(tree.a, days=n, device_type="GT06") for n in (-1, 3, 30)]
    # S3: a good file, then a bad one that changes nothing
    result = app.import_expiry(SYSTEM, "f.xlsx", workbook([[devices[2], "2027-01-01", "contract"]]))
    assert result["changed"] == 1
    assert app.expiry_history(SYSTEM, devices[2])[0]["source"] == "bulk_import"
    with pytest.raises(ValidationFailed):
        app.import_expiry(
            SYSTEM,
            "f.xlsx",
            workbook([[devices[1], "2027-01-01", None], ["NOPE1", "2027-01-01", None]]),
        )
    assert app.device(SYSTEM, devices[1])["expires_at"] == T0 + timedelta(days=3)
    # T3/T4, C5, the clock and a renewal
    app.bind_package(
        SYSTEM, {"package_id": "RN-1", "company_id": tree.a, "device_type": "GT06"}, CATALOG
    )
    app.add_value_added(SYSTEM, {"package_id": "VA-GPS", "device_ids": devices[:1]}, CATALOG)
    app.suspend(SYSTEM, devices[1:2])
    assert (app.remind_due(), app.expire_due()) == (0, 1)
    order = _order([(devices[0], 1)], T0)
    app.apply_paid_order(str(uuid.uuid4()), order)
    assert _applied(app, order)[0]["new_expires_at"] == datetime(2026, 4, 10, 8, 0, tzinfo=UTC)
    assert app.device(SYSTEM, devices[0])["value_added"][0]["package_id"] == "VA-GPS"
    assert len(app._load_devices([str(device_key(d)) for d in devices])) == 3
