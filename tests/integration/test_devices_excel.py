"""S3 bulk expiry files and T3 exports on a real PostgreSQL store: the template, a good
file applied atomically, a bad file refused whole with every bad row reported, files that
must never reach the XML parser, and exports whose cells cannot run as formulas."""

from __future__ import annotations

import csv
import io
import random
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from services.common import clock
from services.common.actor import SYSTEM
from services.common.errors import BadRequest, Forbidden, ValidationFailed
from services.devices import excel
from services.devices.application import DevicesApplication
from services.devices.domain import device_key
from tests.conftest import new_pg_store
from tests.integration.test_devices import CATALOG, T0, Tree, state

pytestmark = pytest.mark.integration

LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.fixture(scope="module")
def app() -> Iterator[DevicesApplication]:
    application = DevicesApplication(config=new_pg_store("devices"))
    yield application
    application.close()


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> clock.FixedClock:
    fixed = clock.FixedClock(T0)
    monkeypatch.setattr(clock, "clock", fixed)
    return fixed


@pytest.fixture
def tree(app: DevicesApplication) -> Tree:
    return Tree(app)


def workbook(rows: list[list], headers: tuple = excel.HEADERS, date_cells: bool = True) -> bytes:
    """A filled template as a user's Excel would save it."""
    book = Workbook()
    sheet = book.active
    sheet.title = "expiry"
    sheet.append(list(headers))
    for row in rows:
        sheet.append(row)
    if date_cells:
        for cell in sheet["B"][1:]:
            if isinstance(cell.value, (datetime, date)):
                cell.number_format = "yyyy-mm-dd"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def history(app: DevicesApplication, device_id: str) -> list[tuple]:
    return [
        (h["old_expires_at"], h["new_expires_at"], h["reason"], h["source"])
        for h in app.expiry_history(SYSTEM, device_id)
    ]


# -- the template ---------------------------------------------------------------------------
def test_the_template_has_headers_an_example_and_notes(app) -> None:
    book = load_workbook(io.BytesIO(app.expiry_template()))
    assert book.sheetnames == ["expiry", "notes"]
    rows = list(book["expiry"].iter_rows(values_only=True))
    assert rows[0] == excel.HEADERS
    assert rows[1][0] == "860000000000001" and isinstance(rows[1][1], datetime)
    notes = " ".join(str(v) for row in book["notes"].iter_rows(values_only=True) for v in row if v)
    assert "nothing changes" in notes and "UTC" in notes
    # the template, filled in as shipped, reads back as one row
    parsed = excel.read_expiry_file(app.expiry_template())
    assert [(r.row, r.device_id, r.expires_at) for r in parsed.rows] == [
        (2, "860000000000001", datetime(2027, 12, 31, tzinfo=UTC))
    ]


# -- a good file ----------------------------------------------------------------------------
def test_a_good_file_changes_every_row_at_once(app, tree: Tree) -> None:
    devices = [tree.device(tree.a, days=10) for _ in range(4)]
    numeric = str(random.randrange(10**14, 10**15))  # an IMEI typed into a number cell
    devices.insert(2, tree.device(tree.a, days=10, device_id=numeric))
    same = tree.device(tree.a1, days=20)
    content = workbook(
        [
            [devices[0], datetime(2027, 1, 31), "contract 2027"],  # a real Excel date
            [devices[1].lower(), "2027-02-28", None],  # ISO text, id in small letters
            [int(numeric), "2027-03-01T08:30:00+08:00", "x"],
            [None, None, None],  # blank rows are skipped
            [devices[3], 46417, "serial"],  # a date cell that lost its format: 2027-01-30
            [],
            [devices[4], date(2027, 5, 1), "date only"],
            [same, T0.replace(tzinfo=None) + timedelta(days=20), "unchanged"],
        ]
    )
    result = app.import_expiry(tree.actor("sales", tree.dealer), "fleet.xlsx", content)
    assert {k: result[k] for k in ("rows", "blank_rows", "changed", "unchanged")} == {
        "rows": 6,
        "blank_rows": 2,
        "changed": 5,
        "unchanged": 1,
    }
    expected = [
        datetime(2027, 1, 31, tzinfo=UTC),
        datetime(2027, 2, 28, tzinfo=UTC),
        datetime(2027, 3, 1, 0, 30, tzinfo=UTC),
        datetime(2027, 1, 30, tzinfo=UTC),
        datetime(2027, 5, 1, tzinfo=UTC),
    ]
    assert [app.device(SYSTEM, d)["expires_at"] for d in devices] == expected
    assert history(app, devices[0]) == [
        (T0 + timedelta(days=10), expected[0], "contract 2027", "bulk_import")
    ]
    assert history(app, devices[1])[0][2] == "bulk import"  # no reason given
    assert history(app, same) == []
    entry = app.expiry_history(SYSTEM, devices[0])[0]
    assert (entry["reference"], entry["actor"]) == (result["import_id"], f"sales@{tree.dealer[:6]}")
    # the device itself (not only the view) has the new expiry
    assert app.repository.get(device_key(devices[2])).expires_at == expected[2]


def test_a_dry_run_checks_and_changes_nothing(app, tree: Tree) -> None:
    device_id = tree.device(tree.a)
    before = state(app, device_id)
    result = app.import_expiry(
        SYSTEM, "f.xlsx", workbook([[device_id, "2028-01-01", None]]), dry_run=True
    )
    assert (result["changed"], result["import_id"], result["dry_run"]) == (1, None, True)
    assert state(app, device_id) == before


# -- a bad file -----------------------------------------------------------------------------
def test_a_file_with_any_bad_row_changes_nothing_and_reports_every_bad_row(app, tree: Tree) -> None:
    good = [tree.device(tree.a) for _ in range(3)]
    foreign = tree.device(tree.b)
    before = state(app, *good, foreign)
    content = workbook(
        [
            [good[0], "2027-01-01", "ok"],  # row 2
            [good[1], "31/12/2027", "not ISO"],  # row 3
            ["86NOSUCHDEVICE01", "2027-01-01", None],  # row 4
            [foreign, "2027-01-01", None],  # row 5: another company's device
            [good[0], "2027-02-01", None],  # row 6: a duplicate of row 2
            [None, "2027-01-01", "no id"],  # row 7
            [good[2], None, "no date"],  # row 8
            [good[1], "2150-01-01", None],  # row 9: a duplicate, and a date out of range
            ["bad id!", "yesterday", "x" * 501],  # row 10
        ]
    )
    with pytest.raises(ValidationFailed) as refused:
        app.import_expiry(tree.actor("support", tree.a), "bad.xlsx", content)
    assert refused.value.fields == {
        "rows.3.expires_at": ["not a date: use an Excel date or ISO text such as 2027-12-31"],
        "rows.4.device_id": ["no such device in your company and its subsidiaries"],
        "rows.5.device_id": ["no such device in your company and its subsidiaries"],
        "rows.6.device_id": ["duplicate of row 2"],
        "rows.7.device_id": ["required"],
        "rows.8.expires_at": ["required"],
        "rows.9.device_id": ["duplicate of row 3"],
        "rows.9.expires_at": ["must lie between 2000-01-01 and 2100-01-01"],
        "rows.10.device_id": ["must be 4 to 32 letters, digits or -"],
        "rows.10.expires_at": ["not a date: use an Excel date or ISO text such as 2027-12-31"],
        "rows.10.reason": ["at most 500 characters"],
    }
    assert "8 rows" in refused.value.message and "nothing was changed" in refused.value.message
    assert state(app, *good, foreign) == before
    assert all(history(app, d) == [] for d in good)


def test_an_out_of_range_date_is_reported_for_its_row(app, tree: Tree) -> None:
    device_id = tree.device(tree.a)
    with pytest.raises(ValidationFailed) as refused:
        app.import_expiry(SYSTEM, "f.xlsx", workbook([[device_id, "2150-01-01", None]]))
    assert list(refused.value.fields) == ["rows.2.expires_at"]


def test_only_sales_support_and_admin_import(app, tree: Tree) -> None:
    device_id = tree.device(tree.a)
    with pytest.raises(Forbidden):
        app.import_expiry(
            tree.actor("customer", tree.a), "f.xlsx", workbook([[device_id, "2027-01-01", None]])
        )


def test_a_device_changed_during_the_import_is_read_again(app, tree: Tree) -> None:
    """The import writes each device's next version from the device list; if a device
    changed after the list was read, the save collides and the import reads it again."""
    device_id = tree.device(tree.a, days=10)
    device = app.repository.get(device_key(device_id))
    device.suspend("meanwhile")
    app.events.put(device.collect_events())  # stored, but the list is not caught up yet
    result = app.import_expiry(SYSTEM, "f.xlsx", workbook([[device_id, "2027-07-01", None]]))
    assert result["changed"] == 1
    stored = app.repository.get(device_key(device_id))
    assert (stored.suspended, stored.expires_at) == (True, datetime(2027, 7, 1, tzinfo=UTC))
    assert app.device(SYSTEM, device_id)["status"] == "suspended"


# -- files refused before parsing -----------------------------------------------------------
def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


def _refusal(app, content: bytes) -> str:
    with pytest.raises(BadRequest) as refused:
        app.import_expiry(SYSTEM, "f", content)
    return (
        refused.value.fields["file"][0]
        if "file" in refused.value.fields
        else str(refused.value.fields)
    )


def test_unsafe_or_foreign_files_are_refused(app, monkeypatch: pytest.MonkeyPatch) -> None:
    good = workbook([["86000000000000001", "2027-01-01", None]])
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    macro = _zip({**parts, "xl/vbaProject.bin": b"\x00" * 64})
    assert "macros" in _refusal(app, macro)
    types = parts["[Content_Types].xml"].replace(
        b"spreadsheetml.sheet.main+xml", b"ms-excel.sheet.macroEnabled.main+xml"
    )
    assert "macros" in _refusal(app, _zip({**parts, "[Content_Types].xml": types}))
    assert "not an .xlsx" in _refusal(app, b"device_id,expires_at\n1,2027-01-01\n")
    assert "not an .xlsx" in _refusal(app, _zip({"word/document.xml": b"<w/>"}))
    assert "empty" in _refusal(app, b"")
    bomb = _zip({**parts, "xl/media/padding.xml": b" " * (excel.MAX_UNPACKED + 1)})
    assert "unpacks" in _refusal(app, bomb)
    monkeypatch.setattr(excel, "MAX_BYTES", len(good) - 1)
    assert "larger than" in _refusal(app, good)


def test_a_file_with_a_doctype_is_not_expanded(app) -> None:
    """XML entity tricks (billion laughs) are refused by defusedxml, not expanded."""
    good = workbook([["86000000000000001", "2027-01-01", None]])
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    )
    sheet = parts["xl/worksheets/sheet1.xml"]
    poisoned = laughs + sheet[sheet.index(b"<worksheet") :].replace(b"<v>", b"<v>&b;", 1)
    with pytest.raises(BadRequest) as refused:
        app.import_expiry(SYSTEM, "f", _zip({**parts, "xl/worksheets/sheet1.xml": poisoned}))
    assert "DTD or entities" in refused.value.fields["file"][0]


def test_a_file_without_the_template_headers_is_refused(app) -> None:
    with pytest.raises(BadRequest) as refused:
        app.import_expiry(SYSTEM, "f", workbook([["x", "2027-01-01"]], headers=("IMEI", "date")))
    assert "rows.1" in refused.value.fields


# -- T3 export ------------------------------------------------------------------------------
def test_the_bindings_export_lists_the_filtered_devices_as_text(app, tree: Tree) -> None:
    bound = tree.device(tree.a, device_type='=HYPERLINK("http://x","click")')
    unbound = tree.device(tree.a, device_type="+SUM(1,2)")
    app.bind_package(SYSTEM, {"package_id": "RN-1", "device_ids": [bound]}, CATALOG)
    name, content = app.export_bindings(tree.actor("support", tree.a), {"company_id": tree.a})
    assert name.endswith(".xlsx")
    sheet = load_workbook(io.BytesIO(content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Device ID", "Device type", "Company", "Status")
    by_id = {r[0]: r for r in rows[1:]}
    assert set(by_id) == {bound, unbound}
    assert by_id[bound][1] == '\'=HYPERLINK("http://x","click")'  # text, never a formula
    assert by_id[unbound][1] == "'+SUM(1,2)"
    assert (by_id[bound][5], by_id[bound][6], by_id[unbound][5]) == ("RN-1", "device", None)
    assert by_id[bound][4] == (T0 + timedelta(days=100)).replace(tzinfo=None)
    assert all(c.data_type != "f" for row in sheet.iter_rows() for c in row)
    only_unbound = app.export_bindings(SYSTEM, {"company_id": tree.a, "bound": False})[1]
    rows = list(load_workbook(io.BytesIO(only_unbound)).active.iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [unbound]


def _to_csv(content: bytes, tmp_path: Path, name: str) -> list[list[str]]:
    source = tmp_path / f"{name}.xlsx"
    source.write_bytes(content)
    subprocess.run(
        [LIBREOFFICE, "--headless", "--convert-to", "csv", "--outdir", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
        timeout=120,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    with open(tmp_path / f"{name}.csv", newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


@pytest.mark.skipif(
    LIBREOFFICE is None, reason="LibreOffice is not installed (apt install libreoffice-calc)"
)
def test_libreoffice_opens_the_template_and_the_export(app, tree: Tree, tmp_path: Path) -> None:
    template = _to_csv(app.expiry_template(), tmp_path, "template")
    assert template[0] == list(excel.HEADERS)
    assert template[1][0] == "860000000000001" and template[1][1].startswith("2027-12-31")
    device_id = tree.device(tree.a, device_type="=1+2")
    exported = _to_csv(app.export_bindings(SYSTEM, {"company_id": tree.a})[1], tmp_path, "export")
    assert exported[0][0] == "Device ID"
    row = next(r for r in exported if r[0] == device_id)
    assert row[1] == "'=1+2"  # shown as the text it is, not computed to 3
