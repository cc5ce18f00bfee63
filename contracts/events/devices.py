"""Events of the devices service: company tree and device lifecycle."""

from marshmallow import fields, validate

from contracts.envelope import PayloadSchema, event
from contracts.fields import Amount, Currency, Timestamp

REGIONS = ("china", "other")


@event("devices", "company_registered", 1)
class CompanyRegisteredV1(PayloadSchema):
    company_id = fields.String(required=True)
    parent_id = fields.String(allow_none=True, required=True)
    name = fields.String(required=True)
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))


@event("devices", "device_registered", 1)
class DeviceRegisteredV1(PayloadSchema):
    device_id = fields.String(required=True)
    device_type = fields.String(required=True)
    company_id = fields.String(required=True)
    expires_at = Timestamp(required=True)


@event("devices", "package_bound", 1)
class PackageBoundV1(PayloadSchema):
    device_id = fields.String(required=True)
    company_id = fields.String(required=True)
    package_id = fields.String(required=True)
    previous_package_id = fields.String(allow_none=True, load_default=None)


@event("devices", "device_expired", 1)
class DeviceExpiredV1(PayloadSchema):
    device_id = fields.String(required=True)
    company_id = fields.String(required=True)
    expires_at = Timestamp(required=True)
    package_id = fields.String(allow_none=True, load_default=None)


@event("devices", "device_renewed", 1)
class DeviceRenewedV1(PayloadSchema):
    device_id = fields.String(required=True)
    company_id = fields.String(required=True)
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


@event("devices", "renewal_applied", 1)
class RenewalAppliedV1(PayloadSchema):
    """One paid order carried out on the devices: what moved, and what was refused."""

    order_id = fields.String(required=True)
    order_number = fields.String(required=True)
    company_id = fields.String(required=True)
    currency = Currency(required=True)
    total = Amount(required=True)
    paid_at = Timestamp(required=True)
    lines = fields.List(fields.Nested(AppliedLine), required=True)
