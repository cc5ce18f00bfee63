"""Catalog service entrypoints: parse, call, return. Rules live in application/domain."""

from __future__ import annotations

from nameko.rpc import rpc

from contracts.rpc import load
from contracts.rpc.catalog import PackageFilter, PackageIn, PackageOut, QuoteIn, QuoteOut
from services.catalog.application import CatalogApplication
from services.common.actor import Actor
from services.common.dependencies import Store


class CatalogService:
    name = "catalog"
    app: CatalogApplication = Store(CatalogApplication)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    @rpc
    def create_package(self, actor: dict, payload: dict) -> dict:
        data = load(PackageIn(), payload)
        return PackageOut().dump(self.app.create_package(Actor.from_rpc(actor), data))

    @rpc
    def get_package(self, actor: dict, package_id: str) -> dict:
        Actor.from_rpc(actor)
        return PackageOut().dump(self.app.package(package_id))

    @rpc
    def list_packages(self, actor: dict, filters: dict | None = None) -> list[dict]:
        Actor.from_rpc(actor)
        return PackageOut(many=True).dump(
            self.app.list_packages(load(PackageFilter(), filters or {}))
        )

    @rpc
    def quote(self, package_id: str, months: int) -> dict:
        data = load(QuoteIn(), {"package_id": package_id, "months": months})
        return QuoteOut().dump(self.app.quote(data["package_id"], data["months"]))
