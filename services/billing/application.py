"""Billing use cases: load, decide (in the domain), save atomically."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID, uuid4

import sqlalchemy as sa

from services.billing.domain import (
    Account,
    AccountConfig,
    LedgerRefused,
    OfflineApplication,
    Order,
    account_id,
    payment_methods,
)
from services.billing.projections import (
    applications,
    balances,
    configs,
    history,
    order_lines,
    orders,
    projection,
)
from services.common import clock
from services.common.actor import Actor
from services.common.domain import event_meta
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.scope import company, company_scope, require_scope, scope_meta, subtree_ids
from services.common.store import ServiceApplication
from services.common.views import row_dict


class DevicesPort(Protocol):
    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]: ...
    def list_devices(self, actor: dict, filters: dict) -> dict: ...


class CatalogPort(Protocol):
    def quote(self, package_id: str, months: int) -> dict: ...


def _refusal(exc: LedgerRefused, field: str | None = None) -> Conflict:
    return Conflict(str(exc), {field: [str(exc)]} if field else None)


class BillingApplication(ServiceApplication):
    service = "billing"
    projection = projection
    snapshotting_intervals = {Account: 200, Order: 50}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope_meta.create_all(self.engine)  # the company tree, fed by devices' events

    # -- helpers -------------------------------------------------------------------------
    def _scope(self, actor: Actor, company_id: str) -> None:
        with self.engine.connect() as conn:
            if company(conn, company_id) is None:
                raise NotFound(f"company {company_id} not found", {"company_id": ["not found"]})
            require_scope(conn, actor, company_id)

    def _region(self, company_id: str) -> str:
        with self.engine.connect() as conn:
            region = conn.execute(
                sa.select(configs.c.region).where(configs.c.company_id == company_id)
            ).scalar()
            if region is None:
                region = conn.execute(
                    sa.select(company_scope.c.region).where(
                        company_scope.c.company_id == company_id
                    )
                ).scalar()
        return region or "china"

    def _history(self, conn: sa.Connection, subject_id: str) -> list[dict]:
        rows = conn.execute(
            sa.select(history).where(history.c.subject_id == subject_id).order_by(history.c.id)
        )
        return [row_dict(r) for r in rows]

    def _account(self, company_id: str) -> Account:
        return self.find(account_id(company_id)) or Account(company_id=company_id)

    # -- accounts ------------------------------------------------------------------------
    def account(self, actor: Actor, company_id: str) -> dict:
        self._scope(actor, company_id)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(balances.c.currency, balances.c.balance)
                .where(balances.c.company_id == company_id)
                .order_by(balances.c.currency)
            ).all()
        found = {r.currency: r.balance for r in rows}
        return {
            "company_id": company_id,
            "balances": [
                {"currency": c, "balance": found.get(c, Decimal("0.00"))} for c in ("CNY", "USD")
            ],
        }

    # -- account configs (C4/S2) ---------------------------------------------------------
    def set_account_config(self, actor: Actor, company_id: str, settings: dict) -> dict:
        actor.require("sales", "admin")
        self._scope(actor, company_id)
        settings = {**settings, "push_emails": list(dict.fromkeys(settings["push_emails"]))}
        with event_meta(**actor.meta()):
            config = self.find(AccountConfig.create_id(company_id))
            if config is None:
                config = AccountConfig(company_id=company_id, settings=settings)
            else:
                config.change(settings=settings)
        self.save(config)
        return self.account_config(actor, company_id)

    def account_config(self, actor: Actor, company_id: str) -> dict:
        self._scope(actor, company_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(configs).where(configs.c.company_id == company_id)).first()
        if row is None:
            raise NotFound(f"company {company_id} has no billing account config")
        return row_dict(row)

    # -- offline recharge (S1/F1) --------------------------------------------------------
    def file_offline_application(self, actor: Actor, data: dict) -> dict:
        actor.require("sales", "admin")
        self._scope(actor, data["company_id"])
        with event_meta(**actor.meta()):
            filed = OfflineApplication(
                company_id=data["company_id"],
                payer=data["payer"].strip(),
                currency=data["currency"],
                amount=data["amount"],
                reference_number=data["reference_number"].strip(),
                applicant=actor.username,
                remark=data.get("remark", ""),
            )
            if data.get("submit"):
                filed.submit(by=actor.username)
        self.save(filed)
        return self.offline_application(actor, str(filed.id))

    def _load_application(self, actor: Actor, application_id: str) -> OfflineApplication:
        try:
            found = self.find(UUID(application_id))
        except ValueError:
            found = None
        if not isinstance(found, OfflineApplication):
            raise NotFound(f"offline application {application_id} not found")
        with self.engine.connect() as conn:
            if found.company_id not in subtree_ids(conn, actor.company_id) and not actor.is_system:
                raise NotFound(f"offline application {application_id} not found")
        return found

    def submit_offline_application(self, actor: Actor, application_id: str) -> dict:
        actor.require("sales", "admin")
        filed = self._load_application(actor, application_id)
        try:
            with event_meta(**actor.meta()):
                filed.submit(by=actor.username)
        except LedgerRefused as exc:
            raise _refusal(exc) from exc
        self.save(filed)
        return self.offline_application(actor, application_id)

    def review_offline_application(self, actor: Actor, application_id: str, data: dict) -> dict:
        """F1: approve (balance credited in the same write), return, or reject."""
        actor.require("finance", "admin")
        now = clock.now()

        def decide() -> list:
            filed = self._load_application(actor, application_id)
            try:
                with event_meta(**actor.meta()):
                    if data["decision"] == "approve":
                        filed.approve(actor.username, data["opinion"], now)
                        account = self._account(filed.company_id)
                        account.credit(
                            currency=filed.currency,
                            amount=filed.amount,
                            reason="offline_application",
                            reference=str(filed.id),
                        )
                        return [filed, account]
                    if data["decision"] == "return":
                        filed.return_to_applicant(actor.username, data["opinion"], now)
                    else:
                        filed.reject(actor.username, data["opinion"], now)
                    return [filed]
            except LedgerRefused as exc:
                raise _refusal(exc) from exc

        self.retrying(decide)
        return self.offline_application(actor, application_id)

    def offline_application(self, actor: Actor, application_id: str) -> dict:
        self._load_application(actor, application_id)
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(applications).where(applications.c.application_id == application_id)
            ).first()
            if row is None:
                raise NotFound(f"offline application {application_id} not found")
            data = row_dict(row)
            data["duplicate_reference"] = self._duplicate_reference(conn, data)
            data["history"] = self._history(conn, application_id)
        return data

    def _duplicate_reference(self, conn: sa.Connection, data: dict) -> bool:
        return (
            conn.execute(
                sa.select(sa.func.count()).where(
                    applications.c.reference_number == data["reference_number"],
                    applications.c.application_id != data["application_id"],
                    applications.c.status != "rejected",
                )
            ).scalar_one()
            > 0
        )

    def list_offline_applications(self, actor: Actor, filters: dict) -> list[dict]:
        actor.require("sales", "finance", "admin")
        with self.engine.connect() as conn:
            query = sa.select(applications).order_by(applications.c.created_at.desc())
            if not actor.is_system:
                query = query.where(
                    applications.c.company_id.in_(subtree_ids(conn, actor.company_id))
                )
            for name in ("status", "company_id", "currency", "reference_number"):
                if filters.get(name):
                    query = query.where(applications.c[name] == filters[name])
            result = []
            for row in conn.execute(query):
                data = row_dict(row)
                data["duplicate_reference"] = self._duplicate_reference(conn, data)
                result.append(data)
        return result

    # -- renewal center and orders (C1/C2) -----------------------------------------------
    def renewal_center(
        self, actor: Actor, within_days: int, devices: DevicesPort, catalog: CatalogPort
    ) -> list[dict]:
        """Devices that are expired or expire within the window, with package and price."""
        page = devices.list_devices(
            actor.to_rpc(), {"expires_within_days": within_days, "per_page": 500}
        )
        result = []
        for device in page["items"]:
            if device["status"] == "suspended":
                continue
            item = {
                **device,
                "expires_at": datetime.fromisoformat(device["expires_at"]),
                "renewable": False,
                "reason": None,
            }
            if not device.get("package_id"):
                item["reason"] = "no renewal package is bound to this device"
            else:
                quote = catalog.quote(device["package_id"], 1)
                item.update(
                    package_name=quote["name"],
                    pricing=quote["pricing"],
                    unit_price=quote["unit_price"],
                    currency=quote["currency"],
                    renewable=True,
                )
            result.append(item)
        return result

    def create_renewal_order(
        self, actor: Actor, data: dict, devices: DevicesPort, catalog: CatalogPort
    ) -> dict:
        actor.require("customer", "admin")
        months = data["months"]
        found = devices.devices_for_order(actor.to_rpc(), data["device_ids"])
        unbound = [d["device_id"] for d in found if not d["package_id"]]
        if unbound:
            raise ValidationFailed(
                "some devices have no renewal package bound",
                {"device_ids": [f"{d}: no renewal package bound" for d in unbound]},
            )
        suspended = [d["device_id"] for d in found if d["status"] == "suspended"]
        if suspended:
            raise ValidationFailed(
                "suspended devices cannot be renewed",
                {"device_ids": [f"{d}: suspended" for d in suspended]},
            )
        now = clock.now()
        number = f"R{now:%Y%m%d}-{uuid4().hex[:10].upper()}"
        lines, currencies = [], set()
        for index, device in enumerate(found, start=1):
            quote = catalog.quote(device["package_id"], months)
            currencies.add(quote["currency"])
            lines.append(
                {
                    "line_id": f"{number}-{index}",
                    "device_id": device["device_id"],
                    "package_id": quote["package_id"],
                    "package_name": quote["name"],
                    "months": months,
                    "unit_price": Decimal(str(quote["unit_price"])),
                    "amount": Decimal(str(quote["amount"])),
                }
            )
        if len(currencies) > 1:
            raise ValidationFailed(
                "the devices' packages are priced in different currencies: order them separately",
                {"device_ids": [f"currencies {', '.join(sorted(currencies))}"]},
            )
        companies = {d["company_id"] for d in found}
        owner = companies.pop() if len(companies) == 1 else actor.company_id
        with event_meta(**actor.meta()):
            order = Order(
                number=number,
                company_id=owner,
                order_type="renewal",
                currency=currencies.pop(),
                lines=lines,
                total=sum((line["amount"] for line in lines), Decimal("0.00")),
                created_by=actor.username,
                created_at=now,
            )
        self.save_new(order, what=f"order {number}")
        return self.order(actor, str(order.id))

    def _load_order(self, actor: Actor, order_id: str) -> Order:
        try:
            found = self.find(UUID(order_id))
        except ValueError:
            found = None
        if not isinstance(found, Order):
            raise NotFound(f"order {order_id} not found")
        with self.engine.connect() as conn:
            if not actor.is_system and found.company_id not in subtree_ids(conn, actor.company_id):
                raise NotFound(f"order {order_id} not found")
        return found

    def confirm_order(self, actor: Actor, order_id: str) -> dict:
        actor.require("customer", "admin")

        def decide() -> list:
            order = self._load_order(actor, order_id)
            try:
                with event_meta(**actor.meta()):
                    order.confirm(clock.now())
            except LedgerRefused as exc:
                raise _refusal(exc) from exc
            return [order]

        self.retrying(decide)
        return self.order(actor, order_id)

    def cancel_order(self, actor: Actor, order_id: str) -> dict:
        actor.require("customer", "admin")

        def decide() -> list:
            order = self._load_order(actor, order_id)
            try:
                with event_meta(**actor.meta()):
                    order.cancel(clock.now(), actor.username)
            except LedgerRefused as exc:
                raise _refusal(exc) from exc
            return [order]

        self.retrying(decide)
        return self.order(actor, order_id)

    def pay_order(self, actor: Actor, order_id: str, method: str) -> dict:
        """Pay a confirmed order. By balance: the debit and 'paid' are one atomic write."""
        actor.require("customer", "admin")
        order = self._load_order(actor, order_id)
        allowed = payment_methods(self._region(order.company_id), order.currency)
        if method not in allowed:
            raise ValidationFailed(
                f"{method} cannot pay a {order.currency} order of this account "
                f"(allowed: {', '.join(allowed) or 'none'})",
                {"method": [f"not allowed; allowed: {', '.join(allowed)}"]},
            )
        if method != "balance":
            raise Conflict(
                "payment by an external provider is not available yet", {"method": ["unavailable"]}
            )

        def decide() -> list:
            current = self._load_order(actor, order_id)
            account = self._account(current.company_id)
            try:
                with event_meta(**actor.meta()):
                    current.pay("balance", clock.now(), reference=None)
                    account.debit(
                        currency=current.currency,
                        amount=current.total,
                        reason="order",
                        reference=str(current.id),
                    )
            except LedgerRefused as exc:
                raise _refusal(exc, "method") from exc
            return [current, account]

        self.retrying(decide)
        return self.order(actor, order_id)

    def order(self, actor: Actor, order_id: str) -> dict:
        order = self._load_order(actor, order_id)
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(orders).where(orders.c.order_id == order_id)).first()
            if row is None:
                raise NotFound(f"order {order_id} not found")
            data = row_dict(row)
            data["lines"] = [
                row_dict(r)
                for r in conn.execute(
                    sa.select(order_lines)
                    .where(order_lines.c.order_id == order_id)
                    .order_by(order_lines.c.line_id)
                )
            ]
            data["history"] = self._history(conn, order_id)
        data["payment_methods"] = (
            payment_methods(self._region(order.company_id), order.currency)
            if order.status in ("created", "confirmed")
            else []
        )
        return data

    def list_orders(self, actor: Actor, filters: dict) -> dict:
        with self.engine.connect() as conn:
            query = sa.select(orders)
            if not actor.is_system:
                query = query.where(orders.c.company_id.in_(subtree_ids(conn, actor.company_id)))
            for name in ("status", "order_type", "method", "currency"):
                if filters.get(name):
                    query = query.where(orders.c[name] == filters[name])
            if filters.get("created_from"):
                query = query.where(orders.c.created_at >= filters["created_from"])
            if filters.get("created_to"):
                query = query.where(orders.c.created_at < filters["created_to"])
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            page, per_page = filters.get("page", 1), filters.get("per_page", 50)
            rows = conn.execute(
                query.order_by(orders.c.created_at.desc(), orders.c.order_number)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
            items = []
            for row in rows:
                data = row_dict(row)
                data["lines"] = [
                    row_dict(r)
                    for r in conn.execute(
                        sa.select(order_lines).where(order_lines.c.order_id == data["order_id"])
                    )
                ]
                items.append(data)
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    # -- reactions -----------------------------------------------------------------------
    def record_company(self, sequence: int, data: dict) -> None:
        from services.common.scope import upsert_company

        with self.engine.begin() as conn:
            upsert_company(
                conn, data["company_id"], data["parent_id"], data["name"], data["region"], sequence
            )
