"""Billing benchmarks on PostgreSQL (``make bench``; printed figures, checked targets).

- ledger replay rate against a raw psycopg read of the same event rows, in the same run
  (target: replay >= 50% of the raw read rate);
- load time of an account with 100,000 events against a new account (target: <= 2x);
- the F2 export of 100,000 orders: peak memory against an export of 10,000 (bounded);
- renewals paid by balance per second through the gateway, 20 concurrent clients, with
  p50/p99 latency (the catalog, devices and billing services and the gateway running).
"""

from __future__ import annotations

import io
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from gateway.routes.billing import ORDER_COLUMNS, write_xlsx
from services.billing.application import ACCOUNT_SNAPSHOT_EVERY, BillingApplication
from services.billing.domain import Account, Order
from services.common.actor import SYSTEM, Actor
from services.common.config import StoreConfig
from tests.conftest import new_pg_store

pytestmark = pytest.mark.bench
D = Decimal
COMPANIES = 500
ORDERS = 100_000


def _say(line: str) -> None:
    print(f"\n[billing bench] {line}", flush=True)


@pytest.fixture(scope="module")
def ledger() -> Iterator[tuple[BillingApplication, StoreConfig]]:
    """A ledger of 100,000 paid renewal orders over 500 accounts (about 400,000 events),
    written in batches straight into the event store, then projected once."""
    store = new_pg_store("billing")
    app = BillingApplication(config=store)
    start = datetime(2030, 1, 1, tzinfo=UTC)
    started = time.perf_counter()
    accounts = {}
    batch: list = []
    for n in range(ORDERS):
        company = f"bench-{n % COMPANIES:04d}"
        account = accounts.get(company)
        if account is None:
            account = accounts[company] = Account(company_id=company)
            account.credit(
                currency="CNY", amount=D("1000000.00"), reason="recharge", reference="seed"
            )
        at = start + timedelta(seconds=n)
        order = Order(
            number=f"B{n:07d}",
            company_id=company,
            order_type="renewal",
            currency="CNY",
            lines=[
                {
                    "line_id": f"B{n:07d}-1",
                    "device_id": f"86{n:013d}",
                    "package_id": "pkg",
                    "package_name": "4G monthly",
                    "months": 1,
                    "unit_price": D("10.00"),
                    "amount": D("10.00"),
                }
            ],
            total=D("10.00"),
            created_by="bench",
            created_at=at,
        )
        order.confirm(at)
        order.pay("balance", at)
        account.debit(currency="CNY", amount=D("10.00"), reason="order", reference=str(order.id))
        batch += order.collect_events() + account.collect_events()
        if len(batch) >= 2000:  # one put of tens of thousands stalls psycopg's pipeline
            app.events.put(batch)
            batch = []
    app.events.put(batch)
    app.catch_up()
    events = app.recorder.max_notification_id()
    _say(f"wrote and projected {events} events in {time.perf_counter() - started:.1f}s")
    yield app, store
    app.close()


def test_replay_rate_against_a_raw_read_of_the_same_rows(ledger) -> None:
    app, store = ledger
    table = app.recorder.events_table_name

    def raw_read() -> tuple[int, float]:
        started = time.perf_counter()
        rows = 0
        with psycopg.connect(
            dbname=store.pg_dbname, host=store.pg_host, user=store.pg_user
        ) as conn:
            with conn.cursor(name="raw") as cursor:
                cursor.itersize = 5000
                cursor.execute(f"SELECT * FROM {table} ORDER BY notification_id")
                for _ in cursor:
                    rows += 1
        return rows, time.perf_counter() - started

    def replay() -> tuple[int, float]:
        started = time.perf_counter()
        replayed = app.rebuild_views()
        return replayed, time.perf_counter() - started

    # alternate and keep each one's best run: the machine is shared, noise only slows down
    raws, replays = [], []
    for _ in range(3):
        raws.append(raw_read())
        replays.append(replay())
    rows, raw_seconds = min(raws, key=lambda r: r[1])
    replayed, replay_seconds = min(replays, key=lambda r: r[1])
    raw_rate, replay_rate = rows / raw_seconds, replayed / replay_seconds
    _say(
        f"raw psycopg read: {raw_rate:,.0f} rows/s; replay of every billing view: "
        f"{replay_rate:,.0f} events/s ({replayed} events in {replay_seconds:.1f}s, "
        f"best of 3) = {replay_rate / raw_rate:.0%} of the raw read (target >= 50%)"
    )
    assert replayed == rows
    assert app.verify_views() == []
    assert replay_rate >= 0.5 * raw_rate


def test_a_long_lived_account_loads_like_a_new_one(ledger) -> None:
    app, _ = ledger
    old = Account(company_id="bench-long-lived")
    events = 0
    started = time.perf_counter()
    # 100,000 events plus the most a load can ever replay after the last snapshot
    target = 100_000 + ACCOUNT_SNAPSHOT_EVERY - 1
    while events < target:
        for _ in range(min(1000, target - events)):
            old.credit(currency="CNY", amount=D("1.00"), reason="recharge", reference="r")
            events += 1
        app.save(old)  # snapshots every ACCOUNT_SNAPSHOT_EVERY events
    _say(f"an account with {old.version} events written in {time.perf_counter() - started:.1f}s")
    new = Account(company_id="bench-new")
    new.credit(currency="CNY", amount=D("1.00"), reason="recharge", reference="r")
    app.save(new)

    def load_time(account_id: uuid.UUID) -> float:
        times = []
        for _ in range(200):
            started = time.perf_counter()
            app.repository.get(account_id)
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    load_time(old.id), load_time(new.id)  # warm up
    long_lived, fresh = load_time(old.id), load_time(new.id)
    _say(
        f"account load: {old.version} events {long_lived * 1000:.2f} ms, new account "
        f"{fresh * 1000:.2f} ms = {long_lived / fresh:.2f}x (target <= 2x)"
    )
    assert app.repository.get(old.id).balance("CNY") == D(target)
    assert long_lived <= 2 * fresh


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak restarts from now


def test_exporting_100000_orders_takes_bounded_memory(ledger) -> None:
    app, _ = ledger
    finance = SYSTEM

    def export(limit_rows: int) -> tuple[int, int, float]:
        _reset_peak_rss()
        before = _peak_rss_kib()
        started = time.perf_counter()
        seen = 0

        def pages() -> Iterator[list[dict]]:
            nonlocal seen
            after = None
            while seen < limit_rows:
                page = app.export_orders(finance, {}, after, limit=2000)
                items = page["items"][: limit_rows - seen]
                seen += len(items)
                # the gateway gets these rows as JSON text from the RPC
                yield [
                    {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()}
                    for r in items
                ]
                if (after := page["next"]) is None:
                    return

        out = io.BytesIO()
        rows = write_xlsx(out, "Orders", [], ORDER_COLUMNS, pages())
        return rows, _peak_rss_kib() - before, time.perf_counter() - started

    small_rows, small_growth, _ = export(10_000)
    rows, growth, seconds = export(ORDERS)
    _say(
        f"export of {rows} orders to .xlsx in {seconds:.1f}s; "
        f"peak RSS {_peak_rss_kib() / 1024:.0f} MiB, grew {growth / 1024:.1f} MiB during the "
        f"export (10,000 orders: {small_growth / 1024:.1f} MiB)"
    )
    assert (small_rows, rows) == (10_000, ORDERS)
    assert growth < max(4 * small_growth, 64 * 1024)  # ten times the rows, not ten times the memory


# -- through the gateway ----------------------------------------------------------------------
CLIENTS = 20
RENEWALS_PER_CLIENT = 15


@pytest.fixture(scope="module")
def platform(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory):
    from tests.support.platform import Platform
    from tests.support.processes import relay_run

    work = tmp_path_factory.mktemp("billing-bench")
    with Platform(
        amqp_uri, work, services=("catalog", "devices", "billing"), gateway=True
    ) as running:
        relay = relay_run("devices", running.env, work)  # billing learns the company tree
        try:
            yield running
        finally:
            relay.stop()


def _retry(fn, *args, deadline: float = 60.0):
    from services.common.errors import NotFound

    end = time.monotonic() + deadline
    while True:
        try:
            return fn(*args)
        except NotFound:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


def test_renewals_paid_by_balance_through_the_gateway(platform) -> None:
    system = SYSTEM.to_rpc()
    count = CLIENTS * RENEWALS_PER_CLIENT
    with platform.rpc(timeout=120) as rpc:
        company = rpc.devices.register_company(
            system, {"name": "Bench Fleet", "parent_id": None, "region": "china"}
        )["company_id"]
        package = rpc.catalog.create_package(
            system,
            {
                "code": f"BENCH-{uuid.uuid4().hex[:6].upper()}",
                "name": "4G monthly",
                "kind": "renewal",
                "pricing": "per_month",
                "amount": "10.00",
                "currency": "CNY",
            },
        )["package_id"]
        device_ids = []
        for n in range(count):
            device = rpc.devices.register_device(
                system,
                {
                    "device_id": f"8690{n:011d}",
                    "device_type": "GT06",
                    "company_id": company,
                    "expires_at": datetime.now(UTC).isoformat(),
                },
            )
            device_ids.append(device["device_id"])
        rpc.devices.bind_package(system, {"package_id": package, "device_ids": device_ids})
        sales = Actor("bench-sales", "bench-sales", "sales", company).to_rpc()
        finance = Actor("bench-finance", "bench-finance", "finance", company).to_rpc()
        filed = _retry(
            rpc.billing.file_offline_application,
            sales,
            {
                "company_id": company,
                "payer": "Bench",
                "currency": "CNY",
                "amount": f"{10 * count}.00",
                "reference_number": "BENCH-1",
                "submit": True,
            },
        )
        rpc.billing.review_offline_application(
            finance, filed["application_id"], {"decision": "approve", "opinion": "bench"}
        )
    token = platform.login("bench-customer", role="customer", company_id=company)
    latencies: list[float] = []
    lock = threading.Lock()

    def renew(device_id: str) -> None:
        started = time.perf_counter()
        status, order = platform.http(
            "POST", "/orders", token=token, body={"device_ids": [device_id], "months": 1}
        )
        assert status == 201, order
        path = f"/orders/{order['order_id']}"
        assert platform.http("POST", path + "/confirm", token=token)[0] == 200
        status, paid = platform.http("POST", path + "/pay", token=token, body={"method": "balance"})
        assert (status, paid["status"]) == (200, "paid"), paid
        with lock:
            latencies.append(time.perf_counter() - started)

    renew(device_ids[0])  # warm up
    latencies.clear()
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(renew, device_ids[1:]))
    seconds = time.perf_counter() - started
    latencies.sort()
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    _say(
        f"{len(latencies)} renewals (create, confirm, pay by balance) through the gateway "
        f"with {CLIENTS} clients: {len(latencies) / seconds:.1f} renewals/s, "
        f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms"
    )
    status, account = platform.http("GET", f"/accounts/{company}", token=token)
    assert status == 200
    assert {b["currency"]: b["balance"] for b in account["balances"]}["CNY"] == "0.00"
