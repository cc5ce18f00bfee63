"""Catalog use cases (T2): load, decide in the domain, save atomically.

Writes belong to support and admin; every role may read. Each write runs under
``retrying``: two writers touching the same category or code claim collide and the loser
decides again on fresh state, so "codes are unique" and "a category in use is not
deleted" hold under concurrency. A refused request saves nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from services.catalog.domain import (
    CatalogRefused,
    CodeClaim,
    CodeTaken,
    InUse,
    InvalidEntry,
    MajorCategory,
    MinorCategory,
    Package,
    claim_id,
    code_key,
    package_kind,
)
from services.catalog.projections import (
    bound_devices_count,
    major_categories,
    minor_categories,
    package_bindings,
    packages,
    projection,
    record_binding,
    usage_metadata,
)
from services.common.actor import Actor
from services.common.domain import Aggregate, event_meta
from services.common.errors import AppError, Conflict, NotFound, ValidationFailed
from services.common.store import ServiceApplication
from services.common.views import row_dict

WRITERS = ("support", "admin")
BINDING_EVENTS = ("package_bound", "package_unbound", "value_added_bound", "value_added_unbound")
SHOWN_USERS = 20  # a refusal lists at most this many users of an entry by name


def _app_error(exc: CatalogRefused) -> AppError:
    if isinstance(exc, CodeTaken):
        return Conflict(str(exc), {exc.field or "code": [str(exc)]})
    if isinstance(exc, InvalidEntry):
        field = exc.field or "_body"
        return ValidationFailed(f"{field}: {exc}" if exc.field else str(exc), {field: [str(exc)]})
    return Conflict(str(exc))


def _contains(column: sa.ColumnElement, text: str) -> sa.ColumnElement:
    escaped = text.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


class CatalogApplication(ServiceApplication):
    service = "catalog"
    projection = projection
    # a category records every package that joins or leaves it: keep its loading fast
    snapshotting_intervals = {MajorCategory: 100, MinorCategory: 100}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        usage_metadata.create_all(self.engine)  # bindings, fed by the devices service

    # -- writing -------------------------------------------------------------------------
    def _write(self, actor: Actor, decide: Callable[[], Sequence[Aggregate]]) -> None:
        actor.require(*WRITERS)
        with event_meta(**actor.meta()):
            try:
                self.retrying(decide)
            except InUse as exc:
                raise self._in_use_error(exc) from exc
            except CatalogRefused as exc:
                raise _app_error(exc) from exc

    def _in_use_error(self, exc: InUse) -> Conflict:
        """Say what uses the entry, by code (categories, packages) or device id."""
        tables = {
            "minor_categories": (minor_categories, minor_categories.c.category_id),
            "packages": (packages, packages.c.package_id),
        }
        named: dict[str, list[str]] = {}
        parts = []
        with self.engine.connect() as conn:
            for name, ids in exc.uses.items():
                if name in tables:
                    table, key = tables[name]
                    codes = sorted(
                        conn.execute(sa.select(table.c.code).where(key.in_(ids))).scalars()
                    ) or sorted(ids)
                else:
                    codes = sorted(ids)
                shown = codes[:SHOWN_USERS]
                more = f" and {len(codes) - len(shown)} more" if len(codes) > len(shown) else ""
                named[name] = shown
                parts.append(f"{len(ids)} {name.replace('_', ' ')} ({', '.join(shown)}{more})")
        return Conflict(f"{exc}; used by {'; '.join(parts)}", named)

    def _claim(self, entry: str, code: str, owner_id: str) -> CodeClaim:
        claim = self.find(claim_id(entry, code))
        if claim is None:
            return CodeClaim(entry=entry, code=code, owner_id=owner_id)
        claim.take(owner_id, code)
        return claim

    def _recode(self, entry: str, old: str, new: str, owner_id: str) -> list[Aggregate]:
        """Release the old code and take the new one, in the same save as the change."""
        if code_key(old) == code_key(new):
            return []
        taken = self._claim(entry, new, owner_id)
        released = self.find(claim_id(entry, old))
        if released is not None:
            released.release(owner_id)
            return [taken, released]
        return [taken]

    def _release(self, entry: str, code: str, owner_id: str) -> list[Aggregate]:
        claim = self.find(claim_id(entry, code))
        if claim is None:
            return []
        claim.release(owner_id)
        return [claim]

    # -- loading -------------------------------------------------------------------------
    def _get(self, cls: type, entity_id: Any, what: str, field: str | None = None) -> Any:
        """A live entry by id: NotFound for a path id, 422 for an id given in a body."""
        try:
            found = self.find(UUID(str(entity_id)))
        except ValueError:
            found = None
        if not isinstance(found, cls) or found.deleted:
            if field is not None:
                raise ValidationFailed(
                    f"{field}: no such {what}", {field: [f"no {what} {entity_id}"]}
                )
            raise NotFound(f"{what} {entity_id} not found")
        return found

    def _major(self, category_id: Any, field: str | None = None) -> MajorCategory:
        return self._get(MajorCategory, category_id, "major category", field)

    def _minor(self, category_id: Any, field: str | None = None) -> MinorCategory:
        return self._get(MinorCategory, category_id, "minor category", field)

    def _package(self, package_id: Any) -> Package:
        return self._get(Package, package_id, "package")

    def _categories(
        self, major_id: str | None, minor_id: str | None
    ) -> tuple[MajorCategory | None, MinorCategory | None]:
        """The categories a package names; the major follows from the minor if omitted."""
        minor = self._minor(minor_id, "minor_category_id") if minor_id else None
        if minor is not None and major_id and major_id != minor.major_category_id:
            raise ValidationFailed(
                "minor_category_id: belongs to another major category",
                {"minor_category_id": [f"minor category {minor.code} is not in that major one"]},
            )
        if minor is not None:
            major_id = minor.major_category_id
        major = self._major(major_id, "major_category_id") if major_id else None
        return major, minor

    # -- major categories ----------------------------------------------------------------
    def create_major_category(self, actor: Actor, data: dict) -> dict:
        made: list[UUID] = []

        def decide() -> list[Aggregate]:
            category = MajorCategory.define(data["code"], data["name"], data["type"])
            made[:] = [category.id]
            claim = self._claim("major_category", category.code, str(category.id))
            return [claim, category]

        self._write(actor, decide)
        return self.major_category(made[0])

    def change_major_category(self, actor: Actor, category_id: str, changes: dict) -> dict:
        def decide() -> list[Aggregate]:
            category = self._major(category_id)
            code = changes.get("code", category.code)
            claims = self._recode("major_category", category.code, code, str(category.id))
            changed = category.change(
                code=code,
                name=changes.get("name", category.name),
                type=changes.get("type", category.type),
            )
            return [*claims, category] if changed else []

        self._write(actor, decide)
        return self.major_category(category_id)

    def delete_major_category(self, actor: Actor, category_id: str) -> None:
        def decide() -> list[Aggregate]:
            category = self._major(category_id)
            category.delete()
            return [*self._release("major_category", category.code, str(category.id)), category]

        self._write(actor, decide)

    def major_category(self, category_id: UUID | str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(major_categories).where(
                    major_categories.c.category_id == str(category_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"major category {category_id} not found")
        return row_dict(row)

    def list_major_categories(self, filters: dict) -> dict:
        query = sa.select(major_categories)
        query = self._category_filters(query, major_categories, filters)
        return self._page(query, major_categories, filters)

    # -- minor categories ----------------------------------------------------------------
    def create_minor_category(self, actor: Actor, data: dict) -> dict:
        made: list[UUID] = []

        def decide() -> list[Aggregate]:
            major = self._major(data["major_category_id"], "major_category_id")
            category = MinorCategory.define(data["code"], data["name"], major, data.get("type"))
            made[:] = [category.id]
            major.attach_minor(str(category.id))
            claim = self._claim("minor_category", category.code, str(category.id))
            return [claim, category, major]

        self._write(actor, decide)
        return self.minor_category(made[0])

    def change_minor_category(self, actor: Actor, category_id: str, changes: dict) -> dict:
        def decide() -> list[Aggregate]:
            category = self._minor(category_id)
            old_major_id = category.major_category_id
            major = self._major(changes.get("major_category_id", old_major_id), "major_category_id")
            code = changes.get("code", category.code)
            claims = self._recode("minor_category", category.code, code, str(category.id))
            changed = category.change(
                code=code,
                name=changes.get("name", category.name),
                major=major,
                type=changes.get("type"),
            )
            if not changed:
                return []
            moved: list[Aggregate] = []
            if str(major.id) != old_major_id:
                old_major = self.find(UUID(old_major_id))
                if isinstance(old_major, MajorCategory):
                    old_major.detach_minor(str(category.id))
                    moved.append(old_major)
                major.attach_minor(str(category.id))
                moved.append(major)
            return [*claims, category, *moved]

        self._write(actor, decide)
        return self.minor_category(category_id)

    def delete_minor_category(self, actor: Actor, category_id: str) -> None:
        def decide() -> list[Aggregate]:
            category = self._minor(category_id)
            category.delete()
            major = self.find(UUID(category.major_category_id))
            parents = []
            if isinstance(major, MajorCategory):
                major.detach_minor(str(category.id))
                parents.append(major)
            claims = self._release("minor_category", category.code, str(category.id))
            return [*claims, category, *parents]

        self._write(actor, decide)

    def minor_category(self, category_id: UUID | str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(minor_categories).where(
                    minor_categories.c.category_id == str(category_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"minor category {category_id} not found")
        return row_dict(row)

    def list_minor_categories(self, filters: dict) -> dict:
        query = sa.select(minor_categories)
        query = self._category_filters(query, minor_categories, filters)
        if filters.get("major_category_id"):
            query = query.where(
                minor_categories.c.major_category_id == filters["major_category_id"]
            )
        return self._page(query, minor_categories, filters)

    # -- packages ------------------------------------------------------------------------
    def create_package(self, actor: Actor, data: dict) -> dict:
        made: list[UUID] = []

        def decide() -> list[Aggregate]:
            major, minor = self._categories(
                data.get("major_category_id"), data.get("minor_category_id")
            )
            package = Package.define(
                code=data["code"],
                name=data["name"],
                kind=data.get("kind"),
                pricing=data["pricing"],
                amount=data["amount"],
                currency=data["currency"],
                description=data.get("description", ""),
                major=major,
                minor=minor,
            )
            made[:] = [package.id]
            holders = [c for c in (major, minor) if c is not None]
            for category in holders:
                category.attach_package(str(package.id))
            claim = self._claim("package", package.code, str(package.id))
            return [claim, package, *holders]

        self._write(actor, decide)
        return self.package(made[0])

    def change_package(self, actor: Actor, package_id: str, changes: dict) -> dict:
        def decide() -> list[Aggregate]:
            package = self._package(package_id)
            old_ids = (package.major_category_id, package.minor_category_id)
            minor_id = changes.get("minor_category_id", package.minor_category_id)
            # naming only a new minor category moves the package to its major one too
            major_id = changes.get(
                "major_category_id",
                None if "minor_category_id" in changes else package.major_category_id,
            )
            major, minor = self._categories(major_id, minor_id)
            if major is None and minor is None:
                kind = changes.get("kind", package.kind)
            else:
                kind = package_kind(changes.get("kind"), major, minor)
            new_ids = (
                str(major.id) if major is not None else None,
                str(minor.id) if minor is not None else None,
            )
            code = changes.get("code", package.code)
            claims = self._recode("package", package.code, code, str(package.id))
            changed = package.change(
                code=code,
                name=changes.get("name", package.name),
                kind=kind,
                pricing=changes.get("pricing", package.pricing),
                amount=changes.get("amount", package.amount),
                currency=changes.get("currency", package.currency),
                description=changes.get("description", package.description),
                major_category_id=new_ids[0],
                minor_category_id=new_ids[1],
                bound_devices=self.bound_devices(package_id),
            )
            if not changed:
                return []
            moved = self._move_package(str(package.id), old_ids, (major, minor), new_ids)
            return [*claims, package, *moved]

        self._write(actor, decide)
        return self.package(package_id)

    def _move_package(
        self,
        package_id: str,
        old_ids: tuple[str | None, str | None],
        new: tuple[MajorCategory | None, MinorCategory | None],
        new_ids: tuple[str | None, str | None],
    ) -> list[Aggregate]:
        """Detach the package from categories it left, attach it to those it joined."""
        moved: list[Aggregate] = []
        for old_id, category, new_id in zip(old_ids, new, new_ids, strict=True):
            if old_id == new_id:
                continue
            if old_id is not None:
                left = self.find(UUID(old_id))
                if isinstance(left, (MajorCategory, MinorCategory)):
                    left.detach_package(package_id)
                    moved.append(left)
            if category is not None:
                category.attach_package(package_id)
                moved.append(category)
        return moved

    def withdraw_package(self, actor: Actor, package_id: str) -> dict:
        def decide() -> list[Aggregate]:
            package = self._package(package_id)
            return [package] if package.withdraw() else []

        self._write(actor, decide)
        return self.package(package_id)

    def put_package_on_sale(self, actor: Actor, package_id: str) -> dict:
        def decide() -> list[Aggregate]:
            package = self._package(package_id)
            return [package] if package.put_on_sale() else []

        self._write(actor, decide)
        return self.package(package_id)

    def delete_package(self, actor: Actor, package_id: str) -> None:
        def decide() -> list[Aggregate]:
            package = self._package(package_id)
            package.delete(self.bound_devices(package_id))
            holders = []
            for category_id in (package.major_category_id, package.minor_category_id):
                category = self.find(UUID(category_id)) if category_id else None
                if isinstance(category, (MajorCategory, MinorCategory)):
                    category.detach_package(str(package.id))
                    holders.append(category)
            claims = self._release("package", package.code, str(package.id))
            return [*claims, package, *holders]

        self._write(actor, decide)

    def package(self, package_id: UUID | str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(packages, bound_devices_count().label("bound_devices")).where(
                    packages.c.package_id == str(package_id)
                )
            ).first()
        if row is None:
            raise NotFound(f"package {package_id} not found")
        return row_dict(row)

    def list_packages(self, filters: dict) -> dict:
        query = sa.select(packages, bound_devices_count().label("bound_devices"))
        for name in ("kind", "pricing", "currency", "major_category_id", "minor_category_id"):
            if filters.get(name):
                query = query.where(packages.c[name] == filters[name])
        for name in ("code", "name", "description"):
            if filters.get(name):
                query = query.where(_contains(packages.c[name], filters[name]))
        if filters.get("on_sale") is not None:
            query = query.where(packages.c.on_sale == filters["on_sale"])
        if filters.get("amount_min") is not None:
            query = query.where(packages.c.amount >= filters["amount_min"])
        if filters.get("amount_max") is not None:
            query = query.where(packages.c.amount <= filters["amount_max"])
        query = self._time_filters(query, packages, filters)
        return self._page(query, packages, filters)

    def quote(self, package_id: str, months: int) -> dict:
        """The exact price of ``months`` of a package (billing copies it onto orders)."""
        package = self._package(package_id)
        try:
            amount = package.quote(months)
        except CatalogRefused as exc:
            raise _app_error(exc) from exc
        return {
            "package_id": str(package.id),
            "code": package.code,
            "name": package.name,
            "kind": package.kind,
            "pricing": package.pricing,
            "currency": package.currency,
            "on_sale": package.on_sale,
            "months": months,
            "unit_price": package.amount,
            "amount": amount,
        }

    # -- bindings (reactions to the devices service) ------------------------------------
    def record_binding_event(self, event_type: str, sequence: int, data: dict) -> bool:
        """Apply a devices binding event to the bindings view; True if it changed it.

        Idempotent without an inbox: each slot keeps the sequence of the last event applied
        to it, and an event not newer than that (a redelivery, a duplicate, a late arrival)
        changes nothing.
        """
        if event_type not in BINDING_EVENTS:
            raise ValueError(f"not a binding event: {event_type}")
        value_added = event_type.startswith("value_added")
        slot = f"value_added:{data['binding_id']}" if value_added else "renewal"
        bound = event_type.endswith("_bound")
        with self.engine.begin() as conn:
            return record_binding(
                conn,
                device_id=str(data["device_id"]),
                slot=slot,
                package_id=str(data["package_id"]) if bound else None,
                company_id=data.get("company_id"),
                sequence=int(sequence),
            )

    def bound_devices(self, package_id: Any) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    sa.select(package_bindings.c.device_id)
                    .where(package_bindings.c.package_id == str(package_id))
                    .distinct()
                    .order_by(package_bindings.c.device_id)
                ).scalars()
            )

    # -- queries -------------------------------------------------------------------------
    def _category_filters(self, query: sa.Select, table: sa.Table, filters: dict) -> sa.Select:
        for name in ("code", "name"):
            if filters.get(name):
                query = query.where(_contains(table.c[name], filters[name]))
        if filters.get("type"):
            query = query.where(table.c.type == filters["type"])
        return self._time_filters(query, table, filters)

    @staticmethod
    def _time_filters(query: sa.Select, table: sa.Table, filters: dict) -> sa.Select:
        for name in ("created", "changed"):
            column = table.c[f"{name}_at"]
            if filters.get(f"{name}_from") is not None:
                query = query.where(column >= filters[f"{name}_from"])
            if filters.get(f"{name}_to") is not None:
                query = query.where(column < filters[f"{name}_to"])
        return query

    def _page(self, query: sa.Select, table: sa.Table, filters: dict) -> dict:
        page, per_page = filters.get("page", 1), filters.get("per_page", 50)
        sort = filters.get("sort") or "code"
        column = table.c[sort.lstrip("-")]
        order = column.desc() if sort.startswith("-") else column.asc()
        key = table.primary_key.columns.values()[0]
        with self.engine.connect() as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            rows = conn.execute(
                query.order_by(order, key).limit(per_page).offset((page - 1) * per_page)
            ).all()
        return {
            "items": [row_dict(r) for r in rows],
            "total": total,
            "page": page,
            "per_page": per_page,
        }
