"""Payments read views: one row per attempt, and each attempt's history."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from services.common.projector import Projection
from services.common.views import Money, UTCDateTime
from services.payments.domain import PaymentAttempt

metadata = sa.MetaData()
attempts = sa.Table(
    "payment_attempts",
    metadata,
    sa.Column("attempt_id", sa.String(64), primary_key=True),
    sa.Column("out_trade_no", sa.String(64), nullable=False, unique=True),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("reference_id", sa.String(64), nullable=False, index=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("method", sa.String(20), nullable=False),
    sa.Column("scene", sa.String(10), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("description", sa.String(200), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("code_url", sa.Text, nullable=True),
    sa.Column("approve_url", sa.Text, nullable=True),
    sa.Column("provider_ref", sa.String(100), nullable=True),
    sa.Column("provider_trade_no", sa.String(100), nullable=True),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("late", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("paid_at", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)
history = sa.Table(
    "payment_attempt_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("attempt_id", sa.String(64), nullable=False, index=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("what", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

projection = Projection("payments.views", metadata)


def _change(conn: sa.Connection, e: Any, what: str, detail: str, **values: Any) -> None:
    attempt_id = str(e.originator_id)
    conn.execute(
        attempts.update()
        .where(attempts.c.attempt_id == attempt_id)
        .values(updated_at=e.timestamp, **values)
    )
    conn.execute(
        history.insert().values(attempt_id=attempt_id, at=e.timestamp, what=what, detail=detail)
    )


@projection.on(PaymentAttempt.Created)
def started(conn: sa.Connection, e: Any) -> None:
    conn.execute(
        attempts.insert().values(
            attempt_id=str(e.originator_id),
            out_trade_no=e.out_trade_no,
            purpose=e.purpose,
            reference_id=e.reference_id,
            company_id=e.company_id,
            method=e.method,
            scene=e.scene,
            amount=e.amount,
            currency=e.currency,
            description=e.description,
            status="pending",
            late=False,
            created_at=e.created_at,
            expires_at=e.expires_at,
            updated_at=e.timestamp,
        )
    )
    conn.execute(
        history.insert().values(
            attempt_id=str(e.originator_id),
            at=e.timestamp,
            what="started",
            detail=f"{e.method} {e.amount} {e.currency}",
        )
    )


@projection.on(PaymentAttempt.Linked)
def linked(conn: sa.Connection, e: Any) -> None:
    _change(
        conn,
        e,
        "linked",
        "the provider holds the trade",
        code_url=e.code_url,
        approve_url=e.approve_url,
        provider_ref=e.provider_ref,
    )


@projection.on(PaymentAttempt.Succeeded)
def succeeded(conn: sa.Connection, e: Any) -> None:
    _change(
        conn,
        e,
        "succeeded",
        f"paid ({e.source}{', late' if e.late else ''})",
        status="succeeded",
        provider_trade_no=e.provider_trade_no,
        paid_at=e.paid_at,
        late=e.late,
        reason=None,
    )


@projection.on(PaymentAttempt.Failed)
def failed(conn: sa.Connection, e: Any) -> None:
    _change(conn, e, "failed", e.reason, status="failed", reason=e.reason)


@projection.on(PaymentAttempt.Closed)
def closed(conn: sa.Connection, e: Any) -> None:
    _change(conn, e, "closed", e.reason, status="closed", reason=e.reason)


@projection.on(PaymentAttempt.Mismatched)
def mismatched(conn: sa.Connection, e: Any) -> None:
    detail = f"{e.reason} (reported {e.reported_amount} {e.reported_currency})"
    row = conn.execute(
        sa.select(attempts.c.status).where(attempts.c.attempt_id == str(e.originator_id))
    ).first()
    status = "mismatch" if row is not None and row.status == "pending" else None
    values: dict[str, Any] = {"reason": e.reason}
    if status:
        values["status"] = status
    _change(conn, e, "mismatch", detail, **values)
