"""Catalog service entrypoints: parse, call, return. Rules live in application/domain."""

from __future__ import annotations

from nameko.rpc import rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.catalog import (
    MajorCategoryChange,
    MajorCategoryFilter,
    MajorCategoryIn,
    MajorCategoryOut,
    MajorCategoryPage,
    MinorCategoryChange,
    MinorCategoryFilter,
    MinorCategoryIn,
    MinorCategoryOut,
    MinorCategoryPage,
    PackageChange,
    PackageFilter,
    PackageIn,
    PackageOut,
    PackagePage,
    QuoteIn,
    QuoteOut,
)
from services.catalog.application import CatalogApplication
from services.common.actor import Actor
from services.common.consumer import subscribe
from services.common.dependencies import Store


class CatalogService:
    name = "catalog"
    app: CatalogApplication = Store(CatalogApplication)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    # major categories
    @rpc
    def create_major_category(self, actor: dict, payload: dict) -> dict:
        data = load(MajorCategoryIn(), payload)
        return MajorCategoryOut().dump(self.app.create_major_category(Actor.from_rpc(actor), data))

    @rpc
    def change_major_category(self, actor: dict, category_id: str, payload: dict) -> dict:
        data = load(MajorCategoryChange(), payload)
        return MajorCategoryOut().dump(
            self.app.change_major_category(Actor.from_rpc(actor), category_id, data)
        )

    @rpc
    def delete_major_category(self, actor: dict, category_id: str) -> None:
        self.app.delete_major_category(Actor.from_rpc(actor), category_id)

    @rpc
    def get_major_category(self, actor: dict, category_id: str) -> dict:
        Actor.from_rpc(actor)
        return MajorCategoryOut().dump(self.app.major_category(category_id))

    @rpc
    def list_major_categories(self, actor: dict, filters: dict | None = None) -> dict:
        Actor.from_rpc(actor)
        data = load(MajorCategoryFilter(), filters or {})
        return MajorCategoryPage().dump(self.app.list_major_categories(data))

    # minor categories
    @rpc
    def create_minor_category(self, actor: dict, payload: dict) -> dict:
        data = load(MinorCategoryIn(), payload)
        return MinorCategoryOut().dump(self.app.create_minor_category(Actor.from_rpc(actor), data))

    @rpc
    def change_minor_category(self, actor: dict, category_id: str, payload: dict) -> dict:
        data = load(MinorCategoryChange(), payload)
        return MinorCategoryOut().dump(
            self.app.change_minor_category(Actor.from_rpc(actor), category_id, data)
        )

    @rpc
    def delete_minor_category(self, actor: dict, category_id: str) -> None:
        self.app.delete_minor_category(Actor.from_rpc(actor), category_id)

    @rpc
    def get_minor_category(self, actor: dict, category_id: str) -> dict:
        Actor.from_rpc(actor)
        return MinorCategoryOut().dump(self.app.minor_category(category_id))

    @rpc
    def list_minor_categories(self, actor: dict, filters: dict | None = None) -> dict:
        Actor.from_rpc(actor)
        data = load(MinorCategoryFilter(), filters or {})
        return MinorCategoryPage().dump(self.app.list_minor_categories(data))

    # packages
    @rpc
    def create_package(self, actor: dict, payload: dict) -> dict:
        data = load(PackageIn(), payload)
        return PackageOut().dump(self.app.create_package(Actor.from_rpc(actor), data))

    @rpc
    def change_package(self, actor: dict, package_id: str, payload: dict) -> dict:
        data = load(PackageChange(), payload)
        return PackageOut().dump(self.app.change_package(Actor.from_rpc(actor), package_id, data))

    @rpc
    def withdraw_package(self, actor: dict, package_id: str) -> dict:
        return PackageOut().dump(self.app.withdraw_package(Actor.from_rpc(actor), package_id))

    @rpc
    def put_package_on_sale(self, actor: dict, package_id: str) -> dict:
        return PackageOut().dump(self.app.put_package_on_sale(Actor.from_rpc(actor), package_id))

    @rpc
    def delete_package(self, actor: dict, package_id: str) -> None:
        self.app.delete_package(Actor.from_rpc(actor), package_id)

    @rpc
    def get_package(self, actor: dict, package_id: str) -> dict:
        Actor.from_rpc(actor)
        return PackageOut().dump(self.app.package(package_id))

    @rpc
    def list_packages(self, actor: dict, filters: dict | None = None) -> dict:
        Actor.from_rpc(actor)
        data = load(PackageFilter(), filters or {})
        return PackagePage().dump(self.app.list_packages(data))

    @rpc
    def quote(self, package_id: str, months: int) -> dict:
        data = load(QuoteIn(), {"package_id": package_id, "months": months})
        return QuoteOut().dump(self.app.quote(data["package_id"], data["months"]))

    # reactions: which devices use which package (a bound package cannot be deleted)
    @subscribe("devices", "package_bound")
    def on_package_bound(self, envelope: Envelope) -> None:
        self.app.record_binding_event(envelope.type, envelope.sequence, envelope.data)

    @subscribe("devices", "package_unbound")
    def on_package_unbound(self, envelope: Envelope) -> None:
        self.app.record_binding_event(envelope.type, envelope.sequence, envelope.data)

    @subscribe("devices", "value_added_bound")
    def on_value_added_bound(self, envelope: Envelope) -> None:
        self.app.record_binding_event(envelope.type, envelope.sequence, envelope.data)

    @subscribe("devices", "value_added_unbound")
    def on_value_added_unbound(self, envelope: Envelope) -> None:
        self.app.record_binding_event(envelope.type, envelope.sequence, envelope.data)

    @timer(interval=2)
    def catch_up(self) -> None:
        self.app.catch_up()  # views of events written by another replica
