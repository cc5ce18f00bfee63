"""Reading the billing views: plain query functions over a connection, no rules.

``scope`` is the set of company ids the actor may see, or None for the system (everything).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from services.billing.projections import (
    applications,
    auto_renewals,
    balances,
    configs,
    ledger_entries,
    order_lines,
    orders,
    statements,
)
from services.common.money import CURRENCIES
from services.common.scope import company_scope
from services.common.views import row_dict

Scope = set[str] | None
ZERO = Decimal("0.00")


def _in_scope(column: sa.ColumnElement, scope: Scope) -> sa.ColumnElement[bool]:
    return sa.true() if scope is None else column.in_(scope)


def _page(
    conn: sa.Connection, query: sa.Select, order_by: Iterable, filters: dict
) -> tuple[list[sa.Row], int, int, int]:
    total = conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    page, per_page = filters.get("page", 1), filters.get("per_page", 50)
    rows = conn.execute(
        query.order_by(*order_by).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return rows, total, page, per_page


# -- accounts -------------------------------------------------------------------------------
def account_balances(conn: sa.Connection, company_id: str) -> list[dict]:
    found = {
        r.currency: r.balance
        for r in conn.execute(
            sa.select(balances.c.currency, balances.c.balance).where(
                balances.c.company_id == company_id
            )
        )
    }
    return [{"currency": c, "balance": found.get(c, ZERO)} for c in CURRENCIES]


def entries(conn: sa.Connection, company_id: str, filters: dict) -> dict:
    query = sa.select(ledger_entries).where(ledger_entries.c.company_id == company_id)
    for name in ("currency", "direction", "reason", "reference"):
        if filters.get(name):
            query = query.where(ledger_entries.c[name] == filters[name])
    if filters.get("at_from"):
        query = query.where(ledger_entries.c.at >= filters["at_from"])
    if filters.get("at_to"):
        query = query.where(ledger_entries.c.at < filters["at_to"])
    rows, total, page, per_page = _page(conn, query, (ledger_entries.c.sequence.desc(),), filters)
    return {
        "items": [row_dict(r) for r in rows],
        "total": total,
        "page": page,
        "per_page": per_page,
    }


def period_entries(
    conn: sa.Connection, company_id: str, start: datetime, end: datetime, after: int, limit: int
) -> list[dict]:
    """A statement's entries in ledger order, ``limit`` at a time after sequence ``after``."""
    rows = conn.execute(
        sa.select(ledger_entries)
        .where(
            ledger_entries.c.company_id == company_id,
            ledger_entries.c.at >= start,
            ledger_entries.c.at < end,
            ledger_entries.c.sequence > after,
        )
        .order_by(ledger_entries.c.sequence)
        .limit(limit)
    )
    return [row_dict(r) for r in rows]


def _balance_before(
    conn: sa.Connection, company_id: str, currency: str, moment: datetime
) -> Decimal:
    e = ledger_entries
    found = conn.execute(
        sa.select(e.c.balance_after)
        .where(e.c.company_id == company_id, e.c.currency == currency, e.c.at < moment)
        .order_by(e.c.sequence.desc())
        .limit(1)
    ).scalar()
    return found if found is not None else ZERO


def cycle_figures(
    conn: sa.Connection, company_id: str, start: datetime, end: datetime
) -> list[dict]:
    """Per currency: opening balance at ``start``, credits and debits in [start, end), closing
    balance at ``end`` -- from the ledger entries alone."""
    e = ledger_entries
    result = []
    for currency in CURRENCIES:
        sums = {
            r.direction: (r.total, r.count)
            for r in conn.execute(
                sa.select(
                    e.c.direction,
                    sa.func.sum(e.c.amount).label("total"),
                    sa.func.count().label("count"),
                )
                .where(
                    e.c.company_id == company_id,
                    e.c.currency == currency,
                    e.c.at >= start,
                    e.c.at < end,
                )
                .group_by(e.c.direction)
            )
        }
        opening = _balance_before(conn, company_id, currency, start)
        count = sum(c for _, c in sums.values())
        if count == 0 and opening == 0:
            continue
        result.append(
            {
                "currency": currency,
                "opening_balance": opening,
                "total_credits": sums.get("credit", (ZERO, 0))[0] or ZERO,
                "total_debits": sums.get("debit", (ZERO, 0))[0] or ZERO,
                "closing_balance": _balance_before(conn, company_id, currency, end),
                "entries": count,
            }
        )
    return result


def accounts_active_before(conn: sa.Connection, moment: datetime) -> list[str]:
    return list(
        conn.execute(
            sa.select(ledger_entries.c.company_id)
            .where(ledger_entries.c.at < moment)
            .group_by(ledger_entries.c.company_id)
        ).scalars()
    )


# -- orders ---------------------------------------------------------------------------------
def lines_of(conn: sa.Connection, order_ids: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {i: [] for i in order_ids}
    if order_ids:
        for r in conn.execute(
            sa.select(order_lines)
            .where(order_lines.c.order_id.in_(order_ids))
            .order_by(order_lines.c.order_id, order_lines.c.line_id)
        ):
            found[r.order_id].append(row_dict(r))
    return found


def order_row(conn: sa.Connection, order_id: str) -> dict | None:
    row = conn.execute(sa.select(orders).where(orders.c.order_id == order_id)).first()
    if row is None:
        return None
    data = row_dict(row)
    data["lines"] = lines_of(conn, [order_id])[order_id]
    return data


def _order_query(scope: Scope, filters: dict) -> sa.Select:
    query = sa.select(orders).where(_in_scope(orders.c.company_id, scope))
    for name in ("status", "order_type", "method", "currency", "company_id", "order_number"):
        if filters.get(name):
            query = query.where(orders.c[name] == filters[name])
    if filters.get("paid_only") and not filters.get("status"):
        query = query.where(orders.c.status == "paid")
    for column, low, high in (
        (orders.c.created_at, "created_from", "created_to"),
        (orders.c.paid_at, "paid_from", "paid_to"),
    ):
        if filters.get(low):
            query = query.where(column >= filters[low])
        if filters.get(high):
            query = query.where(column < filters[high])
    return query


def order_page(conn: sa.Connection, scope: Scope, filters: dict) -> dict:
    rows, total, page, per_page = _page(
        conn,
        _order_query(scope, filters),
        (orders.c.created_at.desc(), orders.c.order_id),
        filters,
    )
    items = [row_dict(r) for r in rows]
    found = lines_of(conn, [i["order_id"] for i in items])
    for item in items:
        item["lines"] = found[item["order_id"]]
    return {"items": items, "total": total, "page": page, "per_page": per_page}


def export_rows(
    conn: sa.Connection, scope: Scope, filters: dict, after: tuple | None, limit: int
) -> list[dict]:
    """Keyset pages (created_at, order_id) for the F2 export: each page costs the same."""
    query = _order_query(scope, filters)
    if after is not None:
        query = query.where(sa.tuple_(orders.c.created_at, orders.c.order_id) > after)
    query = (
        query.add_columns(company_scope.c.name.label("company_name"))
        .outerjoin(company_scope, company_scope.c.company_id == orders.c.company_id)
        .order_by(orders.c.created_at, orders.c.order_id)
        .limit(limit)
    )
    counts = (
        sa.select(order_lines.c.order_id, sa.func.count().label("line_count"))
        .group_by(order_lines.c.order_id)
        .subquery()
    )
    query = query.add_columns(sa.func.coalesce(counts.c.line_count, 0).label("line_count"))
    query = query.outerjoin(counts, counts.c.order_id == orders.c.order_id)
    return [row_dict(r) for r in conn.execute(query)]


def open_orders_due(conn: sa.Connection, now: datetime, limit: int = 500) -> list[str]:
    return list(
        conn.execute(
            sa.select(orders.c.order_id)
            .where(orders.c.status.in_(("created", "confirmed")), orders.c.lapse_at <= now)
            .limit(limit)
        ).scalars()
    )


# -- offline applications -------------------------------------------------------------------
def _duplicates(conn: sa.Connection, references: set[str]) -> dict[str, int]:
    """How many live (not rejected, not deleted) applications carry each reference number."""
    if not references:
        return {}
    return {
        r.reference_number: r.count
        for r in conn.execute(
            sa.select(applications.c.reference_number, sa.func.count().label("count"))
            .where(
                applications.c.reference_number.in_(references),
                applications.c.status.not_in(("rejected", "deleted")),
            )
            .group_by(applications.c.reference_number)
        )
    }


def _flag(conn: sa.Connection, items: list[dict]) -> list[dict]:
    counts = _duplicates(conn, {i["reference_number"] for i in items})
    for item in items:
        live = item["status"] not in ("rejected", "deleted")
        item["duplicate_reference"] = counts.get(item["reference_number"], 0) > (1 if live else 0)
    return items


def application_row(conn: sa.Connection, application_id: str) -> dict | None:
    row = conn.execute(
        sa.select(applications).where(applications.c.application_id == application_id)
    ).first()
    if row is None or row.status == "deleted":
        return None
    return _flag(conn, [row_dict(row)])[0]


def application_list(conn: sa.Connection, scope: Scope, filters: dict) -> list[dict]:
    a = applications
    query = sa.select(a).where(_in_scope(a.c.company_id, scope), a.c.status != "deleted")
    for name in (
        "status",
        "company_id",
        "currency",
        "reference_number",
        "applicant",
        "reviewer",
        "amount",
    ):
        if filters.get(name) is not None:
            query = query.where(a.c[name] == filters[name])
    if filters.get("payer"):
        query = query.where(a.c.payer.ilike(f"%{filters['payer']}%"))
    if filters.get("amount_min") is not None:
        query = query.where(a.c.amount >= filters["amount_min"])
    if filters.get("amount_max") is not None:
        query = query.where(a.c.amount <= filters["amount_max"])
    if filters.get("created_from"):
        query = query.where(a.c.created_at >= filters["created_from"])
    if filters.get("created_to"):
        query = query.where(a.c.created_at < filters["created_to"])
    if filters.get("pending") is not None:
        pending = a.c.status == "submitted"
        query = query.where(pending if filters["pending"] else sa.not_(pending))
    rows = conn.execute(query.order_by(a.c.created_at.desc(), a.c.application_id)).all()
    items = _flag(conn, [row_dict(r) for r in rows])
    if filters.get("duplicate_reference") is not None:
        items = [i for i in items if i["duplicate_reference"] == filters["duplicate_reference"]]
    return items


# -- configs --------------------------------------------------------------------------------
def config_row(conn: sa.Connection, company_id: str) -> dict | None:
    row = conn.execute(sa.select(configs).where(configs.c.company_id == company_id)).first()
    return row_dict(row) if row is not None else None


def region_of(conn: sa.Connection, company_id: str) -> str:
    """The config's region decides payment methods; the company's region until configured."""
    configured = sa.select(configs.c.region).where(configs.c.company_id == company_id)
    registered = sa.select(company_scope.c.region).where(company_scope.c.company_id == company_id)
    region = conn.execute(
        sa.select(sa.func.coalesce(configured.scalar_subquery(), registered.scalar_subquery()))
    ).scalar()
    return region or "china"


def is_within(conn: sa.Connection, company_id: str, root_id: str) -> bool:
    """Is ``company_id`` ``root_id`` or below it? Walks up from the company (a short path)
    instead of listing the root's whole subtree."""
    up = (
        sa.select(company_scope.c.company_id, company_scope.c.parent_id)
        .where(company_scope.c.company_id == company_id)
        .cte("up", recursive=True)
    )
    up = up.union_all(
        sa.select(company_scope.c.company_id, company_scope.c.parent_id).where(
            company_scope.c.company_id == up.c.parent_id
        )
    )
    found = conn.execute(sa.select(up.c.company_id).where(up.c.company_id == root_id).limit(1))
    return found.first() is not None


def companies_with_configs(conn: sa.Connection, ids: set[str], configured: bool | None) -> list:
    query = (
        sa.select(company_scope, *[c.label(f"config_{c.name}") for c in configs.c])
        .outerjoin(configs, configs.c.company_id == company_scope.c.company_id)
        .where(company_scope.c.company_id.in_(ids))
        .order_by(company_scope.c.name, company_scope.c.company_id)
    )
    if configured is not None:
        has = configs.c.company_id.is_not(None)
        query = query.where(has if configured else sa.not_(has))
    result = []
    for row in conn.execute(query):
        data = row_dict(row)
        config = {k[7:]: v for k, v in data.items() if k.startswith("config_")}
        result.append(
            {
                "company_id": data["company_id"],
                "parent_id": data["parent_id"],
                "name": data["name"],
                "region": data["region"],
                "configured": config["company_id"] is not None,
                "config": config if config["company_id"] is not None else None,
            }
        )
    return result


# -- statements and auto-renewals -----------------------------------------------------------
def statement_rows(conn: sa.Connection, company_id: str) -> list[dict]:
    rows = conn.execute(
        sa.select(statements)
        .where(statements.c.company_id == company_id)
        .order_by(statements.c.period_start.desc())
    )
    return [_statement(r) for r in rows]


def statement_row(conn: sa.Connection, statement_id: str) -> dict | None:
    row = conn.execute(
        sa.select(statements).where(statements.c.statement_id == statement_id)
    ).first()
    return _statement(row) if row is not None else None


def _statement(row: sa.Row) -> dict:
    data = row_dict(row)
    data["balances"] = [
        {k: (v if k in ("currency", "entries") else Decimal(v)) for k, v in part.items()}
        for part in data["balances"]
    ]
    for part in data["balances"]:
        part["entries"] = int(part["entries"])
    return data


def existing_statements(conn: sa.Connection, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    return set(
        conn.execute(
            sa.select(statements.c.statement_id).where(statements.c.statement_id.in_(ids))
        ).scalars()
    )


def auto_renewal_rows(conn: sa.Connection, scope: Scope, filters: dict) -> list[dict]:
    query = sa.select(auto_renewals).where(_in_scope(auto_renewals.c.company_id, scope))
    for name in ("company_id", "device_id", "outcome"):
        if filters.get(name):
            query = query.where(auto_renewals.c[name] == filters[name])
    rows = conn.execute(query.order_by(auto_renewals.c.at.desc()).limit(500))
    return [row_dict(r) for r in rows]
