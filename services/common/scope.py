"""Company scope where the data lives.

Every service that must check "is this company within the actor's subtree" keeps this
small view of the company tree, fed by the devices service's ``company_registered`` /
``company_changed`` events (idempotent: a row carries the sequence it was written at).
"""

from __future__ import annotations

import sqlalchemy as sa

from services.common.actor import Actor
from services.common.errors import Forbidden

scope_meta = sa.MetaData()
company_scope = sa.Table(
    "company_scope",
    scope_meta,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("parent_id", sa.String(64), nullable=True, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("region", sa.String(10), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),
)


def upsert_company(
    conn: sa.Connection,
    company_id: str,
    parent_id: str | None,
    name: str,
    region: str,
    sequence: int,
) -> None:
    row = conn.execute(
        sa.select(company_scope.c.sequence).where(company_scope.c.company_id == company_id)
    ).first()
    values = {"parent_id": parent_id, "name": name, "region": region, "sequence": sequence}
    if row is None:
        conn.execute(company_scope.insert().values(company_id=company_id, **values))
    elif row.sequence < sequence:
        conn.execute(
            company_scope.update().where(company_scope.c.company_id == company_id).values(**values)
        )


def subtree_ids(conn: sa.Connection, root_id: str) -> set[str]:
    tree = (
        sa.select(company_scope.c.company_id)
        .where(company_scope.c.company_id == root_id)
        .cte("tree", recursive=True)
    )
    tree = tree.union_all(
        sa.select(company_scope.c.company_id).where(company_scope.c.parent_id == tree.c.company_id)
    )
    return set(conn.execute(sa.select(tree.c.company_id)).scalars())


def in_scope(conn: sa.Connection, actor: Actor, company_id: str) -> bool:
    if actor.is_system:
        return company(conn, company_id) is not None
    return company_id in subtree_ids(conn, actor.company_id)


def require_scope(conn: sa.Connection, actor: Actor, company_id: str) -> None:
    if not in_scope(conn, actor, company_id):
        raise Forbidden("that company is outside your company and its subsidiaries")


def company(conn: sa.Connection, company_id: str) -> sa.Row | None:
    return conn.execute(
        sa.select(company_scope).where(company_scope.c.company_id == company_id)
    ).first()
