"""Money parsing, the wire envelope and request validation (no I/O)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from contracts import envelope
from contracts.rpc import load
from contracts.rpc.billing import OfflineApplicationIn
from services.common.errors import BadRequest, ValidationFailed
from services.common.money import parse_amount, quantize


@pytest.mark.parametrize("text", ["1000.00", "1000", "0.01", " 12.5 ", 7])
def test_amounts_parse_exactly(text: object) -> None:
    assert parse_amount(text) == Decimal(str(text).strip()).quantize(Decimal("0.01"))


@pytest.mark.parametrize(
    "text", ["-1", "0", "0.001", "1e3", "abc", "", "NaN", "Infinity", 1.5, True]
)
def test_bad_amounts_are_refused(text: object) -> None:
    with pytest.raises(ValueError):
        parse_amount(text)


def test_rounding_is_half_up_to_the_cent() -> None:
    assert quantize(Decimal("0.005")) == Decimal("0.01")
    assert quantize(Decimal("100") * 7 / 12) == Decimal("58.33")


def test_missing_and_unknown_fields_are_malformed_requests() -> None:
    with pytest.raises(BadRequest) as missing:
        load(OfflineApplicationIn(), {"company_id": "c"})
    assert "amount" in missing.value.fields
    with pytest.raises(BadRequest) as unknown:
        load(
            OfflineApplicationIn(),
            {
                "company_id": "c",
                "payer": "p",
                "currency": "CNY",
                "amount": "1",
                "reference_number": "r",
                "x": 1,
            },
        )
    assert "x" in unknown.value.fields


def test_a_value_that_breaks_a_rule_is_unprocessable() -> None:
    good = {
        "company_id": "c",
        "payer": "p",
        "currency": "CNY",
        "amount": "1.00",
        "reference_number": "r",
    }
    with pytest.raises(ValidationFailed) as fraction:
        load(OfflineApplicationIn(), {**good, "amount": "0.001"})
    assert fraction.value.fields == {"amount": ["amount has more than two decimals"]}
    with pytest.raises(ValidationFailed) as currency:
        load(OfflineApplicationIn(), {**good, "currency": "EUR"})
    assert "currency" in currency.value.fields


def _message(**changes: object) -> dict:
    message = {
        "id": "9cab456b-758f-5488-b481-871da0008d3e",
        "type": "account_credited",
        "version": 1,
        "source": "billing",
        "subject": "company-1",
        "sequence": 3,
        "time": "2026-11-26T20:32:02.525984+00:00",
        "correlation_id": None,
        "causation_id": None,
        "data": {
            "company_id": "company-1",
            "currency": "CNY",
            "amount": "1000.00",
            "balance": "1000.00",
            "reason": "offline_application",
            "reference": "app-1",
        },
    }
    message.update(changes)
    return message


def test_an_envelope_validates_against_its_payload_schema() -> None:
    assert envelope.validate(_message()) == {}
    parsed = envelope.parse(_message())
    assert parsed.data["amount"] == Decimal("1000.00")


def test_a_broken_payload_or_unknown_type_is_reported() -> None:
    assert "data" in envelope.validate(_message(data={"company_id": "c"}))
    assert "type" in envelope.validate(_message(type="no_such_event"))
    assert "version" in envelope.validate(_message(version=9))


def test_consumers_ignore_unknown_fields() -> None:
    data = {**_message()["data"], "added_later": "ok"}
    assert envelope.parse(_message(data=data)).data.get("added_later") is None
