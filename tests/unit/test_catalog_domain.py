"""The catalog's rules (T2), on the aggregates alone: codes, categories, packages, quotes."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.catalog.domain import (
    CodeClaim,
    CodeTaken,
    InUse,
    InvalidEntry,
    MajorCategory,
    MinorCategory,
    Package,
    claim_id,
    clean_code,
    code_key,
    package_kind,
)
from services.common.money import MAX_AMOUNT


def _renewal() -> MajorCategory:
    return MajorCategory.define("RN", "Connectivity renewal", "renewal")


def _package(**changes: object) -> Package:
    terms: dict = {
        "code": "RN-CN-M",
        "name": "4G renewal, monthly",
        "kind": "renewal",
        "pricing": "per_month",
        "amount": Decimal("10.00"),
        "currency": "CNY",
    }
    terms.update(changes)
    return Package.define(**terms)


def _terms(package: Package, **changes: object) -> dict:
    return {**package.state(), "bound_devices": [], **changes}


def _events(aggregate: object) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]  # type: ignore[attr-defined]


# -- codes ----------------------------------------------------------------------------
def test_codes_are_trimmed_and_the_same_whatever_the_case() -> None:
    assert clean_code("  RN-CN-M ") == "RN-CN-M"
    assert code_key(" rn-cn-m") == code_key("RN-CN-M ")
    assert claim_id("package", " rn-cn-m") == claim_id("package", "RN-CN-M")
    # each kind of entry has its own codes
    assert claim_id("package", "RN") != claim_id("major_category", "RN")


@pytest.mark.parametrize("code", ["", "   ", "RN CN", "RN\tM", "X" * 65])
def test_blank_spaced_or_long_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidEntry) as refused:
        clean_code(code)
    assert refused.value.field == "code"


def test_a_held_code_cannot_be_taken_but_a_released_one_can() -> None:
    claim = CodeClaim(entry="package", code="RN-CN-M", owner_id="p1")
    with pytest.raises(CodeTaken):
        claim.take("p2", "rn-cn-m")
    claim.take("p1", "RN-CN-M")  # its own code again: nothing to do
    claim.release("p2")  # not the holder: nothing happens
    assert not claim.released
    claim.release("p1")
    assert claim.released
    claim.take("p2", "rn-cn-m")
    assert claim.owner_id == "p2"
    assert _events(claim) == ["Created", "Released", "Taken"]


# -- categories -----------------------------------------------------------------------
def test_a_major_category_has_a_known_type_and_a_name() -> None:
    with pytest.raises(InvalidEntry) as bad_type:
        MajorCategory.define("X", "X", "gold")
    assert bad_type.value.field == "type"
    with pytest.raises(InvalidEntry) as blank:
        MajorCategory.define("X", "  ", "renewal")
    assert blank.value.field == "name"


def test_a_minor_category_takes_its_major_categorys_type() -> None:
    major = _renewal()
    assert MinorCategory.define("RN-4G", "4G", major).type == "renewal"
    assert MinorCategory.define("RN-NB", "NB-IoT", major, type="renewal").type == "renewal"
    with pytest.raises(InvalidEntry) as refused:
        MinorCategory.define("RN-X", "X", major, type="value_added")
    assert refused.value.field == "type"


def test_a_category_in_use_cannot_be_deleted_and_says_what_uses_it() -> None:
    major = _renewal()
    major.attach_minor("minor-1")
    major.attach_package("package-1")
    with pytest.raises(InUse) as refused:
        major.delete()
    assert refused.value.uses == {"minor_categories": ["minor-1"], "packages": ["package-1"]}
    minor = MinorCategory.define("RN-4G", "4G", major)
    minor.attach_package("package-1")
    with pytest.raises(InUse) as minor_refused:
        minor.delete()
    assert minor_refused.value.uses == {"packages": ["package-1"]}
    # emptied, both can go
    minor.detach_package("package-1")
    minor.delete()
    major.detach_minor("minor-1")
    major.detach_package("package-1")
    major.delete()
    assert major.deleted and minor.deleted
    with pytest.raises(InvalidEntry):
        major.change("RN", "Renewal", "renewal")


def test_a_major_categorys_type_changes_only_while_it_is_empty() -> None:
    major = _renewal()
    assert major.change(" RN ", "Connectivity renewal", "renewal") is False  # nothing new
    major.attach_minor("minor-1")
    with pytest.raises(InUse):
        major.change("RN", "Connectivity renewal", "value_added")
    assert major.change("RN2", "Renewals", "renewal") is True  # code and name may change
    major.detach_minor("minor-1")
    assert major.change("RN2", "Renewals", "value_added") is True
    assert major.type == "value_added"


def test_a_minor_category_holding_packages_stays_in_its_major_category() -> None:
    renewal, extras = _renewal(), MajorCategory.define("VA", "Value-added", "value_added")
    minor = MinorCategory.define("RN-4G", "4G", renewal)
    minor.attach_package("package-1")
    with pytest.raises(InUse):
        minor.change("RN-4G", "4G", extras)
    minor.detach_package("package-1")
    assert minor.change("VA-4G", "4G extras", extras) is True
    assert (minor.type, minor.major_category_id) == ("value_added", str(extras.id))


# -- packages -------------------------------------------------------------------------
def test_a_packages_kind_follows_its_categories() -> None:
    major = _renewal()
    minor = MinorCategory.define("RN-4G", "4G", major)
    assert package_kind(None, major, minor) == "renewal"
    assert package_kind("renewal", major, None) == "renewal"
    with pytest.raises(InvalidEntry) as disagrees:
        package_kind("value_added", major, minor)
    assert disagrees.value.field == "kind"
    with pytest.raises(InvalidEntry) as missing:
        package_kind(None, None, None)
    assert missing.value.field == "kind"
    other = MajorCategory.define("VA", "Value-added", "value_added")
    with pytest.raises(InvalidEntry) as elsewhere:
        package_kind(None, other, minor)
    assert elsewhere.value.field == "minor_category_id"
    package = _package(kind=None, major=major, minor=minor)
    assert (package.kind, package.major_category_id, package.minor_category_id) == (
        "renewal",
        str(major.id),
        str(minor.id),
    )


@pytest.mark.parametrize(
    "amount",
    [Decimal("-1"), Decimal("0"), Decimal("0.001"), MAX_AMOUNT + Decimal("0.01"), Decimal("NaN")],
)
def test_amounts_are_positive_whole_cents_under_the_maximum(amount: Decimal) -> None:
    with pytest.raises(InvalidEntry) as refused:
        _package(amount=amount)
    assert refused.value.field == "amount"


@pytest.mark.parametrize(
    ("field", "value"), [("currency", "EUR"), ("pricing", "weekly"), ("kind", "gold")]
)
def test_currency_pricing_and_kind_are_known_ones(field: str, value: str) -> None:
    with pytest.raises(InvalidEntry) as refused:
        _package(**{field: value})
    assert refused.value.field == field


def test_a_price_change_is_a_new_event_and_the_old_price_stays_in_history() -> None:
    package = _package()
    quoted_before = package.quote(12)
    assert package.change(**_terms(package)) is False  # the same terms: nothing recorded
    assert package.change(**_terms(package, amount=Decimal("12.00"))) is True
    created, changed = package.collect_events()
    assert created.amount == Decimal("10.00")  # what was sold before keeps its price
    assert changed.amount == Decimal("12.00")
    assert quoted_before == Decimal("120.00")
    assert package.quote(12) == Decimal("144.00")


def test_a_bound_package_cannot_be_deleted_nor_change_kind_but_can_be_withdrawn() -> None:
    package = _package()
    bound = ["860000000000001", "860000000000002"]
    with pytest.raises(InUse) as refused:
        package.delete(bound)
    assert refused.value.uses == {"devices": bound}
    assert "withdraw" in str(refused.value)
    with pytest.raises(InUse):
        package.change(**_terms(package, kind="value_added", bound_devices=bound))
    assert package.change(**_terms(package, amount=Decimal("11.00"), bound_devices=bound))
    assert package.withdraw() is True
    assert package.withdraw() is False  # already off sale
    assert package.on_sale is False
    package.delete([])
    assert package.deleted
    with pytest.raises(InvalidEntry):
        package.put_on_sale()


def test_a_withdrawn_package_can_go_back_on_sale() -> None:
    package = _package()
    assert package.put_on_sale() is False
    package.withdraw()
    assert package.put_on_sale() is True
    assert package.on_sale
    assert _events(package) == ["Created", "Withdrawn", "PutOnSale"]


# -- quotes ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pricing", "amount", "months", "price"),
    [
        ("per_month", "10.00", 1, "10.00"),
        ("per_month", "10.00", 24, "240.00"),
        ("per_year", "100.00", 12, "100.00"),
        ("per_year", "100.00", 7, "58.33"),  # 58.333.. rounds down
        ("per_year", "100.00", 1, "8.33"),
        ("per_year", "20.00", 6, "10.00"),
        ("per_year", "0.10", 1, "0.01"),  # 0.00833.. rounds half up to a cent
        ("per_year", "0.01", 1, "0.01"),  # never below one cent
        ("per_year", "10.00", 9, "7.50"),
        ("per_year", "0.06", 1, "0.01"),  # 0.005 is half: rounds up
        ("one_off", "30.00", 1, "30.00"),
        ("one_off", "30.00", 12, "30.00"),  # once, whatever the months
    ],
)
def test_quotes_are_exact(pricing: str, amount: str, months: int, price: str) -> None:
    assert _package(pricing=pricing, amount=Decimal(amount)).quote(months) == Decimal(price)


@pytest.mark.parametrize("months", [0, -1, 121, True, 1.5, "3"])
def test_quotes_need_a_whole_number_of_months(months: object) -> None:
    with pytest.raises(InvalidEntry) as refused:
        _package().quote(months)  # type: ignore[arg-type]
    assert refused.value.field == "months"


@given(
    cents=st.integers(min_value=1, max_value=int(MAX_AMOUNT * 100)),
    months=st.integers(min_value=1, max_value=120),
)
def test_a_yearly_price_is_within_half_a_cent_of_the_exact_share(cents: int, months: int) -> None:
    amount = Decimal(cents) / 100
    price = _package(pricing="per_year", amount=amount).quote(months)
    exact = amount * months / 12
    assert price == price.quantize(Decimal("0.01"))
    assert abs(price - exact) <= Decimal("0.005") or price == Decimal("0.01")
    if months % 12 == 0:
        assert price == amount * (months // 12)
