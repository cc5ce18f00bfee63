"""Excel work of the devices service: the S3 expiry template, reading a filled one safely,
and writing exports (T3) whose cells cannot run as formulas.

Reading is refused before any XML is parsed for files over the size limit, archives that
unpack to far more than they weigh, encrypted parts and macro workbooks (.xlsm); the XML
itself is streamed through expat hardened as defusedxml hardens it (no DTDs, entities or
external references): see xlsx_reader. openpyxl writes the workbooks we hand out.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from defusedxml import DefusedXmlException
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils.datetime import from_excel

from contracts.rpc.devices import MAX_FILE_BYTES
from services.common.config import env
from services.common.errors import AppError, BadRequest
from services.common.spreadsheets import DANGEROUS_START, neutralise  # noqa: F401 - re-exported
from services.devices import xlsx_reader

MAX_BYTES = MAX_FILE_BYTES
MAX_UNPACKED = 40 * MAX_BYTES  # XML compresses ~10x; far more than that is a zip bomb
MAX_ROWS = int(env("IOTB_XLSX_MAX_ROWS", "200000"))
HEADERS = ("device_id", "expires_at", "reason")
SHEET = "expiry"
DATE_FORMAT = "yyyy-mm-dd hh:mm"
DEVICE_ID = re.compile(r"^[0-9A-Z-]{4,32}$")


@dataclass(frozen=True)
class ExpiryRow:
    row: int
    device_id: str
    expires_at: datetime
    reason: str | None


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    reason: str


@dataclass
class ExpiryFile:
    rows: list[ExpiryRow]  # rows without a cell error
    errors: list[RowError]  # cell errors
    blank_rows: int
    ids: list[tuple[int, str]]  # (row, device id) of every row with a well-formed id


# -- the template ---------------------------------------------------------------------------
NOTES = [
    ("Column", "What to enter"),
    ("device_id", "The device id (IMEI) exactly as registered; letters are read in capitals."),
    (
        "expires_at",
        "The new expiry: an Excel date (or date and time), or ISO text such as 2027-12-31 "
        "or 2027-12-31T08:00:00+08:00. Times without a zone are UTC; a date alone is 00:00 UTC.",
    ),
    ("reason", "Why the expiry changes (optional, at most 500 characters); kept in the history."),
    ("", ""),
    ("Rules", ""),
    ("1", "Every row is checked before anything changes. If any row is wrong, nothing changes"),
    ("", "and the answer lists every wrong row with its row number, column and reason."),
    ("2", "Each device may appear once; blank rows are skipped."),
    ("3", "Only devices of your company and its subsidiaries can be changed."),
    ("4", f"At most {MAX_ROWS} rows and {MAX_BYTES // (1024 * 1024)} MB; .xlsx only, no macros."),
    ("5", "Delete the example row before uploading."),
]


def expiry_template() -> bytes:
    """The S3 template: headers, one example row, and a notes sheet."""
    book = Workbook()
    sheet = book.active
    sheet.title = SHEET
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.append(["860000000000001", datetime(2027, 12, 31), "contract renewed until 2027"])
    sheet["A2"].number_format = "@"  # long ids stay text, never 8.6E+14
    sheet["B2"].number_format = DATE_FORMAT
    sheet.column_dimensions["A"].width = 22
    sheet.column_dimensions["B"].width = 20
    sheet.column_dimensions["C"].width = 40
    notes = book.create_sheet("notes")
    for line in NOTES:
        notes.append(list(line))
    notes["A1"].font = notes["B1"].font = Font(bold=True)
    notes.column_dimensions["A"].width = 12
    notes.column_dimensions["B"].width = 100
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- reading ------------------------------------------------------------------------------
def check_workbook(content: bytes) -> None:
    """Refuse what must not reach the XML parser (BadRequest with a ``file`` field)."""

    def refuse(why: str) -> BadRequest:
        return BadRequest(f"file: {why}", {"file": [why]})

    if not content:
        raise refuse("the file is empty")
    if len(content) > MAX_BYTES:
        raise refuse(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MB")
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile:
        raise refuse("not an .xlsx workbook (save it as Excel Workbook .xlsx)") from None
    with archive:
        infos = archive.infolist()
        names = {info.filename.lower() for info in infos}
        if "xl/workbook.xml" not in names:
            raise refuse("not an .xlsx workbook (save it as Excel Workbook .xlsx)")
        if any(n.endswith("vbaproject.bin") for n in names):
            raise refuse("workbooks with macros are refused; save it as .xlsx without macros")
        types = archive.read("[Content_Types].xml") if "[content_types].xml" in names else b""
        if b"macroEnabled" in types:
            raise refuse("workbooks with macros are refused; save it as .xlsx without macros")
        if any(info.flag_bits & 0x1 for info in infos):
            raise refuse("encrypted workbooks are refused")
        if sum(info.file_size for info in infos) > MAX_UNPACKED:
            raise refuse("the workbook unpacks to far more than its size (refused)")


def _device_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # an IMEI typed into a number cell
    if isinstance(value, str):
        return value.strip().upper()
    return None


def parse_expiry(value: Any, epoch: datetime) -> datetime:
    """An Excel date, an Excel serial number or ISO text, as an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not 1 <= value < 2958466:  # 1900-01-01 .. 9999-12-31
            raise ValueError("not a date")
        moment = from_excel(value, epoch=epoch)
    elif isinstance(value, str):
        text = value.strip()
        if len(text) < 10 or not text[:4].isdigit():
            raise ValueError("not a date")
        moment = datetime.fromisoformat(text)
    else:
        raise ValueError("not a date")
    if not isinstance(moment, datetime):
        raise ValueError("a time without a date")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def read_expiry_file(content: bytes, cooperate: Callable[[], None] | None = None) -> ExpiryFile:
    """Every row of a filled template, parsed; cell-level errors collected, none raised.

    ``cooperate`` is called between chunks of the sheet (a green-thread yield in the
    service: a long file must not stall its other requests).
    """
    check_workbook(content)
    parsed = ExpiryFile(rows=[], errors=[], blank_rows=0, ids=[])
    seen = {"header": False, "rows": 0, "last": 1}

    def row(number: int, values: list) -> None:
        if not seen["header"]:
            found = tuple(str(v).strip().lower() if v is not None else "" for v in values)
            if number != 1 or found[:2] != HEADERS[:2]:
                why = f"the first row must be the headers {', '.join(HEADERS)} (use the template)"
                raise BadRequest(f"file: {why}", {"rows.1": [why]})
            seen["header"] = True
            return
        raw_id, raw_expiry, raw_reason = values
        if _blank(raw_id) and _blank(raw_expiry) and _blank(raw_reason):
            return
        seen["rows"] += 1
        seen["last"] = number
        if seen["rows"] > MAX_ROWS or number > 4 * MAX_ROWS:
            why = f"at most {MAX_ROWS} rows per file"
            raise BadRequest(f"file: {why}", {"file": [why]})
        _parse_row(parsed, number, raw_id, raw_expiry, raw_reason, book.epoch)

    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            book = xlsx_reader.Workbook(archive)
            if not book.order:
                raise BadRequest("file: the workbook has no sheet", {"file": ["no sheet"]})
            sheet = SHEET if SHEET in book.sheets else book.order[0]
            book.read_rows(sheet, len(HEADERS), row, cooperate)
    except AppError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken part fails in many ways
        raise _unreadable(exc) from exc
    if not seen["header"]:
        why = f"the first row must be the headers {', '.join(HEADERS)} (use the template)"
        raise BadRequest(f"file: {why}", {"rows.1": [why]})
    # rows without values between the header and the last row were skipped as blank
    parsed.blank_rows = seen["last"] - 1 - seen["rows"]
    return parsed


def _unreadable(exc: BaseException) -> BadRequest:
    chain: BaseException | None = exc
    while chain is not None:
        if isinstance(chain, DefusedXmlException):
            why = "the workbook's XML declares a DTD or entities, which are refused"
            return BadRequest(f"file: {why}", {"file": [why]})
        chain = chain.__cause__ or chain.__context__
    why = "the workbook cannot be read (is it damaged?)"
    return BadRequest(f"file: {why}", {"file": [why]})


def _parse_row(
    parsed: ExpiryFile, number: int, raw_id: Any, raw_expiry: Any, raw_reason: Any, epoch: Any
) -> None:
    errors = parsed.errors
    before = len(errors)
    device_id = _device_id(raw_id)
    if _blank(raw_id):
        errors.append(RowError(number, "device_id", "required"))
    elif not device_id or not DEVICE_ID.match(device_id):
        errors.append(RowError(number, "device_id", "must be 4 to 32 letters, digits or -"))
    else:
        parsed.ids.append((number, device_id))
    expires_at = None
    if _blank(raw_expiry):
        errors.append(RowError(number, "expires_at", "required"))
    else:
        try:
            expires_at = parse_expiry(raw_expiry, epoch)
        except (ValueError, OverflowError):
            errors.append(
                RowError(
                    number,
                    "expires_at",
                    "not a date: use an Excel date or ISO text such as 2027-12-31",
                )
            )
    reason = None if _blank(raw_reason) else str(raw_reason).strip()
    if reason is not None and len(reason) > 500:
        errors.append(RowError(number, "reason", "at most 500 characters"))
    if len(errors) == before and device_id is not None and expires_at is not None:
        parsed.rows.append(ExpiryRow(number, device_id, expires_at, reason))


# -- writing --------------------------------------------------------------------------------


def write_table(
    title: str, headers: list[str], rows: Iterable[list[Any]], heading: Iterable[list] = ()
) -> bytes:
    """A one-sheet workbook: optional heading rows, a bold header row, then ``rows``.

    Written write-only (one row in memory at a time); aware datetimes become UTC dates.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    for line in heading:
        sheet.append([neutralise(v) for v in line])
    bold = []
    for name in headers:
        cell = WriteOnlyCell(sheet, value=neutralise(name))
        cell.font = Font(bold=True)
        bold.append(cell)
    sheet.append(bold)
    for row in rows:
        sheet.append([_cell(sheet, v) for v in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _cell(sheet: Any, value: Any) -> Any:
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value.astimezone(UTC).replace(tzinfo=None))
        cell.number_format = DATE_FORMAT
        return cell
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=neutralise(value))
        cell.data_type = "s"  # never a formula, whatever the text
        return cell
    return value


def iter_chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
