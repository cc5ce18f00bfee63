"""Devices benchmarks (``make bench``): a 100,000-row S3 expiry import end to end against
openpyxl's own read-only read of the same file, and a C5 batch suspension of 10,000 devices.

Targets on this machine: import <= 3x the plain read with peak memory under 400 MB; batch
suspension under 10 s. The figures are printed; the targets are asserted.
"""

from __future__ import annotations

import io
import multiprocessing
import resource
import time
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import Workbook, load_workbook

from services.common.actor import SYSTEM, Actor
from services.common.config import StoreConfig
from services.common.domain import event_meta
from services.devices.application import DevicesApplication
from services.devices.domain import Device
from tests.conftest import new_pg_store

pytestmark = [pytest.mark.bench, pytest.mark.integration]

ROWS = 100_000
SUSPEND = 10_000
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _register(app: DevicesApplication, company_id: str, count: int, prefix: str) -> list[str]:
    ids = []
    for start in range(0, count, 5000):
        with event_meta(actor="bench"):
            batch = [
                Device(
                    imei=f"{prefix}{n:09d}",
                    device_type="GT06 tracker",
                    company_id=company_id,
                    expires_at=T0 + timedelta(days=n % 365),
                )
                for n in range(start, min(start + 5000, count))
            ]
        app.save(*batch)
        ids += [d.imei for d in batch]
    return ids


def _expiry_file(device_ids: list[str]) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("expiry")
    sheet.append(["device_id", "expires_at", "reason"])
    for n, device_id in enumerate(device_ids):
        sheet.append([device_id, datetime(2027, 1, 1) + timedelta(days=n % 700), "contract 2027"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _plain_read(content: bytes) -> float:
    started = time.perf_counter()
    book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    rows = sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows == ROWS + 1
    return time.perf_counter() - started


def _import_in_a_fresh_process(config: StoreConfig, actor: Actor, content: bytes, out) -> None:
    """The import alone in its own process, so its peak memory is its own."""
    app = DevicesApplication(config=config)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = app.import_expiry(actor, "bench.xlsx", content)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    app.close()
    out.send((seconds, base, peak, result["changed"]))


def test_a_100k_row_expiry_import_against_a_plain_read() -> None:
    config = new_pg_store("devices")
    app = DevicesApplication(config=config)
    try:
        company_id = app.register_company(
            SYSTEM, {"name": "Bench fleet", "parent_id": None, "region": "china"}
        )["company_id"]
        started = time.perf_counter()
        ids = _register(app, company_id, ROWS, "86B")
        print(f"\n[devices] registered {ROWS} devices in {time.perf_counter() - started:.1f} s")
        content = _expiry_file(ids)
        print(f"[devices] expiry file: {ROWS} rows, {len(content) / 1e6:.1f} MB")
        plain = min(_plain_read(content) for _ in range(2))
        sales = Actor("u-sales", "sales", "sales", company_id)
        receive, send = multiprocessing.get_context("spawn").Pipe(duplex=False)
        child = multiprocessing.get_context("spawn").Process(
            target=_import_in_a_fresh_process, args=(config, sales, content, send)
        )
        child.start()
        seconds, base, peak, changed = receive.recv()
        child.join(120)
        print(f"[devices] openpyxl read-only read: {plain:.2f} s")
        print(
            f"[devices] S3 import end to end: {seconds:.2f} s = {seconds / plain:.2f}x the read"
            f" (target <= 3x); {changed} devices changed"
        )
        print(
            f"[devices] import process peak RSS {peak:.0f} MB (at start {base:.0f} MB; target < 400)"
        )
        assert changed == ROWS
        app.catch_up()
        sample = app.device(SYSTEM, ids[-1])
        assert sample["expires_at"] == datetime(2027, 1, 1, tzinfo=UTC) + timedelta(
            days=(ROWS - 1) % 700
        )
        assert seconds <= 3 * plain
        assert peak < 400
    finally:
        app.close()


def test_a_batch_suspension_of_10k_devices() -> None:
    app = DevicesApplication(config=new_pg_store("devices"))
    try:
        company_id = app.register_company(
            SYSTEM, {"name": "Bench fleet", "parent_id": None, "region": "china"}
        )["company_id"]
        ids = _register(app, company_id, SUSPEND, "86S")
        customer = Actor("u-customer", "customer", "customer", company_id)
        started = time.perf_counter()
        result = app.suspend(customer, ids, "bench")
        seconds = time.perf_counter() - started
        print(
            f"\n[devices] C5 batch suspension of {SUSPEND} devices: {seconds:.2f} s (target < 10)"
        )
        assert len(result["suspended"]) == SUSPEND
        assert app.list_devices(customer, {"status": "suspended"})["total"] == SUSPEND
        assert seconds < 10
    finally:
        app.close()
