"""The device registry's rules, in the words of the product (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.devices.domain import (
    Device,
    DeviceRefused,
    TypeBinding,
    device_key,
    expiry_problem,
)

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def device(expires_at: datetime = T0, package: str | None = None) -> Device:
    made = Device(
        imei="860000000000009", device_type="GT06", company_id="c1", expires_at=expires_at
    )
    if package:
        made.bind(package)
    return made


def names(made: Device) -> list[str]:
    return [type(e).__name__ for e in made.collect_events()]


def test_the_device_id_is_the_identity_whatever_its_letters() -> None:
    assert device_key(" 86abc-1 ") == device_key("86ABC-1")
    assert device().id == device_key("860000000000009")


def test_an_expiry_change_needs_a_reason_and_a_sensible_date() -> None:
    made = device()
    with pytest.raises(DeviceRefused, match="reason"):
        made.change_expiry(T0 + timedelta(days=1), "  ")
    with pytest.raises(DeviceRefused, match="between"):
        made.change_expiry(datetime(2150, 1, 1, tzinfo=UTC), "typo")
    with pytest.raises(DeviceRefused, match="time zone"):
        made.change_expiry(datetime(2027, 1, 1), "naive")
    assert made.change_expiry(T0, "the same") is False  # nothing to record
    assert made.change_expiry(T0 + timedelta(days=30), " goodwill ") is True
    changed = made.collect_events()[-1]
    assert (changed.old_expires_at, changed.reason, changed.source) == (T0, "goodwill", "manual")
    assert expiry_problem(datetime(2000, 1, 1, tzinfo=UTC)) is None


def test_an_imported_expiry_is_the_next_event_of_the_device() -> None:
    made = device()
    event = Device.imported_expiry(
        made.id, made.version, T0, T0 + timedelta(days=9), "file", "imp-1"
    )
    assert (event.originator_version, event.source, event.import_id) == (2, "bulk_import", "imp-1")
    event.mutate(made)
    assert (made.expires_at, made.version) == (T0 + timedelta(days=9), 2)
    with pytest.raises(DeviceRefused):
        Device.imported_expiry(made.id, 2, T0, datetime(1999, 1, 1, tzinfo=UTC), "", "imp-2")


def test_suspending_and_reenabling_twice_records_once() -> None:
    made = device()
    assert made.suspend("stolen") is True
    assert made.suspend("again") is False
    assert made.status(T0 - timedelta(days=1)) == "suspended"
    assert made.reenable() is True
    assert made.reenable() is False
    assert names(made) == ["Created", "Suspended", "Reenabled"]


def test_a_renewal_package_is_bound_once_and_unbound_only_without_value_added() -> None:
    made = device()
    assert made.unbind() is False
    assert made.bind("RN-1") is True
    assert made.bind("RN-1") is False
    assert made.bind("RN-2") is True
    assert made.collect_events()[-1].previous_package_id == "RN-1"
    made.add_value_added("VA-1", T0)
    with pytest.raises(DeviceRefused, match="value-added"):
        made.unbind()


def test_value_added_packages_ride_on_a_renewal_package() -> None:
    bare = device()
    with pytest.raises(DeviceRefused, match="renewal package first"):
        bare.add_value_added("VA-1", T0)
    made = device(package="RN-1")
    binding, new = made.add_value_added("VA-1", T0 + timedelta(days=5))
    assert new is True
    assert made.add_value_added("VA-1", T0) == (binding, False)  # the same package again
    other, _ = made.add_value_added("VA-2", T0)
    assert other != binding
    assert made.value_added_binding("VA-2") == other
    assert made.remove_value_added(binding) is True
    assert made.remove_value_added(binding) is False
    assert list(made.value_added) == [other]


def test_a_value_added_binding_renews_from_the_later_date_once_a_line() -> None:
    made = device(expires_at=T0 + timedelta(days=400), package="RN-1")
    binding, _ = made.add_value_added("VA-1", T0 - timedelta(days=10))  # lapsed
    paid = T0
    old, new = made.renew_value_added(binding, "o1", "o1-1", 1, paid)
    assert (old, new) == (T0 - timedelta(days=10), datetime(2026, 2, 28, 12, 0, tzinfo=UTC))
    assert made.renew_value_added(binding, "o1", "o1-1", 1, paid) == (new, new)
    assert made.expires_at == T0 + timedelta(days=400)  # the device's own expiry stays
    made.suspend()
    with pytest.raises(DeviceRefused, match="suspended"):
        made.renew_value_added(binding, "o2", "o2-1", 1, paid)
    made.reenable()
    with pytest.raises(DeviceRefused, match="no longer bound"):
        made.renew_value_added("gone", "o3", "o3-1", 1, paid)


def test_the_expiring_notice_comes_once_within_the_window() -> None:
    made = device(expires_at=T0 + timedelta(days=10))
    assert made.mark_expiring(T0, days_before=7) is False  # ten days away
    assert made.mark_expiring(T0 + timedelta(days=3), days_before=7) is True
    assert made.mark_expiring(T0 + timedelta(days=4), days_before=7) is False
    assert made.mark_expiring(T0 + timedelta(days=11), days_before=7) is False  # expired now
    made.change_expiry(T0 + timedelta(days=20), "extended")
    assert made.mark_expiring(T0 + timedelta(days=15), days_before=7) is True  # a new expiry


def test_a_suspended_device_gets_no_notices() -> None:
    made = device(expires_at=T0 + timedelta(days=2))
    made.suspend()
    assert made.mark_expiring(T0, 7) is False
    assert made.mark_expired(T0 + timedelta(days=3)) is False


def test_a_type_binding_follows_changes_and_ends() -> None:
    rule = TypeBinding(company_id="c1", device_type="GT06", package_id="RN-1", follow_new=True)
    assert rule.id == TypeBinding.create_id("c1", "GT06")
    rule.end()
    assert rule.active is False
    rule.change(package_id="RN-2", follow_new=True)
    assert (rule.active, rule.package_id) == (True, "RN-2")
