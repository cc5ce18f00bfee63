"""The catalog's wire: request validation, event contracts, the OpenAPI description."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts import envelope
from contracts.rpc import load
from contracts.rpc.catalog import (
    MajorCategoryIn,
    MinorCategoryIn,
    PackageChange,
    PackageFilter,
    PackageIn,
    QuoteIn,
)
from services.catalog import relay
from services.common.errors import BadRequest, ValidationFailed

GOOD = {
    "code": "RN-CN-M",
    "name": "4G renewal, monthly (CNY)",
    "kind": "renewal",
    "pricing": "per_month",
    "amount": "10.00",
    "currency": "CNY",
}


def test_a_good_package_loads_with_an_exact_amount() -> None:
    loaded = load(PackageIn(), {**GOOD, "amount": "12.5"})
    assert loaded["amount"] == Decimal("12.50")
    assert loaded["major_category_id"] is None and loaded["description"] == ""
    assert load(PackageIn(), {**GOOD, "amount": 100})["amount"] == Decimal("100.00")


@pytest.mark.parametrize(
    "amount", ["-1", -1, "0", "0.001", "1e3", "abc", "", "10000000.01", 1.5, "NaN", True]
)
def test_bad_amounts_are_unprocessable(amount: object) -> None:
    with pytest.raises(ValidationFailed) as refused:
        load(PackageIn(), {**GOOD, "amount": amount})
    assert list(refused.value.fields) == ["amount"]
    with pytest.raises(ValidationFailed):
        load(PackageChange(), {"amount": amount})


@pytest.mark.parametrize(
    ("field", "value"),
    [("currency", "EUR"), ("currency", "cny"), ("pricing", "weekly"), ("kind", "gold")],
)
def test_unknown_currencies_pricings_and_kinds_are_unprocessable(field: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        load(PackageIn(), {**GOOD, field: value})
    assert list(refused.value.fields) == [field]


def test_missing_unknown_and_mistyped_fields_are_malformed() -> None:
    with pytest.raises(BadRequest) as missing:
        load(PackageIn(), {k: v for k, v in GOOD.items() if k != "code"})
    assert "code" in missing.value.fields
    with pytest.raises(BadRequest):
        load(PackageIn(), {**GOOD, "price": "1.00"})
    with pytest.raises(BadRequest):
        load(MajorCategoryIn(), {"code": 5, "name": "x", "type": "renewal"})
    with pytest.raises(BadRequest):
        load(MinorCategoryIn(), {"code": "A", "name": "x"})
    with pytest.raises(BadRequest):
        load(PackageChange(), {"code": None})
    assert load(PackageChange(), {"minor_category_id": None}) == {"minor_category_id": None}


def test_package_filters_cover_every_field_and_check_ranges() -> None:
    loaded = load(
        PackageFilter(),
        {
            "code": "rn",
            "name": "4g",
            "kind": "renewal",
            "pricing": "per_year",
            "currency": "USD",
            "on_sale": "false",
            "major_category_id": "m",
            "minor_category_id": "n",
            "amount_min": "1.00",
            "amount_max": "20",
            "page": "2",
            "per_page": "10",
            "sort": "-amount",
        },
    )
    assert loaded["on_sale"] is False and loaded["amount_max"] == Decimal("20.00")
    assert (loaded["page"], loaded["per_page"]) == (2, 10)
    with pytest.raises(ValidationFailed) as upside_down:
        load(PackageFilter(), {"amount_min": "5.00", "amount_max": "1.00"})
    assert "amount_max" in upside_down.value.fields
    with pytest.raises(ValidationFailed):
        load(PackageFilter(), {"per_page": "501"})
    with pytest.raises(ValidationFailed):
        load(PackageFilter(), {"sort": "password"})


def test_a_quote_is_for_one_to_120_whole_months() -> None:
    assert load(QuoteIn(), {"package_id": "p", "months": 7})["months"] == 7
    for months in (0, 121):
        with pytest.raises(ValidationFailed):
            load(QuoteIn(), {"package_id": "p", "months": months})
    with pytest.raises(BadRequest):
        load(QuoteIn(), {"package_id": "p", "months": "7"})


def test_every_wire_event_of_the_catalog_has_a_contract() -> None:
    types = [
        *relay.PACKAGE_EVENTS.values(),
        *relay.MAJOR_EVENTS.values(),
        *relay.MINOR_EVENTS.values(),
    ]
    assert set(types) >= {
        "package_created",
        "package_changed",
        "package_withdrawn",
        "package_deleted",
        "major_category_created",
        "major_category_changed",
        "major_category_deleted",
        "minor_category_created",
        "minor_category_changed",
        "minor_category_deleted",
    }
    for type_ in types:
        assert envelope.contract("catalog", type_).latest == 1


def test_a_package_event_dumps_money_as_a_decimal_string() -> None:
    version, data = envelope.dump_payload(
        "catalog",
        "package_changed",
        {
            "package_id": "p1",
            "code": "RN-CN-Y",
            "name": "4G renewal, yearly",
            "kind": "renewal",
            "pricing": "per_year",
            "amount": Decimal("100"),
            "currency": "CNY",
            "on_sale": True,
            "major_category_id": None,
            "minor_category_id": None,
            "description": "",
        },
    )
    assert (version, data["amount"]) == (1, "100.00")
    minor = {
        "category_id": "c2",
        "code": "RN-4G",
        "name": "4G",
        "type": "renewal",
        "major_category_id": "c1",
    }
    assert envelope.dump_payload("catalog", "minor_category_deleted", minor)[1] == minor


def test_the_openapi_document_describes_every_catalog_endpoint() -> None:
    import gateway.service  # noqa: F401 - registers the routes
    from gateway.openapi import build_spec

    spec = build_spec()
    paths = spec["paths"]
    expected = {
        ("/major-categories", "get"),
        ("/major-categories", "post"),
        ("/major-categories/{category_id}", "get"),
        ("/major-categories/{category_id}", "patch"),
        ("/major-categories/{category_id}", "delete"),
        ("/minor-categories", "get"),
        ("/minor-categories", "post"),
        ("/minor-categories/{category_id}", "get"),
        ("/minor-categories/{category_id}", "patch"),
        ("/minor-categories/{category_id}", "delete"),
        ("/packages", "get"),
        ("/packages", "post"),
        ("/packages/{package_id}", "get"),
        ("/packages/{package_id}", "patch"),
        ("/packages/{package_id}", "delete"),
        ("/packages/{package_id}/withdraw", "post"),
        ("/packages/{package_id}/put-on-sale", "post"),
        ("/packages/{package_id}/quote", "get"),
    }
    for path, method in expected:
        operation = paths[path][method]
        assert operation["tags"] == ["catalog"]
        assert "409" in operation["responses"] and "422" in operation["responses"]
        if method in ("post", "patch") and not path.endswith(("withdraw", "put-on-sale")):
            assert operation["requestBody"]["content"]["application/json"]["schema"]
        if method != "get":
            assert "support" in operation["description"]  # who may write
    schemas = spec["components"]["schemas"]
    for name in ("PackageIn", "PackageOut", "PackagePage", "MajorCategoryIn", "MinorCategoryOut"):
        assert name in schemas
    assert schemas["PackageIn"]["properties"]["amount"]
    assert paths["/packages/{package_id}"]["delete"]["responses"]["204"]
