"""Devices use cases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from services.common import clock
from services.common.actor import Actor
from services.common.domain import event_meta
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from services.common.scope import company, company_scope, in_scope, require_scope, subtree_ids
from services.common.store import IntegrityError, ServiceApplication
from services.common.views import row_dict
from services.devices.domain import Company, Device, DeviceRefused, RenewalApplied, device_key
from services.devices.projections import devices, projection

PackageLookup = Callable[[str], dict]


class DevicesApplication(ServiceApplication):
    service = "devices"
    projection = projection

    # -- companies -----------------------------------------------------------------------
    def register_company(self, actor: Actor, data: dict) -> dict:
        actor.require("admin")
        parent_id = data.get("parent_id")
        with self.engine.connect() as conn:
            if parent_id is None:
                if not actor.is_system:
                    raise Forbidden("only the system may register a root company")
            elif company(conn, parent_id) is None:
                raise NotFound(
                    f"parent company {parent_id} not found", {"parent_id": ["not found"]}
                )
            else:
                require_scope(conn, actor, parent_id)
        with event_meta(**actor.meta()):
            created = Company(name=data["name"].strip(), parent_id=parent_id, region=data["region"])
        self.save(created)
        return self.company(actor, str(created.id))

    def company(self, actor: Actor, company_id: str) -> dict:
        with self.engine.connect() as conn:
            row = company(conn, company_id)
            if row is None:
                raise NotFound(f"company {company_id} not found")
            require_scope(conn, actor, company_id)
        return {k: row._mapping[k] for k in ("company_id", "parent_id", "name", "region")}

    def list_companies(self, actor: Actor, whole_subtree: bool) -> list[dict]:
        with self.engine.connect() as conn:
            if whole_subtree:
                ids = subtree_ids(conn, actor.company_id)
                query = sa.select(company_scope).where(company_scope.c.company_id.in_(ids))
            else:
                query = sa.select(company_scope).where(
                    sa.or_(
                        company_scope.c.parent_id == actor.company_id,
                        company_scope.c.company_id == actor.company_id,
                    )
                )
            rows = conn.execute(query.order_by(company_scope.c.name)).all()
        return [
            {k: r._mapping[k] for k in ("company_id", "parent_id", "name", "region")} for r in rows
        ]

    # -- devices -------------------------------------------------------------------------
    def register_device(self, actor: Actor, data: dict) -> dict:
        actor.require("admin", "support")
        with self.engine.connect() as conn:
            if company(conn, data["company_id"]) is None:
                raise NotFound("company not found", {"company_id": ["not found"]})
            require_scope(conn, actor, data["company_id"])
        with event_meta(**actor.meta()):
            device = Device(
                imei=data["device_id"].strip().upper(),
                device_type=data["device_type"].strip(),
                company_id=data["company_id"],
                expires_at=data["expires_at"],
            )
        self.save_new(device, what=f"device {data['device_id']}")
        return self.device(actor, device.imei)

    def _row(self, conn: sa.Connection, device_id: str) -> sa.Row | None:
        return conn.execute(
            sa.select(devices).where(devices.c.device_key == str(device_key(device_id)))
        ).first()

    def _present(self, row: sa.Row, now: datetime) -> dict:
        data = row_dict(row)
        data["status"] = (
            "suspended"
            if data["suspended"]
            else ("expired" if data["expires_at"] <= now else "active")
        )
        return data

    def device(self, actor: Actor, device_id: str) -> dict:
        with self.engine.connect() as conn:
            row = self._row(conn, device_id)
            # a device outside the actor's subtree is reported as not found: its existence
            # is none of the actor's business
            if row is None or not in_scope(conn, actor, row.company_id):
                raise NotFound(f"device {device_id} not found")
        return self._present(row, clock.now())

    def list_devices(self, actor: Actor, filters: dict) -> dict:
        now = clock.now()
        with self.engine.connect() as conn:
            scope = subtree_ids(conn, actor.company_id) if not actor.is_system else None
            query = sa.select(devices)
            if scope is not None:
                query = query.where(devices.c.company_id.in_(scope))
            if filters.get("company_id"):
                if scope is not None and filters["company_id"] not in scope:
                    raise Forbidden("that company is outside your company and its subsidiaries")
                query = query.where(devices.c.company_id == filters["company_id"])
            if filters.get("device_type"):
                query = query.where(devices.c.device_type == filters["device_type"])
            if filters.get("bound") is not None:
                bound = devices.c.package_id.is_not(None)
                query = query.where(bound if filters["bound"] else sa.not_(bound))
            if filters.get("q"):
                query = query.where(devices.c.device_id.contains(filters["q"].strip().upper()))
            status = filters.get("status")
            if status == "suspended":
                query = query.where(devices.c.suspended.is_(True))
            elif status == "expired":
                query = query.where(devices.c.suspended.is_(False), devices.c.expires_at <= now)
            elif status == "active":
                query = query.where(devices.c.suspended.is_(False), devices.c.expires_at > now)
            if filters.get("expires_within_days") is not None:
                horizon = now + timedelta(days=filters["expires_within_days"])
                query = query.where(devices.c.expires_at <= horizon)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            page, per_page = filters.get("page", 1), filters.get("per_page", 50)
            rows = conn.execute(
                query.order_by(devices.c.expires_at, devices.c.device_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
        return {
            "items": [self._present(r, now) for r in rows],
            "total": total,
            "page": page,
            "per_page": per_page,
        }

    def _load_in_scope(
        self, conn: sa.Connection, actor: Actor, device_ids: list[str]
    ) -> list[Device]:
        """Every device, or a refusal naming each unknown or out-of-scope id."""
        unknown, outside, found = [], [], []
        for device_id in dict.fromkeys(d.strip().upper() for d in device_ids):
            row = self._row(conn, device_id)
            if row is None:
                unknown.append(device_id)
            elif not in_scope(conn, actor, row.company_id):
                outside.append(device_id)
            else:
                found.append(device_id)
        if outside:
            raise Forbidden(
                "some devices are outside your company and its subsidiaries",
                {"device_ids": [f"{d}: outside your scope" for d in outside]},
            )
        if unknown:
            raise NotFound(
                "some devices do not exist", {"device_ids": [f"{d}: not found" for d in unknown]}
            )
        return [self.repository.get(device_key(d)) for d in found]

    def bind_package(self, actor: Actor, data: dict, lookup_package: PackageLookup) -> dict:
        """T3: bind a renewal package to chosen devices (all or nothing)."""
        actor.require("support", "admin")
        package = lookup_package(data["package_id"])
        if package["kind"] != "renewal":
            raise ValidationFailed(
                "only a renewal package can be bound here",
                {"package_id": ["not a renewal package"]},
            )
        if not package["on_sale"]:
            raise Conflict("the package is withdrawn", {"package_id": ["withdrawn"]})
        with self.engine.connect() as conn:
            found = self._load_in_scope(conn, actor, data["device_ids"])
        with event_meta(**actor.meta()):
            changed = []
            for device in found:
                if device.package_id != package["package_id"]:
                    device.bind_package(
                        package_id=package["package_id"], previous_package_id=device.package_id
                    )
                    changed.append(device)
        if changed:
            try:
                self.save(*changed)
            except IntegrityError as exc:
                raise Conflict("the devices changed meanwhile, try again") from exc
        return {"package_id": package["package_id"], "bound": [d.imei for d in found]}

    def devices_for_order(self, actor: Actor, device_ids: list[str]) -> list[dict]:
        """What billing needs to price a renewal order, scope-checked here."""
        now = clock.now()
        with self.engine.connect() as conn:
            found = self._load_in_scope(conn, actor, device_ids)
        return [
            {
                "device_id": d.imei,
                "company_id": d.company_id,
                "package_id": d.package_id,
                "status": d.status(now),
                "expires_at": d.expires_at,
            }
            for d in found
        ]

    # -- the clock -----------------------------------------------------------------------
    def expire_due(self, now: datetime | None = None) -> int:
        """Record device_expired for each device past its expiry, once per expiry.

        Two replicas may run this at once: both may try the same device, one save wins
        and the other collides (optimistic concurrency) and skips it.
        """
        now = now or clock.now()
        with self.engine.connect() as conn:
            keys = (
                conn.execute(
                    sa.select(devices.c.device_key).where(
                        devices.c.suspended.is_(False),
                        devices.c.expires_at <= now,
                        sa.or_(
                            devices.c.expired_notice_for.is_(None),
                            devices.c.expired_notice_for != devices.c.expires_at,
                        ),
                    )
                )
                .scalars()
                .all()
            )
        marked = 0
        for key in keys:
            device = self.repository.get(UUID(key))
            if device.mark_expired(now):
                try:
                    self.save(device)
                    marked += 1
                except IntegrityError:
                    pass  # another replica got there first
        return marked

    # -- reactions -----------------------------------------------------------------------
    def apply_paid_order(self, message_id: str, order: dict) -> bool:
        """Renew each line's device once; record the outcome (refused lines included)."""

        def effect() -> list:
            if self.find(RenewalApplied.create_id(order["order_id"])) is not None:
                return []
            changed: dict[str, Device] = {}
            outcome = []
            for line in order["lines"]:
                device = changed.get(line["device_id"]) or self.find(device_key(line["device_id"]))
                result = {
                    "line_id": line["line_id"],
                    "device_id": line["device_id"],
                    "months": line["months"],
                    "amount": line["amount"],
                    "old_expires_at": None,
                    "new_expires_at": None,
                    "reason": None,
                }
                if device is None:
                    outcome.append({**result, "outcome": "refused", "reason": "unknown device"})
                    continue
                old = device.expires_at
                try:
                    new = device.renew(
                        order["order_id"], line["line_id"], line["months"], order["paid_at"]
                    )
                except DeviceRefused as exc:
                    outcome.append(
                        {**result, "outcome": "refused", "reason": str(exc), "old_expires_at": old}
                    )
                    continue
                changed[line["device_id"]] = device
                outcome.append(
                    {**result, "outcome": "renewed", "old_expires_at": old, "new_expires_at": new}
                )
            applied = RenewalApplied(
                order_id=order["order_id"],
                order_number=order["order_number"],
                company_id=order["company_id"],
                currency=order["currency"],
                total=order["total"],
                paid_at=order["paid_at"],
                lines=outcome,
            )
            return [applied, *changed.values()]

        return self.handle_once("devices.order_paid", message_id, effect)
