"""The catalog's use cases on a real PostgreSQL event store: codes, categories, packages,
bindings from the devices service, rebuilds, wire events, and billing's copied prices."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from contracts.envelope import validate
from services.catalog import relay
from services.catalog.application import CatalogApplication
from services.common.actor import SYSTEM, Actor
from services.common.errors import AppError, Conflict, Forbidden, NotFound, ValidationFailed
from services.common.relay import build_envelopes

pytestmark = pytest.mark.integration

SUPPORT = Actor("u-support", "support", "support", "vendor")
CUSTOMER = Actor("u-customer", "customer", "customer", "cn_customer")


@pytest.fixture
def app(pg_store) -> Iterator[CatalogApplication]:
    catalog = CatalogApplication(config=pg_store("catalog"))
    yield catalog
    catalog.close()


def _state(app: CatalogApplication) -> tuple:
    """Everything a user can see, plus the log's head: a refused request changes neither."""
    return (
        app.list_major_categories({"per_page": 500}),
        app.list_minor_categories({"per_page": 500}),
        app.list_packages({"per_page": 500}),
        app.recorder.max_notification_id(),
    )


def _refused(app: CatalogApplication, error: type[AppError], attempt: Callable) -> AppError:
    before = _state(app)
    with pytest.raises(error) as refused:
        attempt()
    assert _state(app) == before
    return refused.value


def _catalog(app: CatalogApplication) -> dict:
    """Two major categories, three minor ones, four packages."""
    renewal = app.create_major_category(
        SUPPORT, {"code": "RN", "name": "Connectivity renewal", "type": "renewal"}
    )
    extras = app.create_major_category(
        SUPPORT, {"code": "VA", "name": "Value-added services", "type": "value_added"}
    )
    lte = app.create_minor_category(
        SUPPORT, {"code": "RN-4G", "name": "4G", "major_category_id": renewal["category_id"]}
    )
    video = app.create_minor_category(
        SUPPORT, {"code": "VA-VIDEO", "name": "Video", "major_category_id": extras["category_id"]}
    )
    sms = app.create_minor_category(
        SUPPORT, {"code": "VA-SMS", "name": "SMS", "major_category_id": extras["category_id"]}
    )

    def package(code: str, minor: dict, pricing: str, amount: str, currency: str) -> dict:
        return app.create_package(
            SUPPORT,
            {
                "code": code,
                "name": code.lower(),
                "minor_category_id": minor["category_id"],
                "pricing": pricing,
                "amount": Decimal(amount),
                "currency": currency,
            },
        )

    return {
        "renewal": renewal,
        "extras": extras,
        "lte": lte,
        "video": video,
        "sms": sms,
        "monthly": package("RN-CN-M", lte, "per_month", "10.00", "CNY"),
        "yearly": package("RN-US-Y", lte, "per_year", "20.00", "USD"),
        "storage": package("VA-VIDEO-30", video, "per_month", "15.00", "CNY"),
        "alerts": package("VA-SMS-100", sms, "one_off", "5.50", "USD"),
    }


def test_a_package_takes_its_categories_and_their_type(app: CatalogApplication) -> None:
    made = _catalog(app)
    storage = made["storage"]
    assert storage["kind"] == "value_added"  # from its categories
    assert storage["major_category_id"] == made["extras"]["category_id"]
    assert storage["on_sale"] and storage["bound_devices"] == 0
    assert made["sms"]["type"] == "value_added"
    # a kind that disagrees with the category, a minor category under another major one
    _refused(
        app,
        ValidationFailed,
        lambda: app.create_package(
            SUPPORT,
            {
                "code": "X1",
                "name": "x",
                "kind": "renewal",
                "minor_category_id": made["video"]["category_id"],
                "pricing": "per_month",
                "amount": Decimal("1.00"),
                "currency": "CNY",
            },
        ),
    )
    mixed = _refused(
        app,
        ValidationFailed,
        lambda: app.create_package(
            SUPPORT,
            {
                "code": "X2",
                "name": "x",
                "major_category_id": made["renewal"]["category_id"],
                "minor_category_id": made["video"]["category_id"],
                "pricing": "per_month",
                "amount": Decimal("1.00"),
                "currency": "CNY",
            },
        ),
    )
    assert "minor_category_id" in mixed.fields
    unknown = _refused(
        app,
        ValidationFailed,
        lambda: app.create_minor_category(
            SUPPORT, {"code": "Z", "name": "z", "major_category_id": "no-such-id"}
        ),
    )
    assert "major_category_id" in unknown.fields
    wrong_type = _refused(
        app,
        ValidationFailed,
        lambda: app.create_minor_category(
            SUPPORT,
            {
                "code": "Z",
                "name": "z",
                "type": "value_added",
                "major_category_id": made["renewal"]["category_id"],
            },
        ),
    )
    assert "type" in wrong_type.fields


def test_codes_are_unique_per_kind_ignoring_case_and_spaces(app: CatalogApplication) -> None:
    made = _catalog(app)
    duplicate = _refused(
        app,
        Conflict,
        lambda: app.create_major_category(
            SUPPORT, {"code": "  rn ", "name": "again", "type": "renewal"}
        ),
    )
    assert "code" in duplicate.fields
    _refused(
        app,
        Conflict,
        lambda: app.change_package(SUPPORT, made["yearly"]["package_id"], {"code": "rn-cn-m"}),
    )
    # a minor category may share a code with a major one: each kind has its own codes
    app.create_minor_category(
        SUPPORT,
        {"code": "RN", "name": "plain", "major_category_id": made["renewal"]["category_id"]},
    )


def test_a_changed_or_deleted_code_is_free_again(app: CatalogApplication) -> None:
    made = _catalog(app)
    monthly = made["monthly"]["package_id"]
    changed = app.change_package(SUPPORT, monthly, {"code": " RN-CN-M1 "})
    assert changed["code"] == "RN-CN-M1"
    # the old code is released in the same save, the new one is held
    reused = app.create_package(
        SUPPORT,
        {
            "code": "rn-cn-m",
            "name": "reuse",
            "kind": "renewal",
            "pricing": "per_month",
            "amount": Decimal("9.00"),
            "currency": "CNY",
        },
    )
    _refused(
        app,
        Conflict,
        lambda: app.change_package(SUPPORT, reused["package_id"], {"code": "rn-cn-m1"}),
    )
    # changing only the case keeps the claim
    assert app.change_package(SUPPORT, monthly, {"code": "rn-cn-m1"})["code"] == "rn-cn-m1"
    app.delete_package(SUPPORT, reused["package_id"])
    again = app.change_major_category(
        SUPPORT, made["renewal"]["category_id"], {"code": "RENEW", "name": "Renewals"}
    )
    assert (again["code"], again["name"]) == ("RENEW", "Renewals")
    app.create_major_category(SUPPORT, {"code": "rn", "name": "reuse", "type": "renewal"})
    app.create_package(
        SUPPORT,
        {
            "code": "RN-CN-M",
            "name": "back",
            "kind": "renewal",
            "pricing": "per_month",
            "amount": Decimal("9.00"),
            "currency": "CNY",
        },
    )


def test_two_writers_never_hold_the_same_code(app: CatalogApplication) -> None:
    start = threading.Barrier(6)
    outcomes: list[str] = []

    def create(n: int) -> None:
        start.wait()
        try:
            app.create_package(
                SUPPORT,
                {
                    "code": "RACE" if n % 2 else "race ",
                    "name": f"racer {n}",
                    "kind": "renewal",
                    "pricing": "per_month",
                    "amount": Decimal("1.00"),
                    "currency": "CNY",
                },
            )
            outcomes.append("created")
        except Conflict:
            outcomes.append("refused")

    threads = [threading.Thread(target=create, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["created"] + ["refused"] * 5
    assert app.list_packages({"code": "race"})["total"] == 1


def test_a_category_is_never_deleted_under_a_new_minor_category(app: CatalogApplication) -> None:
    major = app.create_major_category(SUPPORT, {"code": "M", "name": "m", "type": "renewal"})
    start = threading.Barrier(5)

    def add(n: int) -> None:
        start.wait()
        try:
            app.create_minor_category(
                SUPPORT, {"code": f"M-{n}", "name": "m", "major_category_id": major["category_id"]}
            )
        except ValidationFailed:
            pass  # the major category was deleted first

    def delete() -> None:
        start.wait()
        try:
            app.delete_major_category(SUPPORT, major["category_id"])
        except Conflict:
            pass  # a minor category got there first

    threads = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    threads.append(threading.Thread(target=delete))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    # both writes touch the major category: one of them decided on stale state and retried
    minors = app.list_minor_categories({"major_category_id": major["category_id"]})["total"]
    deleted = app.list_major_categories({"code": "M"})["total"] == 0
    assert (deleted and minors == 0) or (not deleted and minors == 4)


def test_a_category_in_use_cannot_be_deleted(app: CatalogApplication) -> None:
    made = _catalog(app)
    major = _refused(
        app, Conflict, lambda: app.delete_major_category(SUPPORT, made["extras"]["category_id"])
    )
    assert major.fields == {
        "minor_categories": ["VA-SMS", "VA-VIDEO"],
        "packages": ["VA-SMS-100", "VA-VIDEO-30"],
    }
    assert "VA-SMS" in major.message
    minor = _refused(
        app, Conflict, lambda: app.delete_minor_category(SUPPORT, made["sms"]["category_id"])
    )
    assert minor.fields == {"packages": ["VA-SMS-100"]}
    # its type cannot change either, nor can a minor category with packages move
    _refused(
        app,
        Conflict,
        lambda: app.change_major_category(
            SUPPORT, made["extras"]["category_id"], {"type": "renewal"}
        ),
    )
    _refused(
        app,
        Conflict,
        lambda: app.change_minor_category(
            SUPPORT,
            made["sms"]["category_id"],
            {"major_category_id": made["renewal"]["category_id"]},
        ),
    )
    # emptied, it goes, and its codes are free
    app.delete_package(SUPPORT, made["alerts"]["package_id"])
    app.delete_minor_category(SUPPORT, made["sms"]["category_id"])
    app.delete_package(SUPPORT, made["storage"]["package_id"])
    moved = app.change_minor_category(
        SUPPORT,
        made["video"]["category_id"],
        {"major_category_id": made["renewal"]["category_id"]},
    )
    assert moved["type"] == "renewal"  # it follows its new major category
    app.delete_major_category(SUPPORT, made["extras"]["category_id"])
    with pytest.raises(NotFound):
        app.major_category(made["extras"]["category_id"])
    codes = [c["code"] for c in app.list_minor_categories({})["items"]]
    assert codes == ["RN-4G", "VA-VIDEO"]


def test_a_package_moves_between_categories(app: CatalogApplication) -> None:
    made = _catalog(app)
    other = app.create_minor_category(
        SUPPORT,
        {"code": "RN-NB", "name": "NB-IoT", "major_category_id": made["renewal"]["category_id"]},
    )
    monthly = made["monthly"]["package_id"]
    moved = app.change_package(SUPPORT, monthly, {"minor_category_id": other["category_id"]})
    assert moved["minor_category_id"] == other["category_id"]
    # the new minor category holds it now
    _refused(app, Conflict, lambda: app.delete_minor_category(SUPPORT, other["category_id"]))
    # into the value-added tree: its kind follows
    extras = app.change_package(
        SUPPORT, monthly, {"minor_category_id": made["video"]["category_id"]}
    )
    assert (extras["kind"], extras["major_category_id"]) == (
        "value_added",
        made["extras"]["category_id"],
    )
    app.delete_minor_category(SUPPORT, other["category_id"])
    # out of every category: it keeps its kind
    loose = app.change_package(
        SUPPORT, monthly, {"major_category_id": None, "minor_category_id": None}
    )
    assert (loose["kind"], loose["major_category_id"]) == ("value_added", None)


def test_lists_filter_on_every_field_and_page(app: CatalogApplication) -> None:
    made = _catalog(app)

    def codes(**filters: object) -> list[str]:
        return [p["code"] for p in app.list_packages(filters)["items"]]

    assert codes() == ["RN-CN-M", "RN-US-Y", "VA-SMS-100", "VA-VIDEO-30"]
    assert codes(code="rn-") == ["RN-CN-M", "RN-US-Y"]
    assert codes(name="video") == ["VA-VIDEO-30"]
    assert codes(kind="value_added") == ["VA-SMS-100", "VA-VIDEO-30"]
    assert codes(currency="USD") == ["RN-US-Y", "VA-SMS-100"]
    assert codes(pricing="one_off") == ["VA-SMS-100"]
    assert codes(major_category_id=made["extras"]["category_id"]) == ["VA-SMS-100", "VA-VIDEO-30"]
    assert codes(minor_category_id=made["lte"]["category_id"]) == ["RN-CN-M", "RN-US-Y"]
    assert codes(amount_min=Decimal("10.00"), amount_max=Decimal("15.00")) == [
        "RN-CN-M",
        "VA-VIDEO-30",
    ]
    assert codes(code="%") == []  # a wildcard is a plain character
    app.withdraw_package(SUPPORT, made["yearly"]["package_id"])
    assert codes(on_sale=False) == ["RN-US-Y"]
    assert codes(sort="-amount") == ["RN-US-Y", "VA-VIDEO-30", "RN-CN-M", "VA-SMS-100"]
    page = app.list_packages({"page": 2, "per_page": 3})
    assert (page["total"], [p["code"] for p in page["items"]]) == (4, ["VA-VIDEO-30"])
    created = made["monthly"]["created_at"]
    assert codes(created_to=created) == []
    assert "RN-CN-M" in codes(created_from=created)

    majors = app.list_major_categories({"type": "renewal"})
    assert [c["code"] for c in majors["items"]] == ["RN"]
    assert app.list_major_categories({"name": "VALUE"})["items"][0]["code"] == "VA"
    minors = app.list_minor_categories(
        {"major_category_id": made["extras"]["category_id"], "per_page": 1}
    )
    assert minors["total"] == 2 and [c["code"] for c in minors["items"]] == ["VA-SMS"]
    assert app.list_minor_categories({"code": "4g"})["items"][0]["code"] == "RN-4G"


def test_only_support_and_admin_write(app: CatalogApplication) -> None:
    made = _catalog(app)
    forbidden = [
        lambda: app.create_major_category(CUSTOMER, {"code": "C", "name": "c", "type": "renewal"}),
        lambda: app.change_package(
            CUSTOMER, made["monthly"]["package_id"], {"amount": Decimal("1.00")}
        ),
        lambda: app.withdraw_package(CUSTOMER, made["monthly"]["package_id"]),
        lambda: app.delete_package(CUSTOMER, made["storage"]["package_id"]),
        lambda: app.delete_minor_category(
            Actor("u", "sales", "sales", "vendor"), made["lte"]["category_id"]
        ),
    ]
    for attempt in forbidden:
        _refused(app, Forbidden, attempt)
    assert app.package(made["monthly"]["package_id"])["code"] == "RN-CN-M"  # reading is open


def _bound(device: str, package: str, previous: str | None = None) -> dict:
    return {
        "device_id": device,
        "company_id": "c1",
        "package_id": package,
        "previous_package_id": previous,
    }


def test_a_bound_package_is_withdrawn_not_deleted(app: CatalogApplication) -> None:
    made = _catalog(app)
    monthly, yearly = made["monthly"]["package_id"], made["yearly"]["package_id"]
    storage = made["storage"]["package_id"]
    assert app.record_binding_event("package_bound", 3, _bound("860000000000001", monthly))
    assert app.record_binding_event("package_bound", 2, _bound("860000000000002", monthly))
    app.record_binding_event(
        "value_added_bound",
        1,
        {
            "device_id": "860000000000001",
            "company_id": "c1",
            "package_id": storage,
            "binding_id": "b1",
        },
    )
    assert app.package(monthly)["bound_devices"] == 2
    refused = _refused(app, Conflict, lambda: app.delete_package(SUPPORT, monthly))
    assert refused.fields == {"devices": ["860000000000001", "860000000000002"]}
    assert "withdraw" in refused.message
    _refused(app, Conflict, lambda: app.delete_package(SUPPORT, storage))
    # moving it into the value-added tree would change its kind under the devices
    _refused(
        app,
        Conflict,
        lambda: app.change_package(
            SUPPORT, monthly, {"minor_category_id": made["video"]["category_id"]}
        ),
    )
    # withdrawing is how a bound package leaves the catalog
    assert app.withdraw_package(SUPPORT, monthly)["on_sale"] is False
    assert app.put_package_on_sale(SUPPORT, monthly)["on_sale"] is True

    # a redelivery, a duplicate or a late, older message changes nothing
    assert not app.record_binding_event("package_bound", 3, _bound("860000000000001", monthly))
    assert not app.record_binding_event("package_bound", 1, _bound("860000000000001", yearly))
    # rebinding moves the device to the other package; unbinding frees it
    app.record_binding_event("package_bound", 4, _bound("860000000000001", yearly, monthly))
    app.record_binding_event(
        "package_unbound",
        3,
        {"device_id": "860000000000002", "company_id": "c1", "package_id": monthly},
    )
    app.record_binding_event(
        "value_added_unbound",
        2,
        {
            "device_id": "860000000000001",
            "company_id": "c1",
            "package_id": storage,
            "binding_id": "b1",
        },
    )
    assert (app.package(monthly)["bound_devices"], app.package(yearly)["bound_devices"]) == (0, 1)
    app.delete_package(SUPPORT, monthly)
    app.delete_package(SUPPORT, storage)
    _refused(app, Conflict, lambda: app.delete_package(SUPPORT, yearly))


def test_quotes_price_the_current_terms(app: CatalogApplication) -> None:
    made = _catalog(app)
    yearly = made["yearly"]["package_id"]
    quote = app.quote(yearly, 7)
    assert (quote["unit_price"], quote["amount"], quote["currency"]) == (
        Decimal("20.00"),
        Decimal("11.67"),
        "USD",
    )
    assert app.quote(made["alerts"]["package_id"], 24)["amount"] == Decimal("5.50")
    with pytest.raises(ValidationFailed):
        app.quote(yearly, 0)
    app.delete_package(SUPPORT, made["alerts"]["package_id"])
    with pytest.raises(NotFound):
        app.quote(made["alerts"]["package_id"], 1)
    with pytest.raises(NotFound):
        app.quote("not-an-id", 1)


def test_a_price_change_never_alters_an_order_already_made(
    app: CatalogApplication, pg_store
) -> None:
    from contracts.rpc.catalog import QuoteOut
    from services.billing.application import BillingApplication

    made = _catalog(app)
    monthly = made["monthly"]["package_id"]

    class Devices:
        def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]:
            return [
                {"device_id": d, "company_id": "c1", "package_id": monthly, "status": "active"}
                for d in device_ids
            ]

    class Catalog:  # what billing receives over RPC: the dumped quote
        def quote(self, package_id: str, months: int) -> dict:
            return QuoteOut().dump(app.quote(package_id, months))

    billing = BillingApplication(config=pg_store("billing"))
    try:
        order = billing.create_renewal_order(
            SYSTEM, {"device_ids": ["860000000000009"], "months": 6}, Devices(), Catalog()
        )
        assert order["total"] == Decimal("60.00")
        app.change_package(SUPPORT, monthly, {"amount": Decimal("99.00")})
        again = billing.order(SYSTEM, order["order_id"])
        assert again["total"] == Decimal("60.00")
        assert again["lines"][0]["unit_price"] == Decimal("10.00")
        assert app.quote(monthly, 6)["amount"] == Decimal("594.00")  # new orders, new price
    finally:
        billing.close()


def test_the_catalog_is_rebuilt_from_its_event_store(app: CatalogApplication) -> None:
    made = _catalog(app)
    app.change_package(SUPPORT, made["monthly"]["package_id"], {"amount": Decimal("11.00")})
    app.withdraw_package(SUPPORT, made["yearly"]["package_id"])
    app.delete_package(SUPPORT, made["alerts"]["package_id"])
    app.delete_minor_category(SUPPORT, made["sms"]["category_id"])
    app.change_major_category(SUPPORT, made["renewal"]["category_id"], {"name": "Renewals"})
    app.record_binding_event(
        "package_bound", 1, _bound("860000000000001", made["monthly"]["package_id"])
    )
    before = _state(app)
    assert app.projector is not None
    app.projector.rebuild()
    assert _state(app) == before
    # a second application on the same store sees the same catalog
    again = CatalogApplication(config=app.store)
    try:
        assert _state(again) == before
    finally:
        again.close()


def test_every_stored_event_goes_on_the_wire_as_its_contract(app: CatalogApplication) -> None:
    made = _catalog(app)
    app.change_package(SUPPORT, made["monthly"]["package_id"], {"amount": Decimal("11.00")})
    app.withdraw_package(SUPPORT, made["monthly"]["package_id"])
    app.put_package_on_sale(SUPPORT, made["monthly"]["package_id"])
    app.delete_package(SUPPORT, made["alerts"]["package_id"])
    app.change_minor_category(SUPPORT, made["sms"]["category_id"], {"name": "Alerts"})
    app.delete_minor_category(SUPPORT, made["sms"]["category_id"])
    app.change_major_category(SUPPORT, made["renewal"]["category_id"], {"name": "Renewals"})
    envelopes = []
    for note in app.recorder.select_notifications(start=1, limit=1000):
        event = app.mapper.to_domain_event(note)
        envelopes += build_envelopes("catalog", note.id, event, relay.to_wire, app)
    for envelope in envelopes:
        assert validate(envelope) == {}, envelope
    types = [e["type"] for e in envelopes]
    assert types.count("major_category_created") == 2
    assert types.count("minor_category_created") == 3
    assert types.count("package_created") == 4
    for expected in (
        "package_changed",
        "package_withdrawn",
        "package_put_on_sale",
        "package_deleted",
        "minor_category_changed",
        "minor_category_deleted",
        "major_category_changed",
    ):
        assert expected in types
    changed = next(e for e in envelopes if e["type"] == "package_changed")
    assert (changed["data"]["amount"], changed["data"]["code"]) == ("11.00", "RN-CN-M")
    withdrawn = next(e for e in envelopes if e["type"] == "package_withdrawn")
    assert withdrawn["data"]["on_sale"] is False
    deleted = next(e for e in envelopes if e["type"] == "package_deleted")
    assert deleted["data"]["code"] == "VA-SMS-100"
    assert withdrawn["data"]["package_id"] == withdrawn["subject"]
    assert {e["correlation_id"] for e in envelopes} == {None}
