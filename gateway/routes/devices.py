"""HTTP routes: companies and devices (C5, T1, T3, T4, S3).

Excel files travel as themselves: uploads are the raw .xlsx body (Content-Type
application/vnd.openxmlformats-officedocument.spreadsheetml.sheet or
application/octet-stream) or a multipart form with a ``file`` field; downloads answer
the workbook with a Content-Disposition header. The devices service parses and writes
them; here they are only carried (base64 over RPC).
"""

from __future__ import annotations

import base64
from typing import Any

import eventlet
from werkzeug.wrappers import Response

from contracts.rpc import load
from contracts.rpc.devices import (
    MAX_FILE_BYTES,
    XLSX_TYPE,
    BindIn,
    BindOut,
    CompanyFilter,
    CompanyIn,
    CompanyOut,
    DeviceBatchIn,
    DeviceFilter,
    DeviceIn,
    DeviceOut,
    DevicePage,
    ExpiryChangeIn,
    ExpiryHistoryOut,
    ExpiryImportOut,
    ExpiryImportQuery,
    ReasonIn,
    ReenableOut,
    SuspendOut,
    TypeBindingOut,
    UnbindIn,
    UnbindOut,
    ValueAddedAddOut,
    ValueAddedFilter,
    ValueAddedIn,
    ValueAddedPage,
    ValueAddedRemoveIn,
    ValueAddedRemoveOut,
)
from gateway.api import call, endpoint
from services.common.actor import Actor
from services.common.errors import BadRequest

STAFF_DEVICES = ("support", "admin")
SUSPENDERS = ("customer", "support", "admin")
IMPORTERS = ("sales", "support", "admin")
IMPORT_TIMEOUT = 120.0  # a 100,000-row file takes ~10 s; the default RPC deadline is 30 s
UPLOAD_DESCRIPTION = (
    "Send the filled template as the raw request body (Content-Type "
    f"{XLSX_TYPE}) or as multipart/form-data with the field 'file'; at most "
    f"{MAX_FILE_BYTES // (1024 * 1024)} MB. Every row is checked first: if any row is wrong, "
    "nothing changes and the 422 error lists each bad row as fields "
    '"rows.<row>.<column>": [reason]. With dry_run=true the file is only checked.'
)


def _file_refused(why: str) -> BadRequest:
    return BadRequest(f"file: {why}", {"file": [why]})


def uploaded_workbook(request: Any) -> tuple[str, bytes]:
    """The .xlsx of an upload (raw body or multipart ``file``) and its name; the size limit
    is enforced before the body is read whole."""
    limit = MAX_FILE_BYTES
    too_large = f"the file is larger than {limit // (1024 * 1024)} MB"
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        raise _file_refused(too_large)
    if request.mimetype == "multipart/form-data":
        request.max_content_length = limit + 64 * 1024
        upload = request.files.get("file") or next(iter(request.files.values()), None)
        if upload is None:
            raise _file_refused("attach the .xlsx as the form field 'file'")
        content, name = upload.stream.read(limit + 1), upload.filename or "upload.xlsx"
    elif request.mimetype in (XLSX_TYPE, "application/octet-stream"):
        content, name = request.stream.read(limit + 1), "upload.xlsx"
    else:
        raise _file_refused(f"send the .xlsx as {XLSX_TYPE} or multipart/form-data")
    if len(content) > limit:
        raise _file_refused(too_large)
    if not content:
        raise _file_refused("the file is empty")
    return name, content


def workbook_response(answer: dict) -> Response:
    """A file from the devices service (base64 over RPC) as a download."""
    content = base64.b64decode(answer["content"])
    name = answer["file_name"].replace('"', "")
    return Response(
        content,
        mimetype=answer.get("content_type") or XLSX_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(len(content)),
        },
    )


class DevicesRoutes:
    # -- companies -------------------------------------------------------------------------
    @endpoint(
        "GET",
        "/companies",
        "Companies: direct children, or the whole subtree (of yours, or of parent_id)",
        "devices",
        query=CompanyFilter,
        response=CompanyOut,
        many=True,
    )
    def list_companies(self, request: Any, actor: Actor, query: dict) -> Any:
        data = load(CompanyFilter(), query)
        return call(
            self.devices,
            "list_companies",
            actor.to_rpc(),
            data["whole_subtree"],
            data.get("parent_id"),
        )

    @endpoint(
        "POST",
        "/companies",
        "Register a company under a parent in your subtree",
        "devices",
        body=CompanyIn,
        response=CompanyOut,
        status=201,
        roles=("admin",),
    )
    def create_company(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "register_company", actor.to_rpc(), payload)

    @endpoint("GET", "/companies/{company_id}", "One company", "devices", response=CompanyOut)
    def get_company(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.devices, "get_company", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/companies/{company_id}/type-bindings",
        "T3: the device types of a company whose later devices get a renewal package",
        "renewal bindings",
        response=TypeBindingOut,
        many=True,
    )
    def type_bindings(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.devices, "type_bindings", actor.to_rpc(), company_id)

    # -- devices ---------------------------------------------------------------------------
    @endpoint(
        "GET",
        "/devices",
        "Devices of your subtree, filtered and paged",
        "devices",
        query=DeviceFilter,
        response=DevicePage,
    )
    def list_devices(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.devices, "list_devices", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/devices",
        "Register a device",
        "devices",
        body=DeviceIn,
        response=DeviceOut,
        status=201,
        roles=STAFF_DEVICES,
    )
    def create_device(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "register_device", actor.to_rpc(), payload)

    @endpoint("GET", "/devices/{device_id}", "One device", "devices", response=DeviceOut)
    def get_device(self, request: Any, actor: Actor, device_id: str) -> Any:
        return call(self.devices, "get_device", actor.to_rpc(), device_id)

    # -- T1: expiry maintenance ------------------------------------------------------------
    @endpoint(
        "PUT",
        "/devices/{device_id}/expiry",
        "T1: change a device's expiry, with the reason (kept in its history)",
        "expiry",
        body=ExpiryChangeIn,
        response=DeviceOut,
        roles=STAFF_DEVICES,
    )
    def change_expiry(self, request: Any, actor: Actor, device_id: str, payload: dict) -> Any:
        return call(self.devices, "change_expiry", actor.to_rpc(), device_id, payload)

    @endpoint(
        "GET",
        "/devices/{device_id}/expiry-history",
        "T1: every change of a device's expiry: who, when, old, new, why",
        "expiry",
        response=ExpiryHistoryOut,
        many=True,
    )
    def expiry_history(self, request: Any, actor: Actor, device_id: str) -> Any:
        return call(self.devices, "expiry_history", actor.to_rpc(), device_id)

    # -- S3: bulk expiry files -------------------------------------------------------------
    @endpoint(
        "GET",
        "/expiry-imports/template",
        "S3: the .xlsx template for bulk expiry dates (headers, an example, notes)",
        "expiry",
        roles=IMPORTERS,
        description=f"Answers the workbook ({XLSX_TYPE}) as an attachment.",
    )
    def expiry_template(self, request: Any, actor: Actor) -> Any:
        return workbook_response(call(self.devices, "expiry_template", actor.to_rpc()))

    @endpoint(
        "POST",
        "/expiry-imports",
        "S3: upload a filled template; all rows change at once, or none",
        "expiry",
        query=ExpiryImportQuery,
        response=ExpiryImportOut,
        roles=IMPORTERS,
        description=UPLOAD_DESCRIPTION,
    )
    def import_expiry(self, request: Any, actor: Actor, query: dict) -> Any:
        options = load(ExpiryImportQuery(), query)
        name, content = uploaded_workbook(request)
        payload = {
            "file_name": options.get("file_name") or name,
            "content": base64.b64encode(content).decode("ascii"),
            "dry_run": options["dry_run"],
        }
        with eventlet.Timeout(IMPORT_TIMEOUT):
            return self.devices.import_expiry(actor.to_rpc(), payload)

    # -- C5: suspension --------------------------------------------------------------------
    @endpoint(
        "POST",
        "/devices/{device_id}/suspend",
        "C5: suspend a device (it leaves renewals, reminders and auto-renewal)",
        "suspension",
        body=ReasonIn,
        response=SuspendOut,
        roles=SUSPENDERS,
    )
    def suspend_device(self, request: Any, actor: Actor, device_id: str, payload: dict) -> Any:
        return call(self.devices, "suspend_device", actor.to_rpc(), device_id, payload)

    @endpoint(
        "POST",
        "/devices/{device_id}/reenable",
        "C5: re-enable a suspended device",
        "suspension",
        body=ReasonIn,
        response=ReenableOut,
        roles=SUSPENDERS,
    )
    def reenable_device(self, request: Any, actor: Actor, device_id: str, payload: dict) -> Any:
        return call(self.devices, "reenable_device", actor.to_rpc(), device_id, payload)

    @endpoint(
        "POST",
        "/suspensions",
        "C5: suspend a batch of devices (ids as a list or pasted text); all or nothing",
        "suspension",
        body=DeviceBatchIn,
        response=SuspendOut,
        roles=SUSPENDERS,
        description="Unknown or out-of-scope ids refuse the whole batch and are listed.",
    )
    def suspend_devices(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "suspend_devices", actor.to_rpc(), payload)

    @endpoint(
        "POST",
        "/reenablements",
        "C5: re-enable a batch of devices; all or nothing",
        "suspension",
        body=DeviceBatchIn,
        response=ReenableOut,
        roles=SUSPENDERS,
    )
    def reenable_devices(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "reenable_devices", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/suspended-devices",
        "C5: suspended devices of your subtree, latest first",
        "suspension",
        query=DeviceFilter,
        response=DevicePage,
    )
    def suspended_devices(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.devices, "list_devices", actor.to_rpc(), {**query, "status": "suspended"})

    # -- T3: renewal bindings --------------------------------------------------------------
    @endpoint(
        "POST",
        "/renewal-bindings",
        "T3: bind a renewal package to devices, or to a device type of a company",
        "renewal bindings",
        body=BindIn,
        response=BindOut,
        roles=STAFF_DEVICES,
        description="Give device_ids, or company_id and device_type (with follow_new, "
        "devices of that type registered later are bound too). All or nothing.",
    )
    def bind_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "bind_package", actor.to_rpc(), payload)

    @endpoint(
        "POST",
        "/renewal-bindings/unbind",
        "T3: unbind the renewal package of devices, or of a device type of a company",
        "renewal bindings",
        body=UnbindIn,
        response=UnbindOut,
        roles=STAFF_DEVICES,
    )
    def unbind_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "unbind_package", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/renewal-bindings/export",
        "T3: the filtered devices with their bindings as an Excel workbook (.xlsx)",
        "renewal bindings",
        query=DeviceFilter,
        roles=(*STAFF_DEVICES, "sales"),
        description="The same filters as GET /devices (bound=true|false for bound or "
        f"unbound devices); answers {XLSX_TYPE} as an attachment.",
    )
    def export_bindings(self, request: Any, actor: Actor, query: dict) -> Any:
        with eventlet.Timeout(IMPORT_TIMEOUT):
            answer = self.devices.export_bindings(actor.to_rpc(), query)
        return workbook_response(answer)

    # -- T4: value-added bindings ----------------------------------------------------------
    @endpoint(
        "POST",
        "/value-added-bindings",
        "T4: add a value-added package to devices with a renewal package",
        "value-added bindings",
        body=ValueAddedIn,
        response=ValueAddedAddOut,
        roles=STAFF_DEVICES,
    )
    def add_value_added(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "add_value_added", actor.to_rpc(), payload)

    @endpoint(
        "POST",
        "/value-added-bindings/remove",
        "T4: remove value-added packages (by binding id)",
        "value-added bindings",
        body=ValueAddedRemoveIn,
        response=ValueAddedRemoveOut,
        roles=STAFF_DEVICES,
    )
    def remove_value_added(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.devices, "remove_value_added", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/value-added-bindings",
        "T4: value-added bindings of your subtree, filtered and paged",
        "value-added bindings",
        query=ValueAddedFilter,
        response=ValueAddedPage,
    )
    def list_value_added(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.devices, "list_value_added", actor.to_rpc(), query)
