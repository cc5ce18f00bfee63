"""The statement workbook: billing's own when it offers one, else written here from the
statement's entries (paged by RPC), else from the event alone. Billing is faked here: it
is outside the notifications service."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime
from decimal import Decimal

from nameko.exceptions import MethodNotFound, UnknownService
from openpyxl import load_workbook

from services.notifications.config import zone
from services.notifications.documents import StatementFiles, event_only_workbook

SHANGHAI = zone("Asia/Shanghai")
STATEMENT = {
    "statement_id": "st-1",
    "company_id": "c1",
    "cycle": "quarterly",
    "period_start": datetime(2025, 12, 31, 16, 0, tzinfo=UTC),
    "period_end": datetime(2026, 3, 31, 16, 0, tzinfo=UTC),
    "balances": [
        {
            "currency": "USD",
            "opening_balance": Decimal("10.00"),
            "total_credits": Decimal("5.00"),
            "total_debits": Decimal("0.00"),
            "closing_balance": Decimal("15.00"),
            "entries": 2,
        }
    ],
}


def _entry(n: int) -> dict:
    return {
        "sequence": n,
        "at": f"2026-02-0{n}T00:00:00+00:00",
        "currency": "USD",
        "direction": "credit",
        "amount": "2.50",
        "balance_after": f"1{n}.50",
        "reason": "recharge",
        "reference": f"r-{n}",
    }


class Billing:
    """What the billing service answers (or fails to)."""

    def __init__(self, workbook: bytes | None = None, entries: bool = True) -> None:
        self.workbook = workbook
        self.entries = entries
        self.calls: list[tuple] = []

    def statement_xlsx(self, actor: dict, statement_id: str) -> str:
        self.calls.append(("statement_xlsx", statement_id))
        if self.workbook is None:
            raise MethodNotFound("statement_xlsx")
        return base64.b64encode(self.workbook).decode()

    def statement_entries(self, actor: dict, statement_id: str, after: int) -> dict:
        self.calls.append(("statement_entries", after))
        if not self.entries:
            raise UnknownService("billing")
        assert actor["user_id"] == "system"
        return {"items": [_entry(after + 1)], "next": after + 1 if after == 0 else None}


def _rows(attachment: dict) -> list[tuple]:
    book = load_workbook(io.BytesIO(base64.b64decode(attachment["content_b64"])))
    return list(book.active.iter_rows(values_only=True))


def test_billing_s_workbook_is_attached_as_it_is() -> None:
    billing = Billing(workbook=b"PK billing's workbook")
    found = StatementFiles(billing).workbook(STATEMENT, "ACME", "en", SHANGHAI)
    assert base64.b64decode(found["content_b64"]) == b"PK billing's workbook"
    assert found["filename"] == "statement-2026-01-01.xlsx"
    assert billing.calls == [("statement_xlsx", "st-1")]


def test_without_billing_s_workbook_it_is_written_from_the_paged_entries() -> None:
    billing = Billing()
    found = StatementFiles(billing).workbook(STATEMENT, "ACME", "zh", SHANGHAI)
    assert found["filename"] == "对账单-2026-01-01.xlsx"
    assert billing.calls[1:] == [("statement_entries", 0), ("statement_entries", 1)]
    rows = _rows(found)
    assert rows[2] == ("账单周期", "季度", None, None, None, None, None)
    entries = [r for r in rows if r[6] in ("r-1", "r-2")]
    assert [(r[0], r[2], r[5]) for r in entries] == [
        (datetime(2026, 2, 1, 8, 0), "入账", "在线充值"),
        (datetime(2026, 2, 2, 8, 0), "入账", "在线充值"),
    ]


def test_without_billing_at_all_the_event_s_figures_remain() -> None:
    found = StatementFiles(Billing(entries=False)).workbook(STATEMENT, "ACME", "en", SHANGHAI)
    rows = _rows(found)
    assert ("USD", 10, 5, 0, 15, 2) in [r[:6] for r in rows]
    assert "r-1" not in str(rows)
    assert _rows(event_only_workbook(STATEMENT, "ACME", "en", SHANGHAI)) == rows
