"""The devices service as a process, through the HTTP gateway, with its relay publishing
to RabbitMQ: every area end to end (C5, T1, T3, T4, S3), scope refusals that change
nothing, Excel up- and downloads, the events a downstream subscriber receives, and the
catalog learning which packages are bound."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests
from kombu import Connection, Exchange, Queue
from openpyxl import Workbook, load_workbook

from contracts.envelope import validate
from services.common.actor import SYSTEM
from tests.support.platform import Platform
from tests.support.processes import relay_run, wait_for

pytestmark = pytest.mark.integration

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
RUN = uuid.uuid4().hex[:4].upper()


@pytest.fixture(scope="module")
def platform(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    work = tmp_path_factory.mktemp("devices-gateway")
    with Platform(
        amqp_uri, work, services=("catalog", "devices"), env={"IOTB_EXPIRY_SCAN_SECONDS": "1"}
    ) as running:
        relay = relay_run("devices", running.env, work)
        try:
            yield running
        finally:
            relay.stop()


@pytest.fixture(scope="module")
def audit(platform: Platform) -> Iterator[tuple[Connection, Queue]]:
    """A downstream subscriber's queue: every devices event, as published."""
    with Connection(platform.amqp_uri) as conn:
        queue = Queue(
            f"audit-devices-{RUN}",
            exchange=Exchange("devices.events", type="topic", durable=True),
            routing_key="#",
            auto_delete=True,
        )
        queue(conn.channel()).declare()
        yield conn, queue


@pytest.fixture(scope="module")
def world(platform: Platform) -> dict:
    """dealer > customer A, customer B; users; a renewal and a value-added package."""
    with platform.rpc() as rpc:

        def company(name: str, parent: str | None) -> str:
            return rpc.devices.register_company(
                SYSTEM.to_rpc(), {"name": f"{name} {RUN}", "parent_id": parent, "region": "china"}
            )["company_id"]

        dealer = company("Dealer", None)
        a, b = company("Customer A", dealer), company("Customer B", dealer)
        packages = {
            kind: rpc.catalog.create_package(
                SYSTEM.to_rpc(),
                {
                    "code": f"{kind[:2].upper()}-{RUN}",
                    "name": f"{kind} package",
                    "kind": kind,
                    "pricing": "per_month",
                    "amount": "10.00",
                    "currency": "CNY",
                },
            )["package_id"]
            for kind in ("renewal", "value_added")
        }
    tokens = {
        "support": platform.login(f"support-{RUN}", role="support", company_id=dealer),
        "sales": platform.login(f"sales-{RUN}", role="sales", company_id=dealer),
        "customer_a": platform.login(f"cust-a-{RUN}", role="customer", company_id=a),
        "customer_b": platform.login(f"cust-b-{RUN}", role="customer", company_id=b),
        "support_b": platform.login(f"support-b-{RUN}", role="support", company_id=b),
    }
    return {"dealer": dealer, "a": a, "b": b, "packages": packages, "tokens": tokens}


_serial = iter(range(1, 10**6))


def _device(platform: Platform, world: dict, company: str, days: int = 100, **extra) -> str:
    status, body = platform.http(
        "POST",
        "/devices",
        token=world["tokens"]["support"],
        body={
            "device_id": f"35{RUN}{next(_serial):08d}",
            "device_type": "GT06 tracker",
            "company_id": world[company],
            "expires_at": (datetime.now(UTC) + timedelta(days=days)).isoformat(),
            **extra,
        },
    )
    assert status == 201, body
    return body["device_id"]


def _get(platform: Platform, world: dict, who: str, path: str, **query) -> tuple[int, dict]:
    return platform.http("GET", path, token=world["tokens"][who], query=query or None)


def _upload(platform: Platform, token: str, content: bytes, multipart: bool = False, **query):
    headers = {"Authorization": f"Bearer {token}"}
    url = platform.base_url + "/expiry-imports"
    if multipart:
        answer = requests.post(
            url,
            headers=headers,
            params=query,
            files={"file": ("mine.xlsx", content, XLSX)},
            timeout=60,
        )
    else:
        answer = requests.post(
            url, headers={**headers, "Content-Type": XLSX}, params=query, data=content, timeout=60
        )
    return answer.status_code, answer.json()


def _workbook(rows: list[list]) -> bytes:
    book = Workbook()
    book.active.append(["device_id", "expires_at", "reason"])
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_devices_are_listed_and_found_within_scope_only(platform: Platform, world: dict) -> None:
    mine = _device(platform, world, "a")
    theirs = _device(platform, world, "b")
    status, page = _get(platform, world, "customer_a", "/devices")
    assert status == 200 and {d["device_id"] for d in page["items"]} >= {mine}
    assert theirs not in {d["device_id"] for d in page["items"]}
    assert _get(platform, world, "customer_a", f"/devices/{theirs}")[0] == 404
    status, error = _get(platform, world, "customer_a", "/devices", company_id=world["b"])
    assert (status, error["error"]["code"]) == (403, "FORBIDDEN")
    status, companies = _get(platform, world, "support", "/companies", whole_subtree="true")
    assert {c["company_id"] for c in companies} == {world["dealer"], world["a"], world["b"]}


def test_an_expiry_change_and_its_history(platform: Platform, world: dict) -> None:
    device_id = _device(platform, world, "a")
    new = "2027-06-30T00:00:00+00:00"
    status, body = platform.http(
        "PUT",
        f"/devices/{device_id}/expiry",
        token=world["tokens"]["support"],
        body={"expires_at": new, "reason": "goodwill"},
    )
    assert (status, body["expires_at"]) == (200, new)
    status, history = _get(platform, world, "customer_a", f"/devices/{device_id}/expiry-history")
    assert status == 200
    assert [(h["new_expires_at"], h["reason"], h["source"]) for h in history] == [
        (new, "goodwill", "manual")
    ]
    # another company's support: not found, and nothing changed
    status, _ = platform.http(
        "PUT",
        f"/devices/{device_id}/expiry",
        token=world["tokens"]["support_b"],
        body={"expires_at": "2030-01-01T00:00:00+00:00", "reason": "x"},
    )
    assert status == 404
    assert _get(platform, world, "support", f"/devices/{device_id}")[1]["expires_at"] == new
    # a customer may not maintain expiry dates; a malformed body is a 400
    status, _ = platform.http(
        "PUT",
        f"/devices/{device_id}/expiry",
        token=world["tokens"]["customer_a"],
        body={"expires_at": new, "reason": "x"},
    )
    assert status == 403
    status, error = platform.http(
        "PUT",
        f"/devices/{device_id}/expiry",
        token=world["tokens"]["support"],
        body={"reason": "x"},
    )
    assert (status, list(error["error"]["fields"])) == (400, ["expires_at"])


def test_the_expiry_template_and_a_bulk_upload(platform: Platform, world: dict) -> None:
    token = world["tokens"]["sales"]
    answer = requests.get(
        platform.base_url + "/expiry-imports/template",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith(XLSX)
    assert answer.headers["Content-Disposition"] == (
        'attachment; filename="expiry-import-template.xlsx"'
    )
    assert load_workbook(io.BytesIO(answer.content)).sheetnames == ["expiry", "notes"]
    one, two = _device(platform, world, "a"), _device(platform, world, "a")
    good = _workbook([[one, datetime(2027, 9, 1), "contract"], [two, "2027-09-02", None]])
    status, checked = _upload(platform, token, good, dry_run="true")
    assert (status, checked["changed"], checked["import_id"]) == (200, 2, None)
    status, result = _upload(platform, token, good, multipart=True)
    assert (status, result["changed"], result["file_name"]) == (200, 2, "mine.xlsx")
    assert _get(platform, world, "sales", f"/devices/{two}")[1]["expires_at"] == (
        "2027-09-02T00:00:00+00:00"
    )
    # one bad row: nothing changes, every bad row is reported
    foreign = _device(platform, world, "b")
    bad = _workbook([[one, "2028-01-01", None], [foreign, "2028-01-01", None], [two, "soon", None]])
    status, error = _upload(platform, world["tokens"]["support_b"], bad)
    assert (status, error["error"]["code"]) == (422, "VALIDATION_FAILED")
    assert error["error"]["fields"] == {
        "rows.2.device_id": ["no such device in your company and its subsidiaries"],
        "rows.4.device_id": ["no such device in your company and its subsidiaries"],
        "rows.4.expires_at": ["not a date: use an Excel date or ISO text such as 2027-12-31"],
    }
    assert _get(platform, world, "sales", f"/devices/{one}")[1]["expires_at"].startswith(
        "2027-09-01"
    )
    status, error = _upload(platform, token, b"not a workbook")
    assert (status, error["error"]["fields"]["file"]) == (
        400,
        ["not an .xlsx workbook (save it as Excel Workbook .xlsx)"],
    )
    status, _ = _upload(platform, world["tokens"]["customer_a"], good)
    assert status == 403


def test_suspension_by_pasted_ids_all_or_nothing(platform: Platform, world: dict) -> None:
    one, two = _device(platform, world, "a"), _device(platform, world, "a")
    foreign = _device(platform, world, "b")
    token = world["tokens"]["customer_a"]
    status, error = platform.http(
        "POST", "/suspensions", token=token, body={"text": f"{one}\n{foreign}, {two}"}
    )
    assert (status, error["error"]["fields"]["device_ids"]) == (
        403,
        [f"{foreign}: outside your company and its subsidiaries"],
    )
    assert _get(platform, world, "customer_a", f"/devices/{one}")[1]["status"] == "active"
    status, done = platform.http(
        "POST", "/suspensions", token=token, body={"text": f"{one}\n{two}", "reason": "sold"}
    )
    assert (status, sorted(done["suspended"])) == (200, sorted([one, two]))
    status, page = _get(platform, world, "customer_a", "/suspended-devices")
    assert {d["device_id"] for d in page["items"]} >= {one, two}
    status, done = platform.http("POST", f"/devices/{one}/reenable", token=token, body={})
    assert (status, done["reenabled"]) == (200, [one])
    status, done = platform.http("POST", "/reenablements", token=token, body={"device_ids": [two]})
    assert (status, done["reenabled"]) == (200, [two])


def test_bindings_reach_the_catalog_and_the_export(platform: Platform, world: dict) -> None:
    renewal, value_added = world["packages"]["renewal"], world["packages"]["value_added"]
    token = world["tokens"]["support"]
    device_id = _device(platform, world, "a", device_type="DC-200 dashcam")
    status, _ = platform.http(
        "POST",
        "/renewal-bindings",
        token=world["tokens"]["customer_a"],
        body={"package_id": renewal, "device_ids": [device_id]},
    )
    assert status == 403
    status, bound = platform.http(
        "POST",
        "/renewal-bindings",
        token=token,
        body={"package_id": renewal, "company_id": world["a"], "device_type": "DC-200 dashcam"},
    )
    assert (status, bound["bound"]) == (200, [device_id])
    later = _device(platform, world, "a", device_type="DC-200 dashcam")
    assert _get(platform, world, "support", f"/devices/{later}")[1]["package_id"] == renewal
    status, added = platform.http(
        "POST",
        "/value-added-bindings",
        token=token,
        body={"package_id": value_added, "device_ids": [device_id]},
    )
    assert status == 200, added
    binding_id = added["bindings"][0]["binding_id"]
    status, page = _get(
        platform, world, "customer_a", "/value-added-bindings", package_id=value_added
    )
    assert [i["binding_id"] for i in page["items"]] == [binding_id]
    with platform.rpc() as rpc:
        wait_for(
            lambda: (
                rpc.catalog.get_package(SYSTEM.to_rpc(), renewal)["bound_devices"] == 2
                and rpc.catalog.get_package(SYSTEM.to_rpc(), value_added)["bound_devices"] == 1
            ),
            timeout=30,
            what="the package_bound and value_added_bound events to reach the catalog",
        )
    answer = requests.get(
        platform.base_url + "/renewal-bindings/export",
        headers={"Authorization": f"Bearer {token}"},
        params={"company_id": world["a"], "bound": "true"},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Disposition"].startswith(
        'attachment; filename="renewal-bindings-'
    )
    rows = list(load_workbook(io.BytesIO(answer.content)).active.iter_rows(values_only=True))
    assert sorted(r[0] for r in rows[1:]) == sorted([device_id, later])
    status, removed = platform.http(
        "POST", "/value-added-bindings/remove", token=token, body={"binding_ids": [binding_id]}
    )
    assert (status, removed["removed"]) == (200, [binding_id])
    status, unbound = platform.http(
        "POST", "/renewal-bindings/unbind", token=token, body={"device_ids": [device_id]}
    )
    assert (status, unbound["unbound"]) == (200, [device_id])


def test_a_subscriber_receives_valid_device_events(
    platform: Platform, world: dict, audit: tuple[Connection, Queue]
) -> None:
    conn, queue = audit
    device_id = _device(platform, world, "a")
    token = world["tokens"]["customer_a"]
    platform.http("POST", f"/devices/{device_id}/suspend", token=token, body={"reason": "lost"})
    platform.http("POST", f"/devices/{device_id}/reenable", token=token, body={})
    received: list[dict] = []

    def drain() -> bool:
        with conn.channel() as channel:
            while (message := queue(channel).get(no_ack=True)) is not None:
                received.append(json.loads(message.body))
        return {"device_registered", "device_suspended", "device_reenabled"} <= {
            e["type"] for e in received if e["subject"] == device_id
        }

    wait_for(drain, timeout=30, what="the device's events on devices.events")
    mine = [e for e in received if e["subject"] == device_id]
    assert all(validate(e) == {} for e in received)
    suspended = next(e for e in mine if e["type"] == "device_suspended")
    assert suspended["data"] == {"device_id": device_id, "company_id": world["a"], "reason": "lost"}
    assert [e["sequence"] for e in mine] == sorted(e["sequence"] for e in mine)


def _order_paid(order_id: str, device_id: str, company_id: str) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "order_paid",
        "version": 1,
        "source": "billing",
        "subject": order_id,
        "sequence": 3,
        "time": datetime.now(UTC).isoformat(),
        "correlation_id": None,
        "causation_id": None,
        "data": {
            "order_id": order_id,
            "order_number": f"R-{order_id[:8]}",
            "company_id": company_id,
            "order_type": "renewal",
            "currency": "CNY",
            "total": "10.00",
            "method": "balance",
            "paid_at": datetime.now(UTC).isoformat(),
            "lines": [
                {
                    "line_id": f"{order_id}-1",
                    "device_id": device_id,
                    "package_id": "RN-1",
                    "package_name": "renewal",
                    "months": 12,
                    "unit_price": "10.00",
                    "amount": "10.00",
                }
            ],
        },
    }


def test_a_paid_order_delivered_twice_renews_once(
    platform: Platform, world: dict, audit: tuple[Connection, Queue]
) -> None:
    conn, queue = audit
    device_id = _device(platform, world, "a", days=30)
    shown = _get(platform, world, "support", f"/devices/{device_id}")[1]
    before = datetime.fromisoformat(shown["expires_at"])
    paid = _order_paid(str(uuid.uuid4()), device_id, world["a"])
    again = {**paid, "id": str(uuid.uuid4())}  # billing published the same order twice
    platform.publish("billing", [paid, paid, again])  # and RabbitMQ redelivered one
    # a later order: once it is applied, the duplicates before it have been taken
    sentinel = _order_paid(str(uuid.uuid4()), _device(platform, world, "a"), world["a"])
    platform.publish("billing", [sentinel])
    received: list[dict] = []

    def applied() -> bool:
        with conn.channel() as channel:
            while (message := queue(channel).get(no_ack=True)) is not None:
                received.append(json.loads(message.body))
        done = {e["subject"] for e in received if e["type"] == "renewal_applied"}
        return {paid["data"]["order_id"], sentinel["data"]["order_id"]} <= done

    wait_for(applied, timeout=30, what="renewal_applied for both orders")
    expected = before.replace(year=before.year + 1).isoformat()
    assert _get(platform, world, "support", f"/devices/{device_id}")[1]["expires_at"] == expected
    renewed = [e for e in received if e["type"] == "device_renewed" and e["subject"] == device_id]
    assert [e["data"]["new_expires_at"] for e in renewed] == [expected]
    applied_once = [
        e for e in received if e["type"] == "renewal_applied" and e["subject"] == paid["subject"]
    ]
    assert len(applied_once) == 1 and applied_once[0]["data"]["lines"][0]["outcome"] == "renewed"
    history = _get(platform, world, "support", f"/devices/{device_id}/expiry-history")[1]
    assert [h["source"] for h in history] == ["renewal"]


def test_two_replicas_publish_each_expiry_once(
    platform: Platform, world: dict, audit: tuple[Connection, Queue]
) -> None:
    """A second devices process runs the same expiry timer on the same store."""
    from services.devices.application import DevicesApplication
    from services.devices.domain import device_key
    from tests.support.processes import nameko_run

    second = nameko_run(
        "devices-2",
        "services.devices.service:DevicesService",
        platform.work_dir / "nameko.yaml",
        platform.env,
        platform.work_dir,
    )
    app = DevicesApplication(config=platform.store("devices"))
    try:
        due = [_device(platform, world, "a", days=-1) for _ in range(12)]

        def notices(device_id: str) -> int:
            return [type(e).__name__ for e in app.events.get(device_key(device_id))].count(
                "Expired"
            )

        wait_for(
            lambda: all(notices(d) >= 1 for d in due), timeout=60, what="every device's expiry"
        )
        # more scans of both replicas: a later device expires too, the first ones stay once
        late = _device(platform, world, "a", days=-1)
        wait_for(lambda: notices(late) >= 1, timeout=60, what="the later device's expiry")
        assert second.alive(), second.tail()
        assert {d: notices(d) for d in due} == {d: 1 for d in due}
    finally:
        app.close()
        second.stop()
