"""A streaming reader of the first columns of one worksheet of an .xlsx file.

Why not openpyxl (which writes our workbooks): its read-only mode builds an element tree
per cell through defusedxml's pure-Python parser, ~45 us a row; an S3 import must read,
check and apply 100,000 rows within three times that read. This reader hands expat's
events straight to a few handlers (~5 us a row) and keeps only the columns asked for.

It is hardened exactly as defusedxml hardens expat: a DTD, an entity declaration or an
external reference raises defusedxml's own exceptions before anything is expanded. The
caller checks the archive itself first (size, zip bomb, macros): see excel.check_workbook.
"""

from __future__ import annotations

import posixpath
import pyexpat
import zipfile
from collections.abc import Callable
from datetime import datetime
from typing import Any

from defusedxml import DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900

Handler = Callable[..., None]
RowSink = Callable[[int, list], None]
CHUNK = 64 * 1024


def _forbid_dtd(name: str, sysid: str | None, pubid: str | None, *_: Any) -> None:
    raise DTDForbidden(name, sysid, pubid)


def _forbid_entity(name: str, *args: Any) -> None:
    raise EntitiesForbidden(name, *(list(args) + [None] * 5)[:5])


def _forbid_unparsed(name: str, base: Any, sysid: Any, pubid: Any, notation: Any) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


def _forbid_external(context: Any, base: Any, sysid: Any, pubid: Any) -> None:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def parse_part(
    archive: zipfile.ZipFile,
    name: str,
    start: Handler,
    end: Handler | None = None,
    text: Handler | None = None,
    between_chunks: Callable[[], None] | None = None,
) -> None:
    """Stream one XML part of the archive through hardened expat into the handlers."""
    parser = pyexpat.ParserCreate()
    parser.buffer_text = True
    parser.SetParamEntityParsing(pyexpat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_unparsed
    parser.ExternalEntityRefHandler = _forbid_external
    parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    with archive.open(name) as part:
        while chunk := part.read(CHUNK):
            parser.Parse(chunk, False)
            if between_chunks is not None:
                between_chunks()
    parser.Parse(b"", True)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _part(target: str) -> str:
    return target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)


class Workbook:
    """The sheets (name -> part), shared strings and date system of a workbook."""

    def __init__(self, archive: zipfile.ZipFile) -> None:
        self.archive = archive
        self.epoch: datetime = CALENDAR_WINDOWS_1900
        sheets: list[tuple[str, str]] = []
        targets: dict[str, tuple[str, str]] = {}

        def workbook_start(name: str, attrs: dict) -> None:
            local = _local(name)
            if local == "sheet":
                rid = next((v for k, v in attrs.items() if _local(k) == "id"), "")
                sheets.append((attrs.get("name", ""), rid))
            elif local == "workbookPr" and attrs.get("date1904") in ("1", "true"):
                self.epoch = CALENDAR_MAC_1904

        def rels_start(name: str, attrs: dict) -> None:
            if _local(name) == "Relationship":
                targets[attrs.get("Id", "")] = (attrs.get("Type", ""), attrs.get("Target", ""))

        parse_part(archive, "xl/workbook.xml", workbook_start)
        parse_part(archive, "xl/_rels/workbook.xml.rels", rels_start)
        self.sheets = {name: _part(targets[rid][1]) for name, rid in sheets if rid in targets}
        self.order = [name for name, rid in sheets if rid in targets]
        strings_part = next(
            (_part(t) for kind, t in targets.values() if kind.endswith("/sharedStrings")), None
        )
        self.strings = self._shared_strings(strings_part) if strings_part else []

    def _shared_strings(self, part: str) -> list[str]:
        strings: list[str] = []
        pieces: list[str] = []
        state = {"text": False, "phonetic": False}

        def start(name: str, attrs: dict) -> None:
            local = _local(name)
            if local == "si":
                pieces.clear()
            elif local == "t":
                state["text"] = not state["phonetic"]
            elif local == "rPh":
                state["phonetic"] = True  # furigana: not part of the cell's text

        def end(name: str) -> None:
            local = _local(name)
            if local == "t":
                state["text"] = False
            elif local == "rPh":
                state["phonetic"] = False
            elif local == "si":
                strings.append("".join(pieces))

        def text(data: str) -> None:
            if state["text"]:
                pieces.append(data)

        parse_part(self.archive, part, start, end, text)
        return strings

    def read_rows(
        self,
        sheet: str,
        columns: int,
        sink: RowSink,
        between_chunks: Callable[[], None] | None = None,
    ) -> None:
        """Call ``sink(row number, values)`` for each row of ``sheet`` that has a cell in the
        first ``columns`` columns; values are str, int, float, bool or None (cached formula
        results, never formulas)."""
        strings = self.strings
        pieces: list[str] = []
        # the handlers run ~20 times a row: plain closures over a few cells, no lookups
        column = -1
        kind = "n"
        capture = False
        phonetic = False
        number = 0
        values: list = [None] * columns
        filled = False

        def start(name: str, attrs: dict) -> None:
            nonlocal column, kind, capture, phonetic, number, values, filled
            if ":" in name:
                name = name.rpartition(":")[2]
            if name == "c":
                ref = attrs.get("r")
                column = _column(ref) if ref else column + 1
                kind = attrs.get("t", "n")
                pieces.clear()
            elif name == "v" or (name == "t" and not phonetic):
                capture = True
            elif name == "row":
                found = attrs.get("r")
                number = int(found) if found else number + 1
                values = [None] * columns
                filled = False
                column = -1
            elif name == "rPh":
                phonetic = True

        def end(name: str) -> None:
            nonlocal capture, phonetic, filled
            if ":" in name:
                name = name.rpartition(":")[2]
            if name == "v" or name == "t":
                capture = False
            elif name == "c":
                if 0 <= column < columns and pieces:
                    values[column] = _value(kind, "".join(pieces), strings)
                    filled = True
            elif name == "row":
                if filled:
                    sink(number, values)
            elif name == "rPh":
                phonetic = False

        def text(data: str) -> None:
            if capture:
                pieces.append(data)

        parse_part(self.archive, self.sheets[sheet], start, end, text, between_chunks)


def _column(ref: str) -> int:
    """0-based column of a cell reference such as "B12" (-1 if not a reference)."""
    index = 0
    for char in ref:
        if "A" <= char <= "Z":
            index = index * 26 + (ord(char) - 64)
        else:
            break
    return index - 1


def _value(kind: str, text: str, strings: list[str]) -> Any:
    if kind == "s":
        return strings[int(text)]
    if kind in ("inlineStr", "str", "d", "e"):
        return text  # text, a formula's text result, an ISO date, an error such as #N/A
    if kind == "b":
        return text == "1"
    try:
        return int(text)
    except ValueError:
        return float(text)
