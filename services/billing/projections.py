"""Billing read views. Every one is a projection of the ledger's events: ``replay`` drops and
rebuilds them, ``verify`` compares them with a fresh replay. Handlers stage rows in a
ViewBatch (services/billing/batching.py), written once per page of events. An order's or an
application's history is read from its own events (services/billing/history.py).

The company tree (``company_scope``) is not here: it is fed by the devices service's events
and cannot be rebuilt from billing's own log.
"""

from __future__ import annotations

from decimal import Decimal

import sqlalchemy as sa

from services.billing.batching import ViewBatch
from services.billing.domain import (
    Account,
    AccountConfig,
    AutoRenewal,
    OfflineApplication,
    Order,
    Statement,
)
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
    sa.Column("company_id", sa.String(64), nullable=False),
    sa.Column("sequence", sa.Integer, nullable=False),  # the account's event version
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("direction", sa.String(6), nullable=False),  # credit or debit
    sa.Column("amount", Money, nullable=False),
    sa.Column("balance_after", Money, nullable=False),
    sa.Column("reason", sa.String(40), nullable=False),
    sa.Column("reference", sa.String(120), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ledger_entries_company_at", "company_id", "at", "sequence"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.String(64), primary_key=True),
    sa.Column("order_number", sa.String(40), nullable=False, unique=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("order_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("total", Money, nullable=False),
    sa.Column("refunded_total", Money, nullable=False),
    sa.Column("method", sa.String(20)),
    sa.Column("payment_reference", sa.String(100)),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("paid_at", UTCDateTime),
    sa.Column("lapse_at", UTCDateTime),
)

order_lines = sa.Table(
    "order_lines",
    metadata,
    sa.Column("line_id", sa.String(80), primary_key=True),
    sa.Column("order_id", sa.String(64), nullable=False, index=True),
    sa.Column("device_id", sa.String(64), nullable=False),
    sa.Column("binding_id", sa.String(64)),
    sa.Column("package_id", sa.String(64), nullable=False),
    sa.Column("package_name", sa.String(200), nullable=False),
    sa.Column("months", sa.Integer, nullable=False),
    sa.Column("unit_price", Money, nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("refunded", sa.Boolean, nullable=False),
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
    sa.Column("submitted_at", UTCDateTime),
    sa.Column("reviewed_at", UTCDateTime),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

configs = sa.Table(
    "account_configs",
    metadata,
    sa.Column("company_id", sa.String(64), primary_key=True),
    sa.Column("region", sa.String(10), nullable=False),
    sa.Column("default_currency", sa.String(3), nullable=False),
    sa.Column("billing_cycle", sa.String(10), nullable=False),
    sa.Column("auto_renewal", sa.Boolean, nullable=False),
    sa.Column("push_enabled", sa.Boolean, nullable=False),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("push_emails", sa.JSON, nullable=False),
    sa.Column("changed_by", sa.String(100)),
    sa.Column("changed_at", UTCDateTime, nullable=False),
)

statements = sa.Table(
    "statements",
    metadata,
    sa.Column("statement_id", sa.String(64), primary_key=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("cycle", sa.String(10), nullable=False),
    sa.Column("period_start", UTCDateTime, nullable=False),
    sa.Column("period_end", UTCDateTime, nullable=False),
    sa.Column("balances", sa.JSON, nullable=False),  # per currency, amounts as strings
    sa.Column("issued_at", UTCDateTime, nullable=False),
)

auto_renewals = sa.Table(
    "auto_renewals",
    metadata,
    sa.Column("renewal_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("company_id", sa.String(64), nullable=False, index=True),
    sa.Column("package_id", sa.String(64), nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("order_id", sa.String(64)),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("amount", Money, nullable=False),
    sa.Column("balance", Money, nullable=False),
    sa.Column("missing", Money, nullable=False),
    sa.Column("reason", sa.String(200)),
    sa.Column("at", UTCDateTime, nullable=False),
)

projection = Projection("billing.views", metadata)
on = projection.on


def _id(e: object) -> str:
    return str(e.originator_id)  # type: ignore[attr-defined]


# -- accounts -------------------------------------------------------------------------------
def _entry(batch: ViewBatch, e: Account.Credited | Account.Debited, direction: str) -> None:
    batch.upsert(
        balances,
        company_id=e.company_id,
        currency=e.currency,
        balance=e.balance,
        changed_at=e.timestamp,
    )
    batch.insert(
        ledger_entries,
        entry_id=f"{e.originator_id}:{e.originator_version}",
        company_id=e.company_id,
        sequence=e.originator_version,
        currency=e.currency,
        direction=direction,
        amount=e.amount,
        balance_after=e.balance,
        reason=e.reason,
        reference=e.reference,
        at=e.timestamp,
    )


@on(Account.Credited)
def account_credited(batch: ViewBatch, e: Account.Credited) -> None:
    _entry(batch, e, "credit")


@on(Account.Debited)
def account_debited(batch: ViewBatch, e: Account.Debited) -> None:
    _entry(batch, e, "debit")


# -- orders ---------------------------------------------------------------------------------
def _order(batch: ViewBatch, e: object, **values: object) -> None:
    # kept lean: replay speed is rows times columns; the history has every time
    batch.update(orders, (_id(e),), **values)


@on(Order.Created)
def order_created(batch: ViewBatch, e: Order.Created) -> None:
    batch.insert(
        orders,
        order_id=_id(e),
        order_number=e.number,
        company_id=e.company_id,
        order_type=e.order_type,
        status="created",
        currency=e.currency,
        total=e.total,
        refunded_total=Decimal("0.00"),
        method=None,
        payment_reference=None,
        created_by=e.created_by,
        created_at=e.created_at,
        confirmed_at=None,
        paid_at=None,
        lapse_at=e.lapse_at,
    )
    for line in e.lines:
        batch.insert(
            order_lines,
            line_id=line["line_id"],
            order_id=_id(e),
            device_id=line["device_id"],
            binding_id=line.get("binding_id"),
            package_id=line["package_id"],
            package_name=line["package_name"],
            months=line["months"],
            unit_price=line["unit_price"],
            amount=line["amount"],
            refunded=False,
        )


@on(Order.Confirmed)
def order_confirmed(batch: ViewBatch, e: Order.Confirmed) -> None:
    _order(batch, e, status="confirmed", confirmed_at=e.at)


@on(Order.Paid)
def order_paid(batch: ViewBatch, e: Order.Paid) -> None:
    _order(batch, e, status="paid", method=e.method, paid_at=e.at, payment_reference=e.reference)


@on(Order.Cancelled)
def order_cancelled(batch: ViewBatch, e: Order.Cancelled) -> None:
    _order(batch, e, status="cancelled")


@on(Order.Lapsed)
def order_lapsed(batch: ViewBatch, e: Order.Lapsed) -> None:
    _order(batch, e, status="lapsed")


@on(Order.LineRefunded)
def order_line_refunded(batch: ViewBatch, e: Order.LineRefunded) -> None:
    _order(batch, e, refunded_total=e.refunded_total)
    batch.update(order_lines, (e.line_id,), refunded=True)


# -- offline applications -------------------------------------------------------------------
def _application(batch: ViewBatch, e: object, **values: object) -> None:
    batch.update(applications, (_id(e),), changed_at=e.timestamp, **values)  # type: ignore[attr-defined]


@on(OfflineApplication.Created)
def application_filed(batch: ViewBatch, e: OfflineApplication.Created) -> None:
    batch.insert(
        applications,
        application_id=_id(e),
        company_id=e.company_id,
        payer=e.payer,
        currency=e.currency,
        amount=e.amount,
        reference_number=e.reference_number,
        remark=e.remark,
        applicant=e.applicant,
        status="draft",
        reviewer=None,
        opinion=None,
        created_at=e.timestamp,
        submitted_at=None,
        reviewed_at=None,
        changed_at=e.timestamp,
    )


@on(OfflineApplication.Edited)
def application_edited(batch: ViewBatch, e: OfflineApplication.Edited) -> None:
    _application(batch, e, **e.changes)


@on(OfflineApplication.Deleted)
def application_deleted(batch: ViewBatch, e: OfflineApplication.Deleted) -> None:
    _application(batch, e, status="deleted")


@on(OfflineApplication.Submitted)
def application_submitted(batch: ViewBatch, e: OfflineApplication.Submitted) -> None:
    _application(batch, e, status="submitted", submitted_at=e.timestamp)


def _reviewed(status: str):  # noqa: ANN202 - a handler factory
    def handler(batch: ViewBatch, e: OfflineApplication.Approved) -> None:
        _application(
            batch, e, status=status, reviewer=e.reviewer, opinion=e.opinion, reviewed_at=e.at
        )

    return handler


on(OfflineApplication.Approved)(_reviewed("approved"))
on(OfflineApplication.Returned)(_reviewed("returned"))
on(OfflineApplication.Rejected)(_reviewed("rejected"))


# -- account configs ------------------------------------------------------------------------
def _config(batch: ViewBatch, e: object, company_id: str, settings: dict) -> None:
    meta = getattr(e, "meta", None) or {}
    batch.upsert(
        configs,
        company_id=company_id,
        **settings,
        changed_by=meta.get("actor"),
        changed_at=e.timestamp,  # type: ignore[attr-defined]
    )


@on(AccountConfig.Created)
def config_created(batch: ViewBatch, e: AccountConfig.Created) -> None:
    _config(batch, e, e.company_id, e.settings)


@on(AccountConfig.Changed)
def config_changed(batch: ViewBatch, e: AccountConfig.Changed) -> None:
    _config(batch, e, e.company_id, e.settings)


@on(AccountConfig.Deleted)
def config_deleted(batch: ViewBatch, e: AccountConfig.Deleted) -> None:
    batch.delete(configs, (e.company_id,))


# -- auto-renewals and statements -----------------------------------------------------------
@on(AutoRenewal.Created)
def auto_renewal_recorded(batch: ViewBatch, e: AutoRenewal.Created) -> None:
    batch.insert(
        auto_renewals,
        renewal_id=_id(e),
        device_id=e.device_id,
        company_id=e.company_id,
        package_id=e.package_id,
        expires_at=e.expires_at,
        outcome=e.outcome,
        order_id=e.order_id,
        currency=e.currency,
        amount=e.amount,
        balance=e.balance,
        missing=max(e.amount - e.balance, Decimal("0.00")),
        reason=e.reason,
        at=e.timestamp,
    )


@on(Statement.Created)
def statement_issued(batch: ViewBatch, e: Statement.Created) -> None:
    batch.insert(
        statements,
        statement_id=_id(e),
        company_id=e.company_id,
        cycle=e.cycle,
        period_start=e.period_start,
        period_end=e.period_end,
        balances=[{k: str(v) for k, v in part.items()} for part in e.balances],
        issued_at=e.timestamp,
    )
