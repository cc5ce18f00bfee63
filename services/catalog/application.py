"""Catalog use cases."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

import sqlalchemy as sa

from services.catalog.domain import Package, PackageCode
from services.catalog.projections import packages, projection
from services.common.actor import Actor
from services.common.domain import event_meta
from services.common.errors import NotFound, ValidationFailed
from services.common.store import ServiceApplication

WRITERS = ("support", "admin")


class CatalogApplication(ServiceApplication):
    service = "catalog"
    projection = projection

    def create_package(self, actor: Actor, data: dict) -> dict:
        actor.require(*WRITERS)
        code = data["code"].strip()
        if not code:
            raise ValidationFailed("code: must not be blank", {"code": ["must not be blank"]})
        with event_meta(**actor.meta()):
            package = Package(
                code=code,
                name=data["name"].strip(),
                kind=data["kind"],
                pricing=data["pricing"],
                amount=data["amount"],
                currency=data["currency"],
                description=data.get("description", ""),
            )
            claim = PackageCode(code=code, package_id=package.id)
        self.save_new(claim, package, what=f"a package with code {code!r}")
        return self.package(package.id)

    def _load(self, package_id: str) -> Package:
        try:
            found = self.find(UUID(str(package_id)))
        except ValueError:
            found = None
        if not isinstance(found, Package):
            raise NotFound(f"package {package_id} not found")
        return found

    def package(self, package_id: UUID | str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(packages).where(packages.c.package_id == str(package_id))
            ).first()
        if row is None:
            raise NotFound(f"package {package_id} not found")
        return dict(row._mapping)

    def list_packages(self, filters: dict) -> list[dict]:
        query = sa.select(packages).order_by(packages.c.code)
        for name in ("kind", "currency", "pricing"):
            if filters.get(name):
                query = query.where(packages.c[name] == filters[name])
        if filters.get("on_sale") is not None:
            query = query.where(packages.c.on_sale == filters["on_sale"])
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def quote(self, package_id: str, months: int) -> dict:
        package = self._load(package_id)
        amount: Decimal = package.quote(months)
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
