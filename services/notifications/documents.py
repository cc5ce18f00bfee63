"""Attachments: the statement workbook (.xlsx).

Billing is asked for the workbook it renders (``billing.statement_xlsx``). Until billing
offers that, or when it does not answer in time, the workbook is written here from what we
can get: the statement's ledger entries (``billing.statement_entries``, paged) or, failing
that, the figures carried by the ``statement_issued`` event itself.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any

import eventlet
from nameko.exceptions import MethodNotFound, RemoteError, UnknownService
from openpyxl import Workbook

from services.common.actor import SYSTEM
from services.common.spreadsheets import safe_row
from services.notifications.templates import Texts, statement_filename, zone_label

log = logging.getLogger(__name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENTRIES_PAGE_LIMIT = 500  # pages; 2,000 entries each


def _dec(value: Any) -> Decimal | None:
    return None if value in (None, "") else Decimal(str(value))


def _time(value: Any, tz: tzinfo) -> datetime | None:
    """A local, naive datetime for a cell (Excel cells have no time zone)."""
    if value in (None, ""):
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(tz).replace(tzinfo=None)


def statement_workbook(
    data: dict, company: str, language: str, tz: tzinfo, entries: Iterable[dict] | None
) -> bytes:
    """The statement as an .xlsx: heading, one summary row per currency, then the entries
    (when known), labelled in ``language`` with times in ``tz``."""
    t = Texts(language, "statement")
    book = Workbook()
    sheet = book.active
    sheet.title = t("sheet")
    start = _time(data["period_start"], tz)
    sheet.append(safe_row([t("statement_id"), data["statement_id"]]))
    sheet.append(safe_row([t("company"), company]))
    sheet.append(safe_row([t("cycle"), t.value("cycle", data["cycle"])]))
    sheet.append(safe_row([t("period_start"), start]))
    sheet.append(safe_row([t("period_end"), _time(data["period_end"], tz)]))
    sheet.append(safe_row([t("time_zone"), zone_label(data["period_start"].astimezone(tz))]))
    sheet.append(safe_row([]))
    sheet.append(
        [
            t.c("currency"),
            t.c("opening_balance"),
            t.c("credits"),
            t.c("debits"),
            t.c("closing_balance"),
            t.c("entries"),
        ]
    )
    for part in data["balances"]:
        sheet.append(
            [
                part["currency"],
                _dec(part["opening_balance"]),
                _dec(part["total_credits"]),
                _dec(part["total_debits"]),
                _dec(part["closing_balance"]),
                part["entries"],
            ]
        )
    sheet.append(safe_row([]))
    rows = list(entries) if entries is not None else None
    if rows is not None:
        sheet.append(
            [
                t.c("time"),
                t.c("currency"),
                t("direction"),
                t.c("amount"),
                t("balance_after"),
                t.c("reason"),
                t("reference"),
            ]
        )
        for entry in rows:
            sheet.append(
                [
                    _time(entry.get("at"), tz),
                    entry.get("currency"),
                    t.value("direction", entry.get("direction")),
                    _dec(entry.get("amount")),
                    _dec(entry.get("balance_after")),
                    t.value("credit", entry.get("reason")),
                    entry.get("reference"),
                ]
            )
        if not rows:
            sheet.append(safe_row([t("no_entries")]))
    for column in "ABCDEFG":
        sheet.column_dimensions[column].width = 22
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def attachment(filename: str, content: bytes, content_type: str = XLSX) -> dict:
    return {
        "filename": filename,
        "content_type": content_type,
        "content_b64": base64.b64encode(content).decode("ascii"),
    }


class StatementFiles:
    """The statement workbook for a mail, from billing when it can render it."""

    def __init__(self, billing: Any, timeout: float = 30.0) -> None:
        self.billing = billing  # a nameko RpcProxy("billing")
        self.timeout = timeout

    def workbook(self, data: dict, company: str, language: str, tz: tzinfo) -> dict:
        filename = statement_filename(data, language, tz)
        who = SYSTEM.to_rpc()
        try:
            with eventlet.Timeout(self.timeout):
                encoded = self.billing.statement_xlsx(who, data["statement_id"])
            return attachment(filename, base64.b64decode(encoded))
        except (MethodNotFound, UnknownService, RemoteError, eventlet.Timeout) as exc:
            log.info("billing.statement_xlsx unavailable (%r); writing the workbook here", exc)
        entries = self._entries(who, data["statement_id"])
        return attachment(filename, statement_workbook(data, company, language, tz, entries))

    def _entries(self, who: dict, statement_id: str) -> list[dict] | None:
        rows: list[dict] = []
        after = 0
        try:
            for _ in range(ENTRIES_PAGE_LIMIT):
                with eventlet.Timeout(self.timeout):
                    page = self.billing.statement_entries(who, statement_id, after)
                rows += page["items"]
                if not page.get("next"):
                    return rows
                after = page["next"]
        except (MethodNotFound, UnknownService, RemoteError, eventlet.Timeout) as exc:
            log.warning("cannot read the entries of statement %s: %r", statement_id, exc)
        return None  # the summary from the event only


def event_only_workbook(data: dict, company: str, language: str, tz: tzinfo) -> dict:
    """Without billing at hand (tests, tools): the event's figures, and its lines if any."""
    entries = data.get("lines") or data.get("entries")
    return attachment(
        statement_filename(data, language, tz),
        statement_workbook(
            data, company, language, tz, entries if isinstance(entries, list) else None
        ),
    )
