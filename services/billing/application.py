"""Billing use cases: load, decide (in the domain), save atomically.

Reads go through services/billing/queries.py; reactions to other services' events live in
services/billing/policies.py; both are part of this one application.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID, uuid4

import sqlalchemy as sa

from services.billing import queries
from services.billing.batching import BatchedProjector
from services.billing.domain import (
    CONFIG_FIELDS,
    CUSTOMER_FIELDS,
    Account,
    AccountConfig,
    LedgerRefused,
    OfflineApplication,
    Order,
    Statement,
    account_id,
    last_closed_cycle,
    payment_methods,
)
from services.billing.history import history
from services.billing.policies import Reactions
from services.billing.projections import metadata, projection
from services.billing.replay import default_workers, parallel_rebuild
from services.billing.verify import compare_views
from services.common import clock
from services.common.actor import Actor
from services.common.config import env
from services.common.domain import event_meta
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.money import fmt
from services.common.scope import company, company_scope, require_scope, scope_meta, subtree_ids
from services.common.store import IntegrityError, ServiceApplication

log = logging.getLogger(__name__)

# an account snapshot every 20 events keeps a 100,000-event account loading like a new one
ACCOUNT_SNAPSHOT_EVERY = 20
REPLAY_PAGE = 5000


class DevicesPort(Protocol):
    def devices_for_order(self, actor: dict, device_ids: list[str]) -> list[dict]: ...
    def value_added_for_order(self, actor: dict, binding_ids: list[str]) -> list[dict]: ...
    def list_devices(self, actor: dict, filters: dict) -> dict: ...


class CatalogPort(Protocol):
    def quote(self, package_id: str, months: int) -> dict: ...


class PaymentsPort(Protocol):
    def start_payment(self, actor: dict, payload: dict) -> dict: ...


def refused(exc: LedgerRefused, field: str | None = None) -> Conflict:
    return Conflict(str(exc), {field: [str(exc)]} if field else None)


def _lapse_after() -> timedelta:
    return timedelta(hours=float(env("IOTB_ORDER_LAPSE_HOURS", "24")))


class BillingApplication(Reactions, ServiceApplication):
    service = "billing"
    projection = projection
    snapshotting_intervals = {Account: ACCOUNT_SNAPSHOT_EVERY, Order: 50}

    def __init__(self, *args: Any, lapse_after: timedelta | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        scope_meta.create_all(self.engine)  # the company tree, fed by devices' events
        # handlers stage rows and write them once per page (replay speed)
        self.projector = BatchedProjector(self, self.engine, projection, page=REPLAY_PAGE)
        self.lapse_after = lapse_after if lapse_after is not None else _lapse_after()
        if not self._views_are_current():
            # views written by an older version: they are projections, so rebuild them
            log.warning("billing views changed shape: rebuilding them from the events")
            self.projector.rebuild()

    def _views_are_current(self) -> bool:
        inspector = sa.inspect(self.engine)
        return all(
            {c["name"] for c in inspector.get_columns(table.name)} == {c.name for c in table.c}
            for table in metadata.sorted_tables
        )

    # -- helpers -------------------------------------------------------------------------
    def scope(self, conn: sa.Connection, actor: Actor) -> queries.Scope:
        return None if actor.is_system else subtree_ids(conn, actor.company_id)

    def require_company(self, actor: Actor, company_id: str) -> None:
        with self.engine.connect() as conn:
            if company(conn, company_id) is None:
                raise NotFound(f"company {company_id} not found", {"company_id": ["not found"]})
            require_scope(conn, actor, company_id)

    def visible(self, actor: Actor, company_id: str) -> bool:
        """Is ``company_id`` the actor's company or one of its descendants?"""
        if actor.is_system:
            return True
        with self.engine.connect() as conn:
            return queries.is_within(conn, company_id, actor.company_id)

    def find_as(self, kind: type, aggregate_id: str) -> Any | None:
        try:
            found = self.find(UUID(str(aggregate_id)))
        except ValueError:
            return None
        return found if isinstance(found, kind) else None

    def history(self, aggregate_id: str) -> list[dict]:
        """Who did what and when, read from the aggregate's own events."""
        return history(self.events.get(UUID(aggregate_id)))

    def load_account(self, company_id: str) -> Account:
        return self.find(account_id(company_id)) or Account(company_id=company_id)

    def region(self, company_id: str) -> str:
        with self.engine.connect() as conn:
            return queries.region_of(conn, company_id)

    # -- accounts ------------------------------------------------------------------------
    def account(self, actor: Actor, company_id: str) -> dict:
        self.require_company(actor, company_id)
        with self.engine.connect() as conn:
            return {
                "company_id": company_id,
                "balances": queries.account_balances(conn, company_id),
            }

    def account_entries(self, actor: Actor, company_id: str, filters: dict) -> dict:
        self.require_company(actor, company_id)
        with self.engine.connect() as conn:
            return queries.entries(conn, company_id, filters)

    def balance_at(self, company_id: str, at: datetime) -> dict[str, Decimal]:
        """An account's balances as of ``at``, from its events alone (no view is read)."""
        result: dict[str, Decimal] = {}
        for e in self.events.get(account_id(company_id)):
            if e.timestamp > at:
                break
            if isinstance(e, (Account.Credited, Account.Debited)):
                result[e.currency] = e.balance
        return result

    # -- account configs (C4/S2) ---------------------------------------------------------
    @staticmethod
    def _clean_settings(settings: dict) -> dict:
        emails = [e.strip() for e in settings["push_emails"]]
        unique = list({e.lower(): e for e in reversed(emails)}.values())[::-1]
        return {**{k: settings[k] for k in CONFIG_FIELDS}, "push_emails": unique}

    def _set_config(self, actor: Actor, company_id: str, settings: dict) -> None:
        settings = self._clean_settings(settings)

        def decide() -> list:
            with event_meta(**actor.meta()):
                config = self.find(AccountConfig.create_id(company_id))
                if config is None:
                    return [AccountConfig(company_id=company_id, settings=settings)]
                return [config] if config.set(settings) else []

        self.retrying(decide)

    def set_account_config(self, actor: Actor, company_id: str, settings: dict) -> dict:
        """S2: sales (or an admin) creates or changes a company's billing set-up."""
        actor.require("sales", "admin")
        self.require_company(actor, company_id)
        self._set_config(actor, company_id, settings)
        return self.account_config(actor, company_id)

    def update_account_settings(self, actor: Actor, company_id: str, changes: dict) -> dict:
        """C4: a customer changes their own cycle, auto-renewal and push settings."""
        actor.require("customer", "sales", "admin")
        self.require_company(actor, company_id)
        config = self.find(AccountConfig.create_id(company_id))
        if config is None or config.deleted:
            raise NotFound(
                f"company {company_id} has no billing account config yet: sales sets it up"
            )
        allowed = CUSTOMER_FIELDS if actor.role == "customer" else CONFIG_FIELDS
        outside = sorted(set(changes) - set(allowed))
        if outside:
            raise ValidationFailed(
                f"a {actor.role} may not change {', '.join(outside)}",
                {name: ["not yours to change"] for name in outside},
            )
        self._set_config(actor, company_id, {**config.settings, **changes})
        return self.account_config(actor, company_id)

    def delete_account_config(self, actor: Actor, company_id: str) -> None:
        actor.require("sales", "admin")
        self.require_company(actor, company_id)

        def decide() -> list:
            config = self.find(AccountConfig.create_id(company_id))
            if config is None or config.deleted:
                raise NotFound(f"company {company_id} has no billing account config")
            with event_meta(**actor.meta()):
                config.delete()
            return [config]

        self.retrying(decide)

    def account_config(self, actor: Actor, company_id: str) -> dict:
        self.require_company(actor, company_id)
        with self.engine.connect() as conn:
            row = queries.config_row(conn, company_id)
        if row is None:
            raise NotFound(f"company {company_id} has no billing account config")
        return row

    def list_account_configs(self, actor: Actor, filters: dict) -> list[dict]:
        """S2: companies of the subtree with and without a config (direct children of the
        chosen company by default, or its whole subtree)."""
        actor.require("sales", "finance", "admin")
        root = filters.get("company_id") or actor.company_id
        self.require_company(actor, root)
        with self.engine.connect() as conn:
            if filters.get("whole_subtree"):
                ids = subtree_ids(conn, root)
            else:
                children = sa.select(company_scope.c.company_id).where(
                    company_scope.c.parent_id == root
                )
                ids = {root} | set(conn.execute(children).scalars())
            return queries.companies_with_configs(conn, ids, filters.get("configured"))

    # -- offline recharge (S1/F1) --------------------------------------------------------
    def file_offline_application(self, actor: Actor, data: dict) -> dict:
        actor.require("sales", "admin")
        self.require_company(actor, data["company_id"])
        with event_meta(**actor.meta()):
            filed = OfflineApplication(
                company_id=data["company_id"],
                payer=data["payer"].strip(),
                currency=data["currency"],
                amount=data["amount"],
                reference_number=data["reference_number"].strip(),
                applicant=actor.username,
                remark=data.get("remark", "").strip(),
                applicant_email=actor.email,
                applicant_language=actor.language,
            )
            if data.get("submit"):
                filed.submit(by=actor.username)
        self.save(filed)
        return self.offline_application(actor, str(filed.id))

    def _load_application(self, actor: Actor, application_id: str) -> OfflineApplication:
        found = self.find_as(OfflineApplication, application_id)
        if found is None or found.status == "deleted" or not self.visible(actor, found.company_id):
            raise NotFound(f"offline application {application_id} not found")
        return found

    def _change_application(
        self, actor: Actor, application_id: str, change: Callable[[OfflineApplication], Any]
    ) -> None:
        def decide() -> list:
            filed = self._load_application(actor, application_id)
            try:
                with event_meta(**actor.meta()):
                    change(filed)
            except LedgerRefused as exc:
                raise refused(exc) from exc
            return [filed]

        self.retrying(decide)

    def edit_offline_application(self, actor: Actor, application_id: str, data: dict) -> dict:
        """S1: the applicant corrects the application until it is reviewed."""
        actor.require("sales", "admin")
        changes = {
            k: v.strip() if isinstance(v, str) else v
            for k, v in data.items()
            if k in OfflineApplication.EDITABLE
        }
        if "company_id" in changes:
            self.require_company(actor, changes["company_id"])
        self._change_application(
            actor, application_id, lambda filed: filed.edit(actor.username, changes)
        )
        if data.get("submit"):
            return self.submit_offline_application(actor, application_id)
        return self.offline_application(actor, application_id)

    def delete_offline_application(self, actor: Actor, application_id: str) -> None:
        actor.require("sales", "admin")
        self._change_application(actor, application_id, lambda filed: filed.delete(actor.username))

    def submit_offline_application(self, actor: Actor, application_id: str) -> dict:
        actor.require("sales", "admin")
        self._change_application(actor, application_id, lambda filed: filed.submit(actor.username))
        return self.offline_application(actor, application_id)

    def review_offline_application(self, actor: Actor, application_id: str, data: dict) -> dict:
        """F1: approve (the balance is credited in the same write), return, or reject."""
        actor.require("finance", "admin")
        now = clock.now()
        opinion = data["opinion"].strip()

        def decide() -> list:
            filed = self._load_application(actor, application_id)
            try:
                with event_meta(**actor.meta()):
                    if data["decision"] == "approve":
                        filed.approve(actor.username, opinion, now)
                        account = self.load_account(filed.company_id)
                        account.credit(
                            currency=filed.currency,
                            amount=filed.amount,
                            reason="offline_application",
                            reference=str(filed.id),
                        )
                        return [filed, account]
                    if data["decision"] == "return":
                        filed.return_to_applicant(actor.username, opinion, now)
                    else:
                        filed.reject(actor.username, opinion, now)
            except LedgerRefused as exc:
                raise refused(exc) from exc
            return [filed]

        self.retrying(decide)
        return self.offline_application(actor, application_id)

    def offline_application(self, actor: Actor, application_id: str) -> dict:
        actor.require("sales", "finance", "admin")
        self._load_application(actor, application_id)
        with self.engine.connect() as conn:
            row = queries.application_row(conn, application_id)
        if row is None:
            raise NotFound(f"offline application {application_id} not found")
        return {**row, "history": self.history(application_id)}

    def list_offline_applications(self, actor: Actor, filters: dict) -> list[dict]:
        actor.require("sales", "finance", "admin")
        with self.engine.connect() as conn:
            return queries.application_list(conn, self.scope(conn, actor), filters)

    # -- renewal center and orders (C1/C2/C3) --------------------------------------------
    def renewal_center(
        self, actor: Actor, within_days: int, devices: DevicesPort, catalog: CatalogPort
    ) -> list[dict]:
        """Devices that are expired or expire within the window, with package and price."""
        quotes = _Quotes(catalog)
        result, page = [], 1
        while True:
            found = devices.list_devices(
                actor.to_rpc(), {"expires_within_days": within_days, "per_page": 500, "page": page}
            )
            for device in found["items"]:
                if device["status"] == "suspended":
                    continue  # suspended devices leave the renewal list
                item = {
                    **device,
                    # devices answers with its wire format: times are ISO strings
                    "expires_at": datetime.fromisoformat(device["expires_at"]),
                    "renewable": False,
                    "reason": None,
                }
                if not device.get("package_id"):
                    item["reason"] = "no renewal package is bound to this device"
                else:
                    quote = quotes.get(device["package_id"], 1)
                    item.update(
                        package_name=quote["name"],
                        pricing=quote["pricing"],
                        unit_price=quote["unit_price"],
                        currency=quote["currency"],
                        renewable=True,
                    )
                result.append(item)
            if page * 500 >= found.get("total", 0):
                return result
            page += 1

    def _number(self, prefix: str, actor: Actor, key: str | None) -> str:
        """Order numbers; with an idempotency key the same request makes the same number."""
        if key:
            digest = hashlib.sha256(f"{actor.user_id}\n{prefix}\n{key}".encode()).hexdigest()
            return f"{prefix}K-{digest[:16].upper()}"
        return f"{prefix}{clock.now():%Y%m%d}-{uuid4().hex[:10].upper()}"

    def _existing(self, actor: Actor, number: str) -> dict | None:
        if "K-" not in number:
            return None  # a number without an idempotency key is new by construction
        found = self.find(Order.create_id(number))
        return self.order(actor, str(found.id)) if found is not None else None

    def create_renewal_order(
        self, actor: Actor, data: dict, devices: DevicesPort, catalog: CatalogPort
    ) -> dict:
        """C1: one line per device, priced by the catalog and copied into the order."""
        actor.require("customer", "admin")
        number = self._number("R", actor, data.get("idempotency_key"))
        if (existing := self._existing(actor, number)) is not None:
            return existing  # a double submit: the order the first one made
        wanted = list(dict.fromkeys(d.strip().upper() for d in data["device_ids"]))
        found = devices.devices_for_order(actor.to_rpc(), wanted)
        self._refuse_missing(wanted, [d["device_id"].upper() for d in found], "device_ids")
        return self._create_order(actor, number, "renewal", found, data["months"], catalog)

    def create_value_added_order(
        self, actor: Actor, data: dict, devices: DevicesPort, catalog: CatalogPort
    ) -> dict:
        """T4/C1: value-added packages bought for value-added bindings, paid like renewals."""
        actor.require("customer", "admin")
        number = self._number("V", actor, data.get("idempotency_key"))
        if (existing := self._existing(actor, number)) is not None:
            return existing
        wanted = list(dict.fromkeys(b.strip() for b in data["binding_ids"]))
        found = devices.value_added_for_order(actor.to_rpc(), wanted)
        self._refuse_missing(wanted, [b["binding_id"] for b in found], "binding_ids")
        return self._create_order(actor, number, "value_added", found, data["months"], catalog)

    @staticmethod
    def _refuse_missing(wanted: list[str], found: list[str], field: str) -> None:
        missing = [w for w in wanted if w not in set(found)]
        if missing:
            raise NotFound(
                f"not found in your scope: {', '.join(missing)}",
                {field: [f"{m}: not found" for m in missing]},
            )

    def _create_order(
        self,
        actor: Actor,
        number: str,
        order_type: str,
        items: list[dict],
        months: int,
        catalog: CatalogPort,
    ) -> dict:
        field = "binding_ids" if order_type == "value_added" else "device_ids"

        def label(item: dict) -> str:
            return item.get("binding_id") or item["device_id"]

        unbound = [label(i) for i in items if not i.get("package_id")]
        if unbound:
            raise ValidationFailed(
                "some devices have no renewal package bound: "
                + ", ".join(unbound)
                + " (ask support to bind one)",
                {field: [f"{d}: no renewal package bound" for d in unbound]},
            )
        suspended = [label(i) for i in items if i.get("status") == "suspended"]
        if suspended:
            raise ValidationFailed(
                "suspended devices cannot be renewed: " + ", ".join(suspended),
                {field: [f"{d}: suspended" for d in suspended]},
            )
        quotes = _Quotes(catalog)
        now = clock.now()
        lines, currencies = [], set()
        for index, item in enumerate(items, start=1):
            quote = quotes.get(item["package_id"], months)
            if quote["kind"] != order_type:
                raise ValidationFailed(
                    f"package {quote['name']} is not a {order_type.replace('_', '-')} package",
                    {field: [f"{label(item)}: package of the wrong kind"]},
                )
            currencies.add(quote["currency"])
            line = {
                "line_id": f"{number}-{index}",
                "device_id": item["device_id"],
                "package_id": quote["package_id"],
                "package_name": quote["name"],
                "months": months,
                "unit_price": Decimal(str(quote["unit_price"])),
                "amount": Decimal(str(quote["amount"])),
            }
            if item.get("binding_id"):
                line["binding_id"] = item["binding_id"]
            lines.append(line)
        if len(currencies) > 1:
            raise ValidationFailed(
                "the packages are priced in different currencies: order them separately",
                {field: [f"currencies {', '.join(sorted(currencies))}"]},
            )
        companies = {i["company_id"] for i in items}
        # devices of one company: that company pays; of several: the actor's company does
        owner = companies.pop() if len(companies) == 1 else actor.company_id
        with event_meta(**actor.meta()):
            order = Order(
                number=number,
                company_id=owner,
                order_type=order_type,
                currency=currencies.pop(),
                lines=lines,
                total=sum((line["amount"] for line in lines), Decimal("0.00")),
                created_by=actor.username,
                created_at=now,
                lapse_at=now + self.lapse_after,
            )
        try:
            self.save(order)
        except IntegrityError as exc:  # the same idempotency key, concurrently
            existing = self._existing(actor, number)
            if existing is None:
                raise Conflict(f"order {number} already exists") from exc
            return existing
        return self.present_order(str(order.id))

    def create_recharge(self, actor: Actor, data: dict, payments: PaymentsPort | None) -> dict:
        """C3: a recharge order (no lines), paid at once by the region's provider."""
        actor.require("customer", "admin")
        company_id = data.get("company_id") or actor.company_id
        self.require_company(actor, company_id)
        allowed = payment_methods(self.region(company_id), data["currency"], purpose="recharge")
        if data["method"] not in allowed:
            raise ValidationFailed(
                f"{data['method']} cannot recharge {data['currency']} for this account "
                f"(allowed: {', '.join(allowed) or 'none'})",
                {"method": [f"not allowed; allowed: {', '.join(allowed) or 'none'}"]},
            )
        number = self._number("C", actor, data.get("idempotency_key"))
        order = self.find(Order.create_id(number))
        if order is None:
            now = clock.now()
            with event_meta(**actor.meta()):
                order = Order(
                    number=number,
                    company_id=company_id,
                    order_type="recharge",
                    currency=data["currency"],
                    lines=[],
                    total=data["amount"],
                    created_by=actor.username,
                    created_at=now,
                    lapse_at=now + self.lapse_after,
                )
                order.confirm(now)  # nothing to confirm: the amount is what the user typed
            self.save_new(order, what=f"recharge {number}")
        if order.status != "confirmed":
            return self.order(actor, str(order.id))
        return self._start_external(actor, order, data["method"], payments)

    def _load_order(self, actor: Actor, order_id: str) -> Order:
        """The order, if it belongs to the actor's companies (an order never moves, so one
        check per request is enough; decisions reload it with ``_reload``)."""
        found = self.find_as(Order, order_id)
        if found is None or not self.visible(actor, found.company_id):
            raise NotFound(f"order {order_id} not found")
        return found

    def _reload(self, order_id: str) -> Order:
        found = self.find_as(Order, order_id)
        if found is None:
            raise NotFound(f"order {order_id} not found")
        return found

    def _order_command(self, actor: Actor, order_id: str, command: Callable[[Order], Any]) -> None:
        def decide() -> list:
            order = self._reload(order_id)
            try:
                with event_meta(**actor.meta()):
                    command(order)
            except LedgerRefused as exc:
                raise refused(exc) from exc
            return [order]

        self.retrying(decide)

    def confirm_order(self, actor: Actor, order_id: str) -> dict:
        """C1: the second confirmation; only a confirmed order goes to payment."""
        actor.require("customer", "admin")
        self._lapse_if_due(self._load_order(actor, order_id))
        self._order_command(actor, order_id, lambda order: order.confirm(clock.now()))
        return self.present_order(order_id)

    def cancel_order(self, actor: Actor, order_id: str) -> dict:
        actor.require("customer", "admin")
        self._load_order(actor, order_id)
        self._order_command(
            actor, order_id, lambda order: order.cancel(clock.now(), actor.username)
        )
        return self.present_order(order_id)

    def _lapse_if_due(self, order: Order) -> None:
        """An order past its lapse time lapses now, whether or not the timer came by."""
        now = clock.now()
        if order.is_due_to_lapse(now):
            self._lapse(str(order.id), now)
            raise Conflict("the order lapsed unpaid: create a new one", {"order_id": ["lapsed"]})

    def methods_for(self, order: Order | dict) -> list[str]:
        def get(name: str) -> Any:
            return order[name] if isinstance(order, dict) else getattr(order, name)

        purpose = "recharge" if get("order_type") == "recharge" else "order"
        return payment_methods(self.region(get("company_id")), get("currency"), purpose)

    def pay_order(
        self, actor: Actor, order_id: str, method: str, payments: PaymentsPort | None = None
    ) -> dict:
        """Pay a confirmed order: by balance (debit and paid in one atomic write) or by the
        region's provider through the payments service (paid when it reports success)."""
        actor.require("customer", "admin")
        order = self._load_order(actor, order_id)
        self._lapse_if_due(order)
        allowed = self.methods_for(order)
        if method not in allowed:
            raise ValidationFailed(
                f"{method} cannot pay a {order.currency} {order.order_type} order of this "
                f"account (allowed: {', '.join(allowed) or 'none'})",
                {"method": [f"not allowed; allowed: {', '.join(allowed) or 'none'}"]},
            )
        if order.status != "confirmed":
            raise Conflict(
                f"the order is {order.status}, not confirmed", {"order_id": [order.status]}
            )
        if method != "balance":
            return self._start_external(actor, order, method, payments)

        def decide() -> list:
            current = self._reload(order_id)
            account = self.load_account(current.company_id)
            try:
                with event_meta(**actor.meta()):
                    current.pay("balance", clock.now())
                    account.debit(
                        currency=current.currency,
                        amount=current.total,
                        reason="order",
                        reference=str(current.id),
                    )
            except LedgerRefused as exc:
                raise refused(exc, "method") from exc
            return [current, account]

        self.retrying(decide)
        return self.present_order(order_id)

    def _start_external(
        self, actor: Actor, order: Order, method: str, payments: PaymentsPort | None
    ) -> dict:
        if payments is None:
            raise Conflict("payment by an external provider is not available here")
        # the same key while an attempt with this method is pending: a double click gets the
        # same attempt back; after a failure the next try gets a new one
        key = f"{order.id}:{method}:{order.failed_attempts(method)}"
        attempt = payments.start_payment(
            actor.to_rpc(),
            {
                "purpose": "recharge" if order.order_type == "recharge" else "order",
                "reference_id": str(order.id),
                "company_id": order.company_id,
                "method": method,
                "amount": fmt(order.total),
                "currency": order.currency,
                "description": f"{order.order_type.replace('_', '-')} order {order.number}",
                "idempotency_key": key,
            },
        )

        def record() -> list:
            current = self._reload(str(order.id))
            if current.status != "confirmed":
                return []  # paid or closed meanwhile: nothing to record
            with event_meta(**actor.meta()):
                current.start_payment(method, attempt["attempt_id"], clock.now())
            return [current] if current.pending_events else []

        self.retrying(record)
        return {**self.present_order(str(order.id)), "payment": attempt}

    def refund_line(self, actor: Actor, order_id: str, line_id: str, reason: str) -> dict:
        """A paid line that cannot be fulfilled: its amount goes back to the balance, once."""
        actor.require("finance", "admin")
        self._load_order(actor, order_id)
        self._refund_lines(order_id, {line_id: reason}, strict=True, meta=actor.meta())
        return self.present_order(order_id)

    def _refund_lines(
        self, order_id: str, reasons: dict[str, str], strict: bool, meta: dict
    ) -> bool:
        def decide() -> list:
            order = self.find_as(Order, order_id)
            if order is None:
                return []
            account = self.load_account(order.company_id)
            try:
                with event_meta(**meta):
                    for line_id, reason in reasons.items():
                        if line_id in order.refunded and not strict:
                            continue
                        amount = order.refund_line(line_id, reason, clock.now())
                        account.credit(
                            currency=order.currency,
                            amount=amount,
                            reason="refund",
                            reference=f"{order_id}:{line_id}",
                        )
            except LedgerRefused as exc:
                raise refused(exc, "line_id") from exc
            return [order, account] if order.pending_events else []

        self.retrying(decide)
        return True

    def lapse_due(self, now: datetime | None = None) -> int:
        """Unpaid orders past their lapse time lapse (the service's timer calls this)."""
        now = now or clock.now()
        with self.engine.connect() as conn:
            due = queries.open_orders_due(conn, now)
        return sum(1 for order_id in due if self._lapse(order_id, now))

    def _lapse(self, order_id: str, now: datetime) -> bool:
        lapsed = []

        def decide() -> list:
            order = self.find_as(Order, order_id)
            if order is None or not order.is_due_to_lapse(now):
                return []
            with event_meta(actor="system"):
                order.lapse(now)
            lapsed.append(order_id)
            return [order]

        self.retrying(decide)
        return bool(lapsed)

    def order(self, actor: Actor, order_id: str) -> dict:
        """C2: one order with its lines, history and the methods that can pay it now."""
        data = self.present_order(order_id)
        if not self.visible(actor, data["company_id"]):
            raise NotFound(f"order {order_id} not found")
        return data

    def present_order(self, order_id: str) -> dict:
        with self.engine.connect() as conn:
            data = queries.order_row(conn, order_id)
        if data is None:
            raise NotFound(f"order {order_id} not found")
        is_open = data["status"] in ("created", "confirmed")
        data["payment_methods"] = self.methods_for(data) if is_open else []
        data["history"] = self.history(order_id)
        return data

    def list_orders(self, actor: Actor, filters: dict) -> dict:
        """C2 (and C3 with order_type=recharge): the orders of the actor's companies."""
        with self.engine.connect() as conn:
            return queries.order_page(conn, self.scope(conn, actor), filters)

    def manage_orders(self, actor: Actor, filters: dict) -> dict:
        """F2: every paid order of the subtree (or another status when asked)."""
        actor.require("finance", "admin")
        with self.engine.connect() as conn:
            return queries.order_page(conn, self.scope(conn, actor), {**filters, "paid_only": True})

    def export_orders(
        self, actor: Actor, filters: dict, after: list | None, limit: int = 2000
    ) -> dict:
        """F2 export, one keyset page at a time: the gateway streams them into a workbook."""
        actor.require("finance", "admin")
        cursor = (datetime.fromisoformat(after[0]), after[1]) if after else None
        with self.engine.connect() as conn:
            rows = queries.export_rows(
                conn, self.scope(conn, actor), {**filters, "paid_only": True}, cursor, limit
            )
        last = rows[-1] if len(rows) == limit else None
        return {
            "items": rows,
            "next": [last["created_at"].isoformat(), last["order_id"]] if last else None,
        }

    # -- statements ----------------------------------------------------------------------
    def issue_due_statements(self, now: datetime | None = None) -> int:
        """Issue each account's statement for its last closed billing cycle, once."""
        now = now or clock.now()
        self.catch_up()  # entries written by another replica count too
        issued = 0
        with self.engine.connect() as conn:
            # a monthly cycle ends no earlier than a quarterly one: this covers both
            active = queries.accounts_active_before(conn, last_closed_cycle("monthly", now)[1])
            due = []
            for company_id in active:
                config = queries.config_row(conn, company_id)
                cycle = config["billing_cycle"] if config else "monthly"
                start, end = last_closed_cycle(cycle, now)
                due.append((company_id, cycle, start, end))
            have = queries.existing_statements(
                conn, [str(Statement.create_id(c, s)) for c, _, s, _ in due]
            )
            for company_id, cycle, start, end in due:
                if str(Statement.create_id(company_id, start)) in have:
                    continue
                figures = queries.cycle_figures(conn, company_id, start, end)
                if not figures:
                    continue  # the account did not exist yet in that cycle
                with event_meta(actor="system"):
                    statement = Statement(
                        company_id=company_id,
                        cycle=cycle,
                        period_start=start,
                        period_end=end,
                        balances=figures,
                    )
                try:
                    self.save(statement)
                    issued += 1
                except IntegrityError:
                    pass  # another replica issued it first
        return issued

    def statements(self, actor: Actor, company_id: str) -> list[dict]:
        self.require_company(actor, company_id)
        with self.engine.connect() as conn:
            return queries.statement_rows(conn, company_id)

    def statement(self, actor: Actor, statement_id: str) -> dict:
        with self.engine.connect() as conn:
            row = queries.statement_row(conn, statement_id)
        if row is None or not self.visible(actor, row["company_id"]):
            raise NotFound(f"statement {statement_id} not found")
        return row

    def statement_entries(
        self, actor: Actor, statement_id: str, after: int = 0, limit: int = 2000
    ) -> dict:
        head = self.statement(actor, statement_id)
        with self.engine.connect() as conn:
            rows = queries.period_entries(
                conn, head["company_id"], head["period_start"], head["period_end"], after, limit
            )
        return {"items": rows, "next": rows[-1]["sequence"] if len(rows) == limit else None}

    def auto_renewals(self, actor: Actor, filters: dict) -> list[dict]:
        with self.engine.connect() as conn:
            return queries.auto_renewal_rows(conn, self.scope(conn, actor), filters)

    # -- operations ----------------------------------------------------------------------
    def rebuild_views(
        self, progress: Callable[[int], None] | None = None, workers: int | None = None
    ) -> int:
        """Drop every billing view and replay the whole event store into it (on PostgreSQL
        with one process per core, each replaying its share of the aggregates)."""
        assert self.projector is not None
        workers = workers or int(env("IOTB_REPLAY_WORKERS", "0")) or default_workers()
        if self.store.kind != "postgres" or workers == 1:
            return self.projector.rebuild(progress)
        with self.projector.lock:
            replayed = parallel_rebuild(
                self, self.engine, projection, self.store, workers, progress
            )
        return replayed + self.catch_up()

    def verify_views(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Replay the event store into a scratch database and compare it with the live
        views; returns the differences (none when the views are right)."""
        self.catch_up()
        with tempfile.TemporaryDirectory(prefix="billing-verify-") as folder:
            scratch = sa.create_engine(f"sqlite:///{Path(folder) / 'replay.db'}")
            try:
                with _snapshot(self.engine) as live:
                    position = live.execute(
                        sa.text("SELECT position FROM projection_position WHERE name = :n"),
                        {"n": projection.name},
                    ).scalar_one()
                    replay = BatchedProjector(
                        self, scratch, projection, page=REPLAY_PAGE, until=position
                    )
                    replay.setup()
                    replay.catch_up(progress)
                    with scratch.connect() as fresh:
                        return compare_views(metadata, live, fresh)
            finally:
                scratch.dispose()


class _snapshot:  # noqa: N801 - reads like a function
    """A connection that sees one consistent state of the live views (REPEATABLE READ on
    PostgreSQL), so writes during a verify do not show up as differences."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def __enter__(self) -> sa.Connection:
        options = (
            {"isolation_level": "REPEATABLE READ"}
            if self.engine.dialect.name == "postgresql"
            else {}
        )
        self.conn = self.engine.connect().execution_options(**options)
        self.conn.begin()
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.rollback()
        self.conn.close()


class _Quotes:
    """Catalog quotes, asked once per package and month count within one request."""

    def __init__(self, catalog: CatalogPort) -> None:
        self.catalog = catalog
        self.cache: dict[tuple[str, int], dict] = {}

    def get(self, package_id: str, months: int) -> dict:
        key = (package_id, months)
        if key not in self.cache:
            self.cache[key] = self.catalog.quote(package_id, months)
        return self.cache[key]
