"""The catalog service as a process: its RPC methods, its errors across RPC, and the
devices service's binding events arriving through RabbitMQ."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.common.actor import SYSTEM, Actor
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.support.platform import Platform
from tests.support.processes import wait_for

pytestmark = pytest.mark.integration

SUPPORT = Actor("u-support", "support", "support", "vendor").to_rpc()
CUSTOMER = Actor("u-customer", "customer", "customer", "cn_customer").to_rpc()


@pytest.fixture(scope="module")
def platform(amqp_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with Platform(
        amqp_uri, tmp_path_factory.mktemp("catalog-rpc"), services=("catalog",), gateway=False
    ) as running:
        yield running


@pytest.fixture
def rpc(platform: Platform) -> Iterator:
    with platform.rpc() as proxy:
        yield proxy


def _code(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _package(rpc, minor_id: str, code: str, **changes: object) -> dict:
    return rpc.catalog.create_package(
        SUPPORT,
        {
            "code": code,
            "name": "4G renewal, yearly",
            "minor_category_id": minor_id,
            "pricing": "per_year",
            "amount": "100.00",
            "currency": "CNY",
            **changes,
        },
    )


@pytest.fixture
def tree(rpc) -> dict:
    major = rpc.catalog.create_major_category(
        SUPPORT, {"code": _code("RN"), "name": "Renewal", "type": "renewal"}
    )
    minor = rpc.catalog.create_minor_category(
        SUPPORT, {"code": _code("RN-4G"), "name": "4G", "major_category_id": major["category_id"]}
    )
    return {"major": major, "minor": minor}


def test_the_catalog_answers_over_rpc(rpc, tree: dict) -> None:
    package = _package(rpc, tree["minor"]["category_id"], _code("RN-Y"))
    assert (package["kind"], package["amount"], package["bound_devices"]) == (
        "renewal",
        "100.00",
        0,
    )
    assert rpc.catalog.get_package(CUSTOMER, package["package_id"]) == package
    quote = rpc.catalog.quote(package["package_id"], 7)
    assert (quote["unit_price"], quote["amount"], quote["months"]) == ("100.00", "58.33", 7)
    changed = rpc.catalog.change_package(SUPPORT, package["package_id"], {"amount": "120.00"})
    assert changed["amount"] == "120.00" and changed["changed_at"] > package["changed_at"]
    assert rpc.catalog.withdraw_package(SUPPORT, package["package_id"])["on_sale"] is False
    assert rpc.catalog.quote(package["package_id"], 12)["on_sale"] is False
    listed = rpc.catalog.list_packages(CUSTOMER, {"code": package["code"]})
    assert [p["package_id"] for p in listed["items"]] == [package["package_id"]]
    minors = rpc.catalog.list_minor_categories(
        SUPPORT, {"major_category_id": tree["major"]["category_id"]}
    )
    assert minors["total"] == 1
    rpc.catalog.delete_package(SUPPORT, package["package_id"])
    with pytest.raises(NotFound):
        rpc.catalog.get_package(SUPPORT, package["package_id"])


def test_refusals_cross_rpc_as_our_errors(rpc, tree: dict) -> None:
    code = _code("RN-M")
    _package(rpc, tree["minor"]["category_id"], code)
    with pytest.raises(Conflict) as duplicate:
        _package(rpc, tree["minor"]["category_id"], f"  {code.lower()} ")
    assert "code" in duplicate.value.fields
    with pytest.raises(ValidationFailed) as bad:
        _package(rpc, tree["minor"]["category_id"], _code("X"), amount="0.001")
    assert bad.value.fields == {"amount": ["amount has more than two decimals"]}
    with pytest.raises(Forbidden):
        rpc.catalog.create_major_category(CUSTOMER, {"code": "C", "name": "c", "type": "renewal"})
    with pytest.raises(Conflict) as in_use:
        rpc.catalog.delete_major_category(SYSTEM.to_rpc(), tree["major"]["category_id"])
    assert in_use.value.fields["minor_categories"] == [tree["minor"]["code"]]
    with pytest.raises(ValidationFailed):
        rpc.catalog.quote("anything", 0)


def _package_bound(device_id: str, package_id: str, sequence: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": "package_bound",
        "version": 1,
        "source": "devices",
        "subject": device_id,
        "sequence": sequence,
        "time": "2026-03-01T08:00:00+00:00",
        "correlation_id": None,
        "causation_id": None,
        "data": {
            "device_id": device_id,
            "company_id": "c1",
            "package_id": package_id,
            "previous_package_id": None,
        },
    }


def test_a_package_bound_through_the_broker_cannot_be_deleted(
    rpc, tree: dict, platform: Platform
) -> None:
    package = _package(rpc, tree["minor"]["category_id"], _code("RN-B"))
    device = str(860000000000000 + uuid.uuid4().int % 10**9)
    bound = _package_bound(device, package["package_id"], 2)
    # the same message twice (a redelivery) and an older one arriving late
    platform.publish("devices", [bound, bound, _package_bound(device, package["package_id"], 1)])
    wait_for(
        lambda: rpc.catalog.get_package(SUPPORT, package["package_id"])["bound_devices"] == 1,
        timeout=20,
        what="the binding to reach the catalog",
    )
    with pytest.raises(Conflict) as refused:
        rpc.catalog.delete_package(SUPPORT, package["package_id"])
    assert refused.value.fields == {"devices": [device]}
    assert rpc.catalog.withdraw_package(SUPPORT, package["package_id"])["on_sale"] is False
    assert rpc.catalog.get_package(SUPPORT, package["package_id"])["bound_devices"] == 1
