"""Events of the devices service: the company tree and the device lifecycle.

Every device event names the device (``device_id``, the IMEI) and its owner
(``company_id``); the envelope's ``subject`` is the device id and its ``sequence`` the
device's version, so a subscriber can order one device's events and drop stale ones.
"""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency, Timestamp

REGIONS = ("china", "other")
EXPIRY_SOURCES = ("manual", "bulk_import")


@event("devices", "company_registered", 1)
class CompanyRegisteredV1(PayloadSchema):
    company_id = fields.String(required=True)
    parent_id = fields.String(allow_none=True, required=True)
    name = fields.String(required=True)
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))


class DeviceFields(PayloadSchema):
    device_id = fields.String(required=True)
    company_id = fields.String(required=True)


@event("devices", "device_registered", 1)
class DeviceRegisteredV1(DeviceFields):
    device_type = fields.String(required=True)
    expires_at = Timestamp(required=True)


@event("devices", "device_expiry_changed", 1)
class DeviceExpiryChangedV1(DeviceFields):
    """T1 (by hand, ``source`` manual) or S3 (a bulk file, ``source`` bulk_import)."""

    old_expires_at = Timestamp(required=True)
    new_expires_at = Timestamp(required=True)
    reason = fields.String(allow_none=True, load_default=None)
    source = fields.String(required=True, validate=validate.OneOf(EXPIRY_SOURCES))


@event("devices", "device_expiring", 1)
class DeviceExpiringV1(DeviceFields):
    """The expiry is ``days_before`` days away or less: the reminders' trigger (once per
    expiry; never for a suspended device)."""

    expires_at = Timestamp(required=True)
    days_before = fields.Integer(required=True)
    package_id = fields.String(allow_none=True, load_default=None)


@event("devices", "device_expired", 1)
class DeviceExpiredV1(DeviceFields):
    """The device passed its expiry (once per expiry; never for a suspended device)."""

    expires_at = Timestamp(required=True)
    package_id = fields.String(allow_none=True, load_default=None)


@event("devices", "device_renewed", 1)
class DeviceRenewedV1(DeviceFields):
    order_id = fields.String(required=True)
    line_id = fields.String(required=True)
    months = fields.Integer(required=True, validate=validate.Range(min=1))
    old_expires_at = Timestamp(required=True)
    new_expires_at = Timestamp(required=True)


@event("devices", "device_suspended", 1)
class DeviceSuspendedV1(DeviceFields):
    reason = fields.String(allow_none=True, load_default=None)


@event("devices", "device_reenabled", 1)
class DeviceReenabledV1(DeviceFields):
    reason = fields.String(allow_none=True, load_default=None)


@event("devices", "package_bound", 1)
class PackageBoundV1(DeviceFields):
    """A renewal package is bound to the device (replacing ``previous_package_id``)."""

    package_id = fields.String(required=True)
    previous_package_id = fields.String(allow_none=True, load_default=None)
    by_device_type = fields.Boolean(load_default=False)


@event("devices", "package_unbound", 1)
class PackageUnboundV1(DeviceFields):
    package_id = fields.String(required=True)


@event("devices", "value_added_bound", 1)
class ValueAddedBoundV1(DeviceFields):
    package_id = fields.String(required=True)
    binding_id = fields.String(required=True)
    expires_at = Timestamp(required=True)


@event("devices", "value_added_unbound", 1)
class ValueAddedUnboundV1(DeviceFields):
    package_id = fields.String(required=True)
    binding_id = fields.String(required=True)


@event("devices", "value_added_renewed", 1)
class ValueAddedRenewedV1(DeviceFields):
    """A paid value-added order line extended one value-added binding."""

    package_id = fields.String(required=True)
    binding_id = fields.String(required=True)
    order_id = fields.String(required=True)
    line_id = fields.String(required=True)
    months = fields.Integer(required=True, validate=validate.Range(min=1))
    old_expires_at = Timestamp(required=True)
    new_expires_at = Timestamp(required=True)


class AppliedLine(PayloadSchema):
    line_id = fields.String(required=True)
    device_id = fields.String(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(("renewed", "refused")))
    reason = fields.String(allow_none=True, load_default=None)
    months = fields.Integer(required=True)
    amount = Amount(required=True)
    old_expires_at = Timestamp(allow_none=True, load_default=None)
    new_expires_at = Timestamp(allow_none=True, load_default=None)
    binding_id = fields.String(allow_none=True, load_default=None)  # value-added lines


@event("devices", "renewal_applied", 1)
class RenewalAppliedV1(PayloadSchema):
    """One paid order carried out on the devices: what moved, and what was refused (a
    suspended device, an unknown one) so billing can refund those lines to balance."""

    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    company_id = fields.String(required=True)
    currency = Currency(required=True)
    total = Amount(required=True)
    paid_at = Timestamp(required=True)
    lines = fields.List(fields.Nested(AppliedLine), required=True)
