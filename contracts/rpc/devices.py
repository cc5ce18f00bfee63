"""Devices RPC and HTTP payloads."""

import os

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from contracts.events.devices import REGIONS
from contracts.fields import Timestamp
from contracts.rpc import Request

DEVICE_ID = validate.Regexp(r"^[0-9A-Za-z-]{4,32}$", error="must be 4 to 32 letters, digits or -")
MAX_BATCH = 50_000
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# the largest .xlsx upload (S3); the gateway refuses a larger body before reading it
MAX_FILE_BYTES = int(os.environ.get("IOTB_XLSX_MAX_BYTES") or 20 * 1024 * 1024)
STATUSES = ("active", "expired", "suspended")


def _device_ids(**kwargs: object) -> fields.List:
    return fields.List(
        fields.String(validate=DEVICE_ID),
        validate=validate.Length(min=1, max=MAX_BATCH),
        **kwargs,
    )


def _reason(**kwargs: object) -> fields.String:
    return fields.String(validate=validate.Length(max=500), **kwargs)


# -- companies ------------------------------------------------------------------------------
class CompanyIn(Request):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    parent_id = fields.String(required=True, allow_none=True)
    region = fields.String(required=True, validate=validate.OneOf(REGIONS))


class CompanyOut(Schema):
    company_id = fields.String()
    parent_id = fields.String(allow_none=True)
    name = fields.String()
    region = fields.String()


class CompanyFilter(Request):
    whole_subtree = fields.Boolean(load_default=False)
    parent_id = fields.String(metadata={"description": "list under this company of your subtree"})


# -- devices --------------------------------------------------------------------------------
class DeviceIn(Request):
    device_id = fields.String(required=True, validate=DEVICE_ID)
    device_type = fields.String(required=True, validate=validate.Length(min=1, max=100))
    company_id = fields.String(required=True)
    expires_at = Timestamp(required=True)


class ValueAddedOut(Schema):
    binding_id = fields.String()
    package_id = fields.String()
    expires_at = Timestamp()
    status = fields.String(metadata={"description": "active or expired (its own expiry)"})


class DeviceOut(Schema):
    device_id = fields.String()
    device_type = fields.String()
    company_id = fields.String()
    expires_at = Timestamp()
    status = fields.String(metadata={"description": "active, expired or suspended"})
    package_id = fields.String(allow_none=True, metadata={"description": "renewal package"})
    bound_by_device_type = fields.Boolean()
    suspended_at = Timestamp(allow_none=True)
    suspension_reason = fields.String(allow_none=True)
    registered_at = Timestamp()
    value_added = fields.List(fields.Nested(ValueAddedOut))


class DeviceFilter(Request):
    company_id = fields.String()
    include_subsidiaries = fields.Boolean(
        metadata={"description": "with company_id: its subsidiaries' devices too"}
    )
    status = fields.String(validate=validate.OneOf(STATUSES))
    device_type = fields.String()
    package_id = fields.String()
    bound = fields.Boolean(metadata={"description": "has a renewal package bound or not"})
    has_value_added = fields.Boolean()
    expires_from = Timestamp()
    expires_to = Timestamp()
    expires_within_days = fields.Integer(strict=False, validate=validate.Range(min=0, max=3650))
    q = fields.String(validate=validate.Length(max=32), metadata={"description": "id contains"})
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class DevicePage(Schema):
    items = fields.List(fields.Nested(DeviceOut))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()


class BindingsExportFilter(DeviceFilter):
    pass


# -- T1 / S3: expiry ------------------------------------------------------------------------
class ExpiryChangeIn(Request):
    expires_at = Timestamp(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class ExpiryHistoryOut(Schema):
    device_id = fields.String()
    changed_at = Timestamp()
    actor = fields.String(allow_none=True)
    old_expires_at = Timestamp()
    new_expires_at = Timestamp()
    reason = fields.String(allow_none=True)
    source = fields.String(metadata={"description": "manual, bulk_import or renewal"})
    reference = fields.String(allow_none=True, metadata={"description": "import or order id"})


class ExpiryImportIn(Request):
    """An .xlsx file as base64 (the gateway takes the raw upload and encodes it)."""

    file_name = fields.String(load_default="expiry.xlsx", validate=validate.Length(max=300))
    content = fields.String(required=True)
    dry_run = fields.Boolean(load_default=False)


class ExpiryImportQuery(Request):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "check only"})
    file_name = fields.String(validate=validate.Length(max=300))


class ExpiryImportOut(Schema):
    import_id = fields.String(allow_none=True)
    file_name = fields.String()
    rows = fields.Integer()
    blank_rows = fields.Integer()
    changed = fields.Integer()
    unchanged = fields.Integer()
    dry_run = fields.Boolean()


class FileOut(Schema):
    file_name = fields.String()
    content_type = fields.String()
    content = fields.String(metadata={"description": "base64"})


# -- C5: suspension -------------------------------------------------------------------------
class ReasonIn(Request):
    reason = _reason(load_default=None, allow_none=True)


class DeviceBatchIn(Request):
    """Device ids as a list, or pasted text (spaces, new lines, commas or semicolons)."""

    device_ids = _device_ids()
    text = fields.String(validate=validate.Length(max=MAX_BATCH * 40))
    reason = _reason(load_default=None, allow_none=True)

    @validates_schema
    def _some_ids(self, data: dict, **_: object) -> None:
        if not data.get("device_ids") and not (data.get("text") or "").strip():
            raise ValidationError("give device_ids or pasted text", "device_ids")


class SuspendOut(Schema):
    suspended = fields.List(fields.String())
    already_suspended = fields.List(fields.String())


class ReenableOut(Schema):
    reenabled = fields.List(fields.String())
    not_suspended = fields.List(fields.String())


# -- T3: renewal bindings -------------------------------------------------------------------
class _ByDevicesOrType(Request):
    device_ids = _device_ids()
    company_id = fields.String()
    device_type = fields.String(validate=validate.Length(min=1, max=100))

    @validates_schema
    def _devices_or_type(self, data: dict, **_: object) -> None:
        by_type = data.get("company_id") and data.get("device_type")
        if bool(data.get("device_ids")) == bool(by_type):
            raise ValidationError(
                "give device_ids, or company_id and device_type (not both)", "device_ids"
            )


class BindIn(_ByDevicesOrType):
    package_id = fields.String(required=True)
    follow_new = fields.Boolean(
        load_default=True,
        metadata={"description": "by device type: devices registered later are bound too"},
    )


class BindOut(Schema):
    package_id = fields.String()
    bound = fields.List(fields.String())
    changed = fields.Integer()
    company_id = fields.String()
    device_type = fields.String()
    follow_new = fields.Boolean()


class UnbindIn(_ByDevicesOrType):
    pass


class UnbindOut(Schema):
    unbound = fields.List(fields.String())


class TypeBindingFilter(Request):
    company_id = fields.String(required=True)


class TypeBindingOut(Schema):
    rule_id = fields.String()
    company_id = fields.String()
    device_type = fields.String()
    package_id = fields.String()
    follow_new = fields.Boolean()
    active = fields.Boolean()
    changed_at = Timestamp()


# -- T4: value-added bindings ---------------------------------------------------------------
class ValueAddedIn(Request):
    package_id = fields.String(required=True)
    device_ids = _device_ids(required=True)
    expires_at = Timestamp(
        load_default=None,
        allow_none=True,
        metadata={"description": "the binding's own expiry; default now (bought later)"},
    )


class ValueAddedBindingOut(Schema):
    device_id = fields.String()
    binding_id = fields.String()
    new = fields.Boolean()
    expires_at = Timestamp()


class ValueAddedAddOut(Schema):
    package_id = fields.String()
    bindings = fields.List(fields.Nested(ValueAddedBindingOut))


class ValueAddedRemoveIn(Request):
    binding_ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)),
        required=True,
        validate=validate.Length(min=1, max=MAX_BATCH),
    )


class ValueAddedRemoveOut(Schema):
    removed = fields.List(fields.String())


class ValueAddedFilter(Request):
    company_id = fields.String()
    include_subsidiaries = fields.Boolean()
    package_id = fields.String()
    device_type = fields.String()
    q = fields.String(validate=validate.Length(max=32))
    status = fields.String(validate=validate.OneOf(("active", "expired")))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class ValueAddedItem(Schema):
    binding_id = fields.String()
    device_id = fields.String()
    device_type = fields.String()
    company_id = fields.String()
    package_id = fields.String()
    expires_at = Timestamp()
    bound_at = Timestamp()
    binding_status = fields.String(metadata={"description": "active or expired"})
    status = fields.String(metadata={"description": "suspended, or the binding status"})


class ValueAddedPage(Schema):
    items = fields.List(fields.Nested(ValueAddedItem))
    total = fields.Integer()
    page = fields.Integer()
    per_page = fields.Integer()
