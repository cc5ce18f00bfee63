"""The devices service's use cases on a real PostgreSQL store: the company tree, the
device list, expiry maintenance (T1), suspension (C5), renewal and value-added bindings
(T3, T4), the expiry clock and paid orders.

Every refusal is checked to change nothing. Bulk expiry files (S3) are in
test_devices_excel.py; the service over RabbitMQ and the gateway in test_devices_gateway.py.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.common import clock
from services.common.actor import SYSTEM, Actor
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.devices.application import DevicesApplication
from services.devices.domain import Device, device_key
from tests.conftest import new_pg_store

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
_serial = itertools.count(1)
RUN = uuid.uuid4().hex[:4].upper()


def new_id() -> str:
    return f"86{RUN}{next(_serial):09d}"


@pytest.fixture(scope="module")
def app() -> Iterator[DevicesApplication]:
    application = DevicesApplication(config=new_pg_store("devices"), expiring_days=7)
    yield application
    application.close()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> clock.FixedClock:
    fixed = clock.FixedClock(T0)
    monkeypatch.setattr(clock, "clock", fixed)
    return fixed


class Tree:
    """vendor > dealer > (customer A > subsidiary A1), (customer B); a user per role."""

    def __init__(self, app: DevicesApplication) -> None:
        self.app = app

        def company(name: str, parent: str | None, region: str = "china") -> str:
            return app.register_company(
                SYSTEM, {"name": f"{name} {RUN}", "parent_id": parent, "region": region}
            )["company_id"]

        self.vendor = company("Vendor", None)
        self.dealer = company("Dealer", self.vendor)
        self.a = company("Customer A", self.dealer)
        self.a1 = company("Subsidiary A1", self.a)
        self.b = company("Customer B", self.dealer, "other")

    def actor(self, role: str, company_id: str) -> Actor:
        return Actor(f"u-{role}-{company_id[:6]}", f"{role}@{company_id[:6]}", role, company_id)

    def device(
        self,
        company_id: str,
        days: float = 100,
        device_type: str = "GT06 tracker",
        device_id: str | None = None,
    ) -> str:
        return self.app.register_device(
            SYSTEM,
            {
                "device_id": device_id or new_id(),
                "device_type": device_type,
                "company_id": company_id,
                "expires_at": T0 + timedelta(days=days),
            },
        )["device_id"]


@pytest.fixture
def tree(app: DevicesApplication) -> Tree:
    return Tree(app)


def packages(kind_of: dict[str, str]):
    """A stand-in for the catalog's get_package (the catalog is another service)."""

    def lookup(package_id: str) -> dict:
        if package_id not in kind_of:
            raise NotFound(f"package {package_id} not found")
        return {"package_id": package_id, "kind": kind_of[package_id], "on_sale": True}

    return lookup


CATALOG = packages({"RN-1": "renewal", "RN-2": "renewal", "VA-GPS": "value_added"})


def state(app: DevicesApplication, *device_ids: str) -> list[tuple]:
    """What a refusal must leave alone: each device's version, expiry, status, package."""
    found = []
    for device_id in device_ids:
        device = app.repository.get(device_key(device_id))
        found.append((device.version, device.expires_at, device.suspended, device.package_id))
    return found


# -- company tree ---------------------------------------------------------------------------
def test_companies_list_direct_children_or_the_whole_subtree(app, tree: Tree) -> None:
    support = tree.actor("support", tree.dealer)
    direct = {c["company_id"] for c in app.list_companies(support, whole_subtree=False)}
    assert direct == {tree.dealer, tree.a, tree.b}
    whole = {c["company_id"] for c in app.list_companies(support, whole_subtree=True)}
    assert whole == {tree.dealer, tree.a, tree.a1, tree.b}
    under_a = {c["company_id"] for c in app.list_companies(support, False, parent_id=tree.a)}
    assert under_a == {tree.a, tree.a1}
    # a customer of A sees A and A1 only; the dealer above is out of reach
    customer = tree.actor("customer", tree.a)
    assert {c["company_id"] for c in app.list_companies(customer, True)} == {tree.a, tree.a1}
    with pytest.raises(Forbidden):
        app.list_companies(customer, False, parent_id=tree.dealer)
    with pytest.raises(Forbidden):
        app.company(customer, tree.b)


def test_a_company_is_registered_only_under_a_parent_in_scope(app, tree: Tree) -> None:
    admin_a = tree.actor("admin", tree.a)
    created = app.register_company(admin_a, {"name": "A2", "parent_id": tree.a, "region": "china"})
    assert created["parent_id"] == tree.a
    with pytest.raises(Forbidden):
        app.register_company(admin_a, {"name": "X", "parent_id": tree.b, "region": "china"})
    with pytest.raises(Forbidden):
        app.register_company(admin_a, {"name": "Root", "parent_id": None, "region": "china"})


# -- devices --------------------------------------------------------------------------------
def test_a_device_id_is_unique(app, tree: Tree) -> None:
    device_id = tree.device(tree.a)
    with pytest.raises(Conflict):
        tree.device(tree.b, device_id=device_id.lower())  # the same IMEI, in other letters


def test_the_device_list_filters_and_pages_within_scope(app, tree: Tree) -> None:
    expired = tree.device(tree.a, days=-3)
    soon = tree.device(tree.a, days=5, device_type="DC-200 dashcam")
    later = tree.device(tree.a1, days=300)
    other = tree.device(tree.b, days=5)
    app.bind_package(SYSTEM, {"package_id": "RN-1", "device_ids": [soon]}, CATALOG)
    app.suspend(SYSTEM, [later], "lost")
    support_a = tree.actor("support", tree.a)

    def ids(**filters) -> list[str]:
        page = app.list_devices(support_a, {"page": 1, "per_page": 50, **filters})
        return [d["device_id"] for d in page["items"]]

    assert ids() == [expired, soon, later]  # A and its subsidiary, by expiry; never B's
    assert ids(company_id=tree.a) == [expired, soon]
    assert ids(company_id=tree.a, include_subsidiaries=True) == [expired, soon, later]
    assert ids(status="expired") == [expired]
    assert ids(status="active") == [soon]
    assert ids(status="suspended") == [later]
    assert ids(device_type="DC-200 dashcam") == [soon]
    assert ids(bound=True) == [soon]
    assert ids(bound=False) == [expired, later]
    assert ids(expires_from=T0, expires_to=T0 + timedelta(days=10)) == [soon]
    assert ids(expires_within_days=10) == [expired, soon]
    assert ids(q=soon[-6:].lower()) == [soon]
    page = app.list_devices(support_a, {"page": 2, "per_page": 2})
    assert (page["total"], [d["device_id"] for d in page["items"]]) == (3, [later])
    with pytest.raises(Forbidden):
        app.list_devices(support_a, {"company_id": tree.b})
    # another company's device is not found, as if it did not exist
    with pytest.raises(NotFound):
        app.device(support_a, other)
    shown = app.device(support_a, soon)
    assert (shown["status"], shown["package_id"], shown["value_added"]) == ("active", "RN-1", [])


# -- T1: expiry maintenance -----------------------------------------------------------------
def test_an_expiry_change_is_kept_in_the_history(app, tree: Tree, fixed_clock) -> None:
    device_id = tree.device(tree.a, days=10)
    support = tree.actor("support", tree.dealer)
    new = datetime(2027, 6, 30, tzinfo=UTC)
    changed = app.change_expiry(support, device_id, {"expires_at": new, "reason": "goodwill"})
    assert changed["expires_at"] == new
    fixed_clock.advance(days=1)
    app.change_expiry(
        support, device_id, {"expires_at": new + timedelta(days=1), "reason": "one more day"}
    )
    history = app.expiry_history(support, device_id)
    assert [
        (h["old_expires_at"], h["new_expires_at"], h["reason"], h["source"]) for h in history
    ] == [
        (new, new + timedelta(days=1), "one more day", "manual"),
        (T0 + timedelta(days=10), new, "goodwill", "manual"),
    ]
    assert {h["actor"] for h in history} == {support.username}
    assert history[0]["changed_at"] >= history[1]["changed_at"]


def test_an_expiry_change_outside_scope_or_wrong_changes_nothing(app, tree: Tree) -> None:
    device_id = tree.device(tree.b)
    before = state(app, device_id)
    support_a = tree.actor("support", tree.a)
    new = {"expires_at": datetime(2027, 1, 1, tzinfo=UTC), "reason": "x"}
    with pytest.raises(NotFound):
        app.change_expiry(support_a, device_id, new)
    with pytest.raises(Forbidden):  # a customer may not maintain expiry dates
        app.change_expiry(tree.actor("customer", tree.b), device_id, new)
    with pytest.raises(ValidationFailed):
        app.change_expiry(
            SYSTEM, device_id, {**new, "expires_at": datetime(2999, 1, 1, tzinfo=UTC)}
        )
    with pytest.raises(ValidationFailed):
        app.change_expiry(SYSTEM, device_id, {**new, "reason": "   "})
    assert state(app, device_id) == before
    assert app.expiry_history(SYSTEM, device_id) == []


# -- C5: suspension -------------------------------------------------------------------------
def test_suspend_one_a_pasted_batch_list_and_reenable(app, tree: Tree) -> None:
    one, two, three = (tree.device(tree.a) for _ in range(3))
    customer = tree.actor("customer", tree.a)
    assert app.suspend(customer, [one], "stolen")["suspended"] == [one]
    result = app.suspend(customer, [one, two.lower(), three], "season over")
    assert (result["suspended"], result["already_suspended"]) == ([two, three], [one])
    listed = app.list_devices(customer, {"status": "suspended"})
    assert {d["device_id"] for d in listed["items"]} == {one, two, three}
    assert app.device(customer, one)["suspension_reason"] == "stolen"
    assert app.reenable(customer, [one, two])["reenabled"] == [one, two]
    assert app.device(customer, one)["status"] == "active"
    assert app.reenable(customer, [one])["not_suspended"] == [one]


def test_a_batch_with_an_unknown_or_foreign_id_suspends_nothing(app, tree: Tree) -> None:
    mine = [tree.device(tree.a) for _ in range(3)]
    foreign = tree.device(tree.b)
    customer = tree.actor("customer", tree.a)
    before = state(app, *mine, foreign)
    with pytest.raises(NotFound) as unknown:
        app.suspend(customer, [*mine, "86NOSUCHDEVICE1"])
    assert unknown.value.fields["device_ids"] == ["86NOSUCHDEVICE1: not found"]
    with pytest.raises(Forbidden) as outside:
        app.suspend(customer, [*mine, foreign, "86NOSUCHDEVICE1"])
    assert outside.value.fields["device_ids"] == [
        f"{foreign}: outside your company and its subsidiaries",
        "86NOSUCHDEVICE1: not found",
    ]
    assert state(app, *mine, foreign) == before


def test_suspended_devices_leave_reminders_expiry_notices_and_renewals(
    app, tree: Tree, fixed_clock
) -> None:
    device_id = tree.device(tree.a, days=3)
    app.suspend(SYSTEM, [device_id])
    fixed_clock.advance(days=10)
    app.remind_due()
    app.expire_due()
    names = [type(e).__name__ for e in app.events.get(device_key(device_id))]
    assert "Expiring" not in names and "Expired" not in names
    # a paid line for it is refused and reported, so billing can refund it
    order = _order([(device_id, 12)], fixed_clock.now())
    app.apply_paid_order(str(uuid.uuid4()), order)
    applied = _applied(app, order)
    assert (applied[0]["outcome"], applied[0]["reason"]) == ("refused", "the device is suspended")
    assert app.device(SYSTEM, device_id)["expires_at"] == T0 + timedelta(days=3)


# -- T3: renewal bindings -------------------------------------------------------------------
def test_bind_and_unbind_a_renewal_package_on_chosen_devices(app, tree: Tree) -> None:
    one, two = tree.device(tree.a), tree.device(tree.a)
    support = tree.actor("support", tree.dealer)
    bound = app.bind_package(support, {"package_id": "RN-1", "device_ids": [one, two]}, CATALOG)
    assert (sorted(bound["bound"]), bound["changed"]) == (sorted([one, two]), 2)
    again = app.bind_package(support, {"package_id": "RN-1", "device_ids": [one]}, CATALOG)
    assert again["changed"] == 0
    listed = app.list_devices(support, {"company_id": tree.a, "bound": True})
    assert {d["device_id"] for d in listed["items"]} == {one, two}
    assert app.unbind_package(support, {"device_ids": [two]})["unbound"] == [two]
    assert app.device(support, two)["package_id"] is None
    with pytest.raises(ValidationFailed):  # a value-added package is not a renewal package
        app.bind_package(support, {"package_id": "VA-GPS", "device_ids": [one]}, CATALOG)
    with pytest.raises(Forbidden):
        app.bind_package(
            tree.actor("customer", tree.a), {"package_id": "RN-1", "device_ids": [one]}, CATALOG
        )


def test_binding_a_device_type_binds_its_devices_and_later_ones(app, tree: Tree) -> None:
    trackers = [tree.device(tree.a, device_type="GT06 tracker") for _ in range(3)]
    cam = tree.device(tree.a, device_type="DC-200 dashcam")
    elsewhere = tree.device(tree.a1, device_type="GT06 tracker")
    support = tree.actor("support", tree.dealer)
    result = app.bind_package(
        support,
        {
            "package_id": "RN-2",
            "company_id": tree.a,
            "device_type": "GT06 tracker",
            "follow_new": True,
        },
        CATALOG,
    )
    assert sorted(result["bound"]) == sorted(trackers)
    assert app.device(support, cam)["package_id"] is None
    assert app.device(support, elsewhere)["package_id"] is None  # the company itself only
    later = tree.device(tree.a, device_type="GT06 tracker")
    shown = app.device(support, later)
    assert (shown["package_id"], shown["bound_by_device_type"]) == ("RN-2", True)
    assert [r["device_type"] for r in app.type_bindings(support, tree.a)] == ["GT06 tracker"]
    # unbinding the type unbinds its devices and stops the following
    unbound = app.unbind_package(support, {"company_id": tree.a, "device_type": "GT06 tracker"})
    assert sorted(unbound["unbound"]) == sorted([*trackers, later])
    assert app.type_bindings(support, tree.a) == []
    assert (
        app.device(support, tree.device(tree.a, device_type="GT06 tracker"))["package_id"] is None
    )


def test_binding_without_following_leaves_later_devices_unbound(app, tree: Tree) -> None:
    tree.device(tree.b, device_type="T-1")
    data = {"package_id": "RN-1", "company_id": tree.b, "device_type": "T-1", "follow_new": False}
    app.bind_package(SYSTEM, data, CATALOG)
    assert app.device(SYSTEM, tree.device(tree.b, device_type="T-1"))["package_id"] is None


def test_a_type_binding_in_another_company_is_refused(app, tree: Tree) -> None:
    foreign = tree.device(tree.b, device_type="GT06 tracker")
    before = state(app, foreign)
    with pytest.raises(Forbidden):
        app.bind_package(
            tree.actor("support", tree.a),
            {"package_id": "RN-1", "company_id": tree.b, "device_type": "GT06 tracker"},
            CATALOG,
        )
    assert state(app, foreign) == before


# -- T4: value-added bindings ---------------------------------------------------------------
def test_value_added_packages_need_a_renewal_package_and_have_their_own_expiry(
    app, tree: Tree
) -> None:
    bound, unbound = tree.device(tree.a), tree.device(tree.a)
    support = tree.actor("support", tree.dealer)
    app.bind_package(support, {"package_id": "RN-1", "device_ids": [bound]}, CATALOG)
    before = state(app, bound, unbound)
    with pytest.raises(Conflict) as refused:
        app.add_value_added(
            support, {"package_id": "VA-GPS", "device_ids": [bound, unbound]}, CATALOG
        )
    assert refused.value.fields["device_ids"] == [f"{unbound}: bind a renewal package first"]
    assert state(app, bound, unbound) == before  # all or nothing
    va_expiry = T0 + timedelta(days=30)
    added = app.add_value_added(
        support, {"package_id": "VA-GPS", "device_ids": [bound], "expires_at": va_expiry}, CATALOG
    )
    binding = added["bindings"][0]
    assert (binding["device_id"], binding["new"], binding["expires_at"]) == (bound, True, va_expiry)
    shown = app.device(support, bound)["value_added"]
    assert shown == [
        {
            "binding_id": binding["binding_id"],
            "package_id": "VA-GPS",
            "expires_at": va_expiry,
            "status": "active",
        }
    ]
    listed = app.list_value_added(support, {"company_id": tree.a, "package_id": "VA-GPS"})
    assert [i["binding_id"] for i in listed["items"]] == [binding["binding_id"]]
    assert app.list_value_added(support, {"company_id": tree.a, "status": "expired"})["total"] == 0
    for_order = app.value_added_for_order(tree.actor("customer", tree.a), [binding["binding_id"]])
    assert {k: for_order[0][k] for k in ("device_id", "company_id", "package_id", "status")} == {
        "device_id": bound,
        "company_id": tree.a,
        "package_id": "VA-GPS",
        "status": "active",
    }
    with pytest.raises(NotFound):
        app.value_added_for_order(tree.actor("customer", tree.b), [binding["binding_id"]])
    with pytest.raises(Conflict):  # the renewal package carries the value-added one
        app.unbind_package(support, {"device_ids": [bound]})
    assert app.remove_value_added(support, [binding["binding_id"]])["removed"] == [
        binding["binding_id"]
    ]
    assert app.device(support, bound)["value_added"] == []


# -- the clock ------------------------------------------------------------------------------
def test_expiring_and_expired_are_recorded_once_each(app, tree: Tree, fixed_clock) -> None:
    device_id = tree.device(tree.a, days=9)
    key = device_key(device_id)

    def notices() -> list[str]:
        return [
            type(e).__name__
            for e in app.events.get(key)
            if type(e).__name__ in ("Expiring", "Expired")
        ]

    app.remind_due()
    assert notices() == []  # 9 days away, reminders start 7 days before
    fixed_clock.advance(days=3)
    app.remind_due()
    app.remind_due()
    assert notices() == ["Expiring"]
    fixed_clock.advance(days=7)
    app.remind_due()
    app.expire_due()
    app.expire_due()
    assert notices() == ["Expiring", "Expired"]
    # a new expiry is a new occasion for both
    app.change_expiry(
        SYSTEM, device_id, {"expires_at": fixed_clock.now() + timedelta(days=2), "reason": "grace"}
    )
    app.remind_due()
    fixed_clock.advance(days=3)
    app.expire_due()
    assert notices() == ["Expiring", "Expired", "Expiring", "Expired"]


def test_two_replicas_record_each_expiry_once(pg_store, fixed_clock) -> None:
    config = pg_store("devices")
    first, second = DevicesApplication(config=config), DevicesApplication(config=config)
    try:
        tree = Tree(first)
        due = [tree.device(tree.a, days=-1) for _ in range(60)]
        second.catch_up()
        barrier = threading.Barrier(2)
        counts: list[int] = []

        def replica(app: DevicesApplication) -> None:
            barrier.wait()
            counts.append(app.expire_due())

        threads = [threading.Thread(target=replica, args=(a,)) for a in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sum(counts) == len(due)
        for device_id in due:
            names = [type(e).__name__ for e in first.events.get(device_key(device_id))]
            assert names.count("Expired") == 1, device_id
    finally:
        first.close()
        second.close()


# -- renewal --------------------------------------------------------------------------------
def _order(lines: list[tuple[str, int]], paid_at: datetime, **extra) -> dict:
    order_id = str(uuid.uuid4())
    return {
        "order_id": order_id,
        "order_number": f"R-{order_id[:8]}",
        "company_id": "c",
        "order_type": "renewal",
        "currency": "CNY",
        "total": Decimal("10.00") * len(lines),
        "paid_at": paid_at,
        "lines": [
            {
                "line_id": f"{order_id}-{n}",
                "device_id": device_id,
                "package_id": "RN-1",
                "package_name": "renewal",
                "months": months,
                "unit_price": Decimal("10.00"),
                "amount": Decimal("10.00"),
            }
            for n, (device_id, months) in enumerate(lines, start=1)
        ],
        **extra,
    }


def _applied(app: DevicesApplication, order: dict) -> list[dict]:
    from services.devices.domain import RenewalApplied

    return app.repository.get(RenewalApplied.create_id(order["order_id"])).lines


def test_a_paid_order_extends_each_device_once_from_the_later_date(app, tree: Tree) -> None:
    lapsed = tree.device(tree.a, days=-40)  # expired: counts from the payment
    running = tree.device(tree.a, days=21)  # 2026-03-31: counts from its expiry, clamped
    paid_at = T0 + timedelta(hours=1)
    order = _order([(lapsed, 12), (running, 1)], paid_at)
    message = str(uuid.uuid4())
    assert app.apply_paid_order(message, order) is True
    assert app.apply_paid_order(message, order) is False  # the same message again
    assert app.apply_paid_order(str(uuid.uuid4()), order) is True  # a duplicate of the order
    assert app.device(SYSTEM, lapsed)["expires_at"] == datetime(2027, 3, 10, 9, 0, tzinfo=UTC)
    assert app.device(SYSTEM, running)["expires_at"] == datetime(2026, 4, 30, 8, 0, tzinfo=UTC)
    renewals = [type(e).__name__ for e in app.events.get(device_key(running))].count("Renewed")
    assert renewals == 1
    lines = _applied(app, order)
    assert [(line["outcome"], line["new_expires_at"]) for line in lines] == [
        ("renewed", datetime(2027, 3, 10, 9, 0, tzinfo=UTC)),
        ("renewed", datetime(2026, 4, 30, 8, 0, tzinfo=UTC)),
    ]
    history = app.expiry_history(SYSTEM, running)
    assert (history[0]["source"], history[0]["reference"]) == ("renewal", order["order_id"])


def test_duplicate_deliveries_at_once_renew_once(app, tree: Tree) -> None:
    device_id = tree.device(tree.a, days=10)
    order = _order([(device_id, 6)], T0)
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        app.apply_paid_order(str(uuid.uuid4()), order)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    names = [type(e).__name__ for e in app.events.get(device_key(device_id))]
    assert names.count("Renewed") == 1
    assert app.device(SYSTEM, device_id)["expires_at"] == datetime(2026, 9, 20, 8, 0, tzinfo=UTC)


def test_a_value_added_order_extends_the_binding(app, tree: Tree) -> None:
    device_id = tree.device(tree.a, days=100)
    app.bind_package(SYSTEM, {"package_id": "RN-1", "device_ids": [device_id]}, CATALOG)
    added = app.add_value_added(
        SYSTEM,
        {"package_id": "VA-GPS", "device_ids": [device_id], "expires_at": T0 - timedelta(days=1)},
        CATALOG,
    )
    binding_id = added["bindings"][0]["binding_id"]
    order = _order([(device_id, 3)], T0, order_type="value_added")
    order["lines"][0].update(package_id="VA-GPS", binding_id=binding_id)
    app.apply_paid_order(str(uuid.uuid4()), order)
    shown = app.device(SYSTEM, device_id)
    assert shown["expires_at"] == T0 + timedelta(days=100)  # the device's own expiry stays
    assert shown["value_added"][0]["expires_at"] == datetime(2026, 6, 10, 8, 0, tzinfo=UTC)
    line = _applied(app, order)[0]
    assert (line["outcome"], line["binding_id"]) == ("renewed", binding_id)


def test_the_relay_turns_every_device_event_into_a_valid_wire_event(app, tree: Tree) -> None:
    from contracts.envelope import validate
    from services.common.relay import build_envelopes
    from services.devices.relay import to_wire

    device_id = tree.device(tree.a, days=2)
    app.bind_package(SYSTEM, {"package_id": "RN-1", "device_ids": [device_id]}, CATALOG)
    added = app.add_value_added(
        SYSTEM, {"package_id": "VA-GPS", "device_ids": [device_id]}, CATALOG
    )
    app.remove_value_added(SYSTEM, [added["bindings"][0]["binding_id"]])
    app.change_expiry(SYSTEM, device_id, {"expires_at": T0 + timedelta(days=1), "reason": "r"})
    app.remind_due()
    app.suspend(SYSTEM, [device_id], "s")
    app.reenable(SYSTEM, [device_id])
    app.unbind_package(SYSTEM, {"device_ids": [device_id]})
    types = []
    for event in app.events.get(device_key(device_id)):
        for envelope in build_envelopes("devices", 1, event, to_wire, app):
            assert validate(envelope) == {}, envelope
            assert (envelope["subject"], envelope["data"]["company_id"]) == (device_id, tree.a)
            types.append(envelope["type"])
    assert types == [
        "device_registered",
        "package_bound",
        "value_added_bound",
        "value_added_unbound",
        "device_expiry_changed",
        "device_expiring",
        "device_suspended",
        "device_reenabled",
        "package_unbound",
    ]


def test_the_expiry_of_a_device_is_its_own(app, tree: Tree) -> None:
    """Devices are loaded in bulk for batch work: each must come back as itself."""
    ids = [tree.device(tree.a, days=n) for n in range(1, 6)]
    loaded = app._load_devices([str(device_key(d)) for d in reversed(ids)])
    assert [d.imei for d in loaded] == list(reversed(ids))
    assert all(isinstance(d, Device) for d in loaded)
