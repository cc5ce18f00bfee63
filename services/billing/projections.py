"""Billing read views. All of them are projections of the ledger's events: ``replay``
drops and rebuilds them, ``verify`` compares them with a fresh replay."""

from __future__ import annotations

import sqlalchemy as sa

from services.billing.domain import Account, AccountConfig, OfflineApplication, Order
from services.common.projector import Projection
from services.common.views import Money, UTCDateTime

metadata = sa.MetaData()

balances = sa.Table(
    "balances",
    metadata,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("balance", Money, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("entry_id", sa.String(80), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("direction", sa.String(6), nullable=False),  # credit or debit
    sa.Column("amount", Money, nullable=False),
    sa.Column("balance_after", Money, nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("reference", sa.String(80), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("order_number", sa.String(40), nullable=False, unique=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("order_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("method", sa.String(20)),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("line_id", sa.String(80), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False, index=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("package_id", sa.String(64), nullable=False),
    sa.Column("package_name", sa.String(200), nullable=False),
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
)

history = sa.Table(
    "history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject_id", sa.String(64), nullable=False, index=True),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("detail", sa.String(500)),
    sa.Column("at", UTCDateTime, nullable=False),
)

applications = sa.Table(
    "offline_applications",
    metadata,
    sa.Column("application_id", sa.String(64), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("payer", sa.String(200), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("reference_number", sa.String(100), nullable=False, index=True),
    sa.Column("remark", sa.String(500), nullable=False),
    sa.Column("applicant", sa.String(100), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("reviewer", sa.String(100)),
    sa.Column("opinion", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

configs = sa.Table(
    "account_configs",
    metadata,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("config_id", sa.String(64), nullable=False, unique=True),
    sa.Column("region", sa.String(10), nullable=False),
    sa.Column("default_currency", sa.String(3), nullable=False),
    sa.Column("billing_cycle", sa.String(10), nullable=False),
    sa.Column("auto_renewal", sa.Boolean, nullable=False),
    sa.Column("push_enabled", sa.Boolean, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("push_emails", sa.JSON, nullable=False),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

projection = Projection("billing.views", metadata)


def _note(conn: sa.Connection, e: object, action: str, detail: str = "") -> None:
    meta = getattr(e, "meta", None) or {}
    conn.execute(
        history.insert().values(
            subject_id=str(e.originator_id),  # type: ignore[attr-defined]
            action=action,
            actor=meta.get("actor"),
            detail=detail[:500],
            at=e.timestamp,  # type: ignore[attr-defined]
        )
    )


# -- accounts -----------------------------------------------------------------------------
account_companies = sa.Table(
    "account_companies",
    metadata,
    sa.Column("account_id", sa.String(64), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False),
)


@projection.on(Account.Created)
def account_opened(conn: sa.Connection, e: Account.Created) -> None:
    conn.execute(
        account_companies.insert().values(account_id=str(e.originator_id), company_id=e.company_id)
    )


@projection.on(Account.Credited)
def account_credited(conn: sa.Connection, e: Account.Credited) -> None:
    _entry(conn, e, "credit", e.amount)


@projection.on(Account.Debited)
def account_debited(conn: sa.Connection, e: Account.Debited) -> None:
    _entry(conn, e, "debit", -e.amount)


def _entry(conn: sa.Connection, e: Account.Credited, direction: str, change: object) -> None:
    company_id = conn.execute(
        sa.select(account_companies.c.company_id).where(
            account_companies.c.account_id == str(e.originator_id)
        )
    ).scalar_one()
    where = (balances.c.company_id == company_id, balances.c.currency == e.currency)
    current = conn.execute(sa.select(balances.c.balance).where(*where)).scalar()
    new = (current if current is not None else 0) + change
    if current is None:
        conn.execute(
            balances.insert().values(
                company_id=company_id, currency=e.currency, balance=new, changed_at=e.timestamp
            )
        )
    else:
        conn.execute(balances.update().where(*where).values(balance=new, changed_at=e.timestamp))
    conn.execute(
        ledger_entries.insert().values(
            entry_id=f"{e.originator_id}:{e.originator_version}",
            company_id=company_id,
            currency=e.currency,
            direction=direction,
            amount=e.amount,
            balance_after=new,
            reason=e.reason,
            reference=e.reference,
            at=e.timestamp,
        )
    )


# -- orders -------------------------------------------------------------------------------
def _order(e: object) -> sa.Update:
    return orders.update().where(orders.c.order_id == str(e.originator_id))  # type: ignore[attr-defined]


@projection.on(Order.Created)
def order_created(conn: sa.Connection, e: Order.Created) -> None:
    conn.execute(
        orders.insert().values(
            order_id=str(e.originator_id),
            order_number=e.number,
            company_id=e.company_id,
            order_type=e.order_type,
            status="created",
            currency=e.currency,
            total=e.total,
            created_by=e.created_by,
            created_at=e.created_at,
            changed_at=e.timestamp,
        )
    )
    for line in e.lines:
        conn.execute(order_lines.insert().values(order_id=str(e.originator_id), **line))
    _note(conn, e, "created", f"{e.order_type} order {e.number}: {e.total} {e.currency}")


@projection.on(Order.Confirmed)
def order_confirmed(conn: sa.Connection, e: Order.Confirmed) -> None:
    conn.execute(_order(e).values(status="confirmed", changed_at=e.timestamp))
    _note(conn, e, "confirmed")


@projection.on(Order.Paid)
def order_paid(conn: sa.Connection, e: Order.Paid) -> None:
    conn.execute(
        _order(e).values(status="paid", method=e.method, paid_at=e.at, changed_at=e.timestamp)
    )
    _note(conn, e, "paid", f"by {e.method}")


@projection.on(Order.Cancelled)
def order_cancelled(conn: sa.Connection, e: Order.Cancelled) -> None:
    conn.execute(_order(e).values(status="cancelled", changed_at=e.timestamp))
    _note(conn, e, "cancelled")


# -- offline applications -----------------------------------------------------------------
def _application(e: object) -> sa.Update:
    return applications.update().where(applications.c.application_id == str(e.originator_id))  # type: ignore[attr-defined]


@projection.on(OfflineApplication.Created)
def application_filed(conn: sa.Connection, e: OfflineApplication.Created) -> None:
    conn.execute(
        applications.insert().values(
            application_id=str(e.originator_id),
            company_id=e.company_id,
            payer=e.payer,
            currency=e.currency,
            amount=e.amount,
            reference_number=e.reference_number,
            remark=e.remark,
            applicant=e.applicant,
            status="draft",
            created_at=e.timestamp,
            changed_at=e.timestamp,
        )
    )
    _note(conn, e, "drafted", f"{e.amount} {e.currency}, reference {e.reference_number}")


@projection.on(OfflineApplication.Submitted)
def application_submitted(conn: sa.Connection, e: OfflineApplication.Submitted) -> None:
    conn.execute(_application(e).values(status="submitted", changed_at=e.timestamp))
    _note(conn, e, "submitted")


def _reviewed(status: str):  # noqa: ANN202
    def handler(conn: sa.Connection, e: object) -> None:
        conn.execute(
            _application(e).values(
                status=status,
                reviewer=e.reviewer,  # type: ignore[attr-defined]
                opinion=e.opinion,  # type: ignore[attr-defined]
                changed_at=e.timestamp,  # type: ignore[attr-defined]
            )
        )
        _note(conn, e, status, e.opinion)  # type: ignore[attr-defined]

    return handler


projection.on(OfflineApplication.Approved)(_reviewed("approved"))
projection.on(OfflineApplication.Returned)(_reviewed("returned"))
projection.on(OfflineApplication.Rejected)(_reviewed("rejected"))


# -- account configs ----------------------------------------------------------------------
@projection.on(AccountConfig.Created)
def config_created(conn: sa.Connection, e: AccountConfig.Created) -> None:
    conn.execute(
        configs.insert().values(
            config_id=str(e.originator_id),
            company_id=e.company_id,
            **e.settings,
            changed_at=e.timestamp,
        )
    )


@projection.on(AccountConfig.Changed)
def config_changed(conn: sa.Connection, e: AccountConfig.Changed) -> None:
    conn.execute(
        configs.update()
        .where(configs.c.config_id == str(e.originator_id))
        .values(**e.settings, changed_at=e.timestamp)
    )
