"""Reading and writing the devices service's Excel files, its contracts and the gateway's
upload handling - all in memory (no database, no broker)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, date, datetime, time

import pytest
from marshmallow import ValidationError
from openpyxl import Workbook, load_workbook
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from contracts.envelope import dump_payload, parse
from contracts.rpc.devices import XLSX_TYPE, BindIn, DeviceBatchIn, UnbindIn
from gateway.routes.devices import uploaded_workbook, workbook_response
from services.common.errors import BadRequest
from services.devices import excel
from services.devices.application import pasted_ids
from services.devices.xlsx_reader import Workbook as SheetReader

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def package(
    sheet: str, strings: str | None = None, workbook_pr: str = "", prefix: str = ""
) -> bytes:
    """A minimal .xlsx written by hand, the way other spreadsheet programs write them."""
    p = f"{prefix}:" if prefix else ""
    ns = f'xmlns{":" + prefix if prefix else ""}="{MAIN}"'
    parts = {
        "[Content_Types].xml": b"<Types/>",
        "xl/workbook.xml": (
            f'<{p}workbook {ns} xmlns:r="{RELS}">{workbook_pr}<{p}sheets>'
            f'<{p}sheet name="Sheet1" sheetId="1" r:id="rId1"/></{p}sheets></{p}workbook>'
        ).encode(),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{RELS}/worksheet" Target="worksheets/sheet1.xml"/>'
            + (
                f'<Relationship Id="rId2" Type="{RELS}/sharedStrings" Target="/xl/strings.xml"/>'
                if strings
                else ""
            )
            + "</Relationships>"
        ).encode(),
        "xl/worksheets/sheet1.xml": f"<{p}worksheet {ns}><{p}sheetData>{sheet}</{p}sheetData></{p}worksheet>".encode(),
    }
    if strings:
        parts["xl/strings.xml"] = f'<sst xmlns="{MAIN}">{strings}</sst>'.encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    return out.getvalue()


def rows_of(content: bytes, columns: int = 3) -> list[tuple[int, list]]:
    found: list[tuple[int, list]] = []
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        book = SheetReader(archive)
        book.read_rows(book.order[0], columns, lambda n, values: found.append((n, list(values))))
    return found


# -- the sheet reader ---------------------------------------------------------------------
def test_the_reader_takes_every_kind_of_cell_and_only_the_first_columns() -> None:
    strings = (
        "<si><t>device_id</t></si>"
        "<si><r><t>86000</t></r><r><t>0000000001</t></r><rPh><t>furigana</t></rPh></si>"
    )
    sheet = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>expires_at</t></is></c></row>'
        '<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2" s="1"><v>46387.5</v></c>'
        '<c r="C2" t="str"><f>CONCAT("a","b")</f><v>ab</v></c><c r="D2"><v>99</v></c></row>'
        '<row r="5"><c r="A5"><v>860000000000002</v></c><c r="B5" t="b"><v>1</v></c><c r="C5" t="e"><v>#N/A</v></c></row>'
        "<row><c><v>1</v></c><c/><c><v>3</v></c></row>"  # no references: counted on
        '<row r="9"><c r="AA9"><v>far right</v></c></row>'  # nothing in the first columns
    )
    assert rows_of(package(sheet, strings)) == [
        (1, ["device_id", "expires_at", None]),
        (2, ["860000000000001", 46387.5, "ab"]),
        (5, [860000000000002, True, "#N/A"]),
        (6, [1, None, 3]),
    ]


def test_the_reader_understands_prefixed_xml_and_the_1904_date_system() -> None:
    content = package(
        '<x:row r="1"><x:c r="A1" t="inlineStr"><x:is><x:t>a</x:t></x:is></x:c></x:row>',
        workbook_pr='<x:workbookPr date1904="1"/>',
        prefix="x",
    )
    assert rows_of(content) == [(1, ["a", None, None])]
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert SheetReader(archive).epoch == datetime(1904, 1, 1)


def test_the_reader_refuses_a_dtd_before_expanding_anything() -> None:
    laughs = '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    content = package('<row r="1"><c r="A1" t="inlineStr"><is><t>&b;</t></is></c></row>')
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        parts = {n: archive.read(n) for n in archive.namelist()}
    parts["xl/worksheets/sheet1.xml"] = laughs.encode() + parts["xl/worksheets/sheet1.xml"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)
    with pytest.raises(BadRequest) as refused:
        excel.read_expiry_file(out.getvalue())
    assert "DTD or entities" in refused.value.fields["file"][0]


# -- the expiry file ----------------------------------------------------------------------
def filled(rows: list[list], headers: tuple = excel.HEADERS) -> bytes:
    book = Workbook()
    book.active.append(list(headers))
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_rows_are_parsed_and_cell_errors_collected() -> None:
    parsed = excel.read_expiry_file(
        filled(
            [
                ["86a-1", datetime(2027, 1, 1, 8), None],
                [],
                [None, None, "   "],
                ["x", "2027-13-01", "y" * 501],
            ]
        )
    )
    assert [(r.row, r.device_id, r.expires_at, r.reason) for r in parsed.rows] == [
        (2, "86A-1", datetime(2027, 1, 1, 8, tzinfo=UTC), None)
    ]
    assert parsed.blank_rows == 2
    assert [(e.row, e.column) for e in parsed.errors] == [
        (5, "device_id"),
        (5, "expires_at"),
        (5, "reason"),
    ]
    assert parsed.ids == [(2, "86A-1")]


def test_a_file_without_headers_or_with_too_many_rows_is_refused(monkeypatch) -> None:
    with pytest.raises(BadRequest) as refused:
        excel.read_expiry_file(filled([["1234", "2027-01-01"]], headers=("imei", "date")))
    assert list(refused.value.fields) == ["rows.1"]
    monkeypatch.setattr(excel, "MAX_ROWS", 2)
    with pytest.raises(BadRequest, match="at most 2 rows"):
        excel.read_expiry_file(filled([["1234", "2027-01-01"]] * 3))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2027, 3, 1, 8, 30), datetime(2027, 3, 1, 8, 30, tzinfo=UTC)),
        (date(2027, 3, 1), datetime(2027, 3, 1, tzinfo=UTC)),
        (46447, datetime(2027, 3, 1, tzinfo=UTC)),
        (46447.25, datetime(2027, 3, 1, 6, tzinfo=UTC)),
        ("2027-03-01", datetime(2027, 3, 1, tzinfo=UTC)),
        ("2027-03-01 08:00", datetime(2027, 3, 1, 8, tzinfo=UTC)),
        ("2027-03-01T08:00:00+08:00", datetime(2027, 3, 1, 0, tzinfo=UTC)),
        ("2027-03-01T00:00:00Z", datetime(2027, 3, 1, tzinfo=UTC)),
    ],
)
def test_expiry_cells_are_excel_dates_serials_or_iso_text(
    value: object, expected: datetime
) -> None:
    assert excel.parse_expiry(value, datetime(1899, 12, 30)) == expected


@pytest.mark.parametrize("value", ["01/03/2027", "tomorrow", "", True, 0, -5, time(8, 0), 10**9])
def test_anything_else_is_not_a_date(value: object) -> None:
    with pytest.raises((ValueError, OverflowError)):
        excel.parse_expiry(value, datetime(1899, 12, 30))


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "empty"),
        (b"PK\x03\x04 not really", "not an .xlsx"),
        (_zip({"xl/workbook.xml": b"<w/>", "xl/vbaProject.bin": b"x"}), "macros"),
        (
            _zip({"xl/workbook.xml": b"<w/>", "[Content_Types].xml": b"macroEnabled.main+xml"}),
            "macros",
        ),
        (_zip({"content.xml": b"<office/>"}), "not an .xlsx"),
    ],
)
def test_files_that_must_not_be_parsed_are_refused(content: bytes, why: str) -> None:
    with pytest.raises(BadRequest) as refused:
        excel.check_workbook(content)
    assert why in refused.value.fields["file"][0]


def test_a_zip_bomb_is_refused_by_its_unpacked_size(monkeypatch) -> None:
    monkeypatch.setattr(excel, "MAX_UNPACKED", 1000)
    with pytest.raises(BadRequest, match="unpacks"):
        excel.check_workbook(_zip({"xl/workbook.xml": b" " * 2000}))


# -- writing --------------------------------------------------------------------------------
def test_exported_text_never_runs_as_a_formula() -> None:
    content = excel.write_table(
        "T",
        ["=A1", "b"],
        [
            [
                '=HYPERLINK("x")',
                "+1",
                "-2",
                "@SUM(1)",
                "plain",
                5,
                datetime(2027, 1, 1, tzinfo=UTC),
                None,
            ]
        ],
    )
    sheet = load_workbook(io.BytesIO(content)).active
    cells = list(sheet.iter_rows())
    assert [c.value for c in cells[0][:2]] == ["'=A1", "b"]
    assert [c.value for c in cells[1]] == [
        '\'=HYPERLINK("x")',
        "'+1",
        "'-2",
        "'@SUM(1)",
        "plain",
        5,
        datetime(2027, 1, 1),
    ]
    assert all(c.data_type != "f" for row in cells for c in row)


def test_the_template_reads_back_as_its_example_row() -> None:
    parsed = excel.read_expiry_file(excel.expiry_template())
    assert [(r.device_id, r.expires_at) for r in parsed.rows] == [
        ("860000000000001", datetime(2027, 12, 31, tzinfo=UTC))
    ]


# -- contracts ------------------------------------------------------------------------------
def test_pasted_ids_are_split_on_any_separator() -> None:
    assert pasted_ids(" 861,862;863\n864\t865，866 ") == ["861", "862", "863", "864", "865", "866"]


def test_batches_name_devices_one_way_or_the_other() -> None:
    with pytest.raises(ValidationError):
        DeviceBatchIn().load({"reason": "x"})
    assert DeviceBatchIn().load({"text": "8600 8601"})["text"] == "8600 8601"
    with pytest.raises(ValidationError):
        BindIn().load({"package_id": "p"})
    with pytest.raises(ValidationError):  # both ways at once
        BindIn().load(
            {"package_id": "p", "device_ids": ["8600"], "company_id": "c", "device_type": "t"}
        )
    assert UnbindIn().load({"company_id": "c", "device_type": "GT06"})["device_type"] == "GT06"


WIRE = {
    "device_expiry_changed": {
        "old_expires_at": datetime(2026, 1, 1, tzinfo=UTC),
        "new_expires_at": datetime(2027, 1, 1, tzinfo=UTC),
        "reason": "file",
        "source": "bulk_import",
    },
    "device_expiring": {
        "expires_at": datetime(2026, 1, 1, tzinfo=UTC),
        "days_before": 7,
        "package_id": None,
    },
    "device_suspended": {"reason": None},
    "device_reenabled": {"reason": "back"},
    "package_unbound": {"package_id": "p"},
    "value_added_bound": {
        "package_id": "p",
        "binding_id": "b",
        "expires_at": datetime(2026, 1, 1, tzinfo=UTC),
    },
    "value_added_unbound": {"package_id": "p", "binding_id": "b"},
}


@pytest.mark.parametrize("event_type", sorted(WIRE))
def test_every_device_event_has_a_versioned_contract(event_type: str) -> None:
    data = {"device_id": "8600", "company_id": "c1", **WIRE[event_type]}
    version, dumped = dump_payload("devices", event_type, data)
    envelope = {
        "id": "e1",
        "type": event_type,
        "version": version,
        "source": "devices",
        "subject": "8600",
        "sequence": 3,
        "time": "2026-01-01T00:00:00+00:00",
        "data": {**dumped, "added_later": "ignored"},
    }
    assert parse(envelope).data["device_id"] == "8600"


# -- the gateway's uploads and downloads ------------------------------------------------------
def _request(**kwargs: object) -> Request:
    return Request(EnvironBuilder(method="POST", **kwargs).get_environ())


def test_an_upload_is_the_raw_body_or_a_multipart_file() -> None:
    content = excel.expiry_template()
    raw = _request(data=content, content_type=XLSX_TYPE)
    assert uploaded_workbook(raw) == ("upload.xlsx", content)
    form = _request(data={"file": (io.BytesIO(content), "fleet.xlsx")})
    assert uploaded_workbook(form) == ("fleet.xlsx", content)
    with pytest.raises(BadRequest, match="form field"):
        uploaded_workbook(_request(data={"other": "x"}, content_type="multipart/form-data"))
    with pytest.raises(BadRequest, match="send the .xlsx"):
        uploaded_workbook(_request(data=b"{}", content_type="application/json"))
    with pytest.raises(BadRequest, match="empty"):
        uploaded_workbook(_request(data=b"", content_type="application/octet-stream"))


def test_a_too_large_upload_is_refused_before_it_is_read(monkeypatch) -> None:
    import gateway.routes.devices as routes

    monkeypatch.setattr(routes, "MAX_FILE_BYTES", 10)
    with pytest.raises(BadRequest, match="larger than"):
        uploaded_workbook(_request(data=b"x" * 11, content_type="application/octet-stream"))


def test_a_download_is_an_attachment() -> None:
    answer = workbook_response(
        {"file_name": 'a"b.xlsx', "content": "UEsDBA==", "content_type": None}
    )
    assert answer.headers["Content-Disposition"] == 'attachment; filename="ab.xlsx"'
    assert answer.get_data() == b"PK\x03\x04"
