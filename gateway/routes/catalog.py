"""HTTP routes: catalog."""

from __future__ import annotations

from typing import Any

from contracts.rpc.catalog import PackageFilter, PackageIn, PackageOut
from gateway.api import call, endpoint
from services.common.actor import Actor


class CatalogRoutes:
    @endpoint(
        "GET",
        "/packages",
        "Packages of the catalog",
        "catalog",
        query=PackageFilter,
        response=PackageOut,
        many=True,
    )
    def list_packages(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.catalog, "list_packages", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/packages",
        "Create a package",
        "catalog",
        body=PackageIn,
        response=PackageOut,
        status=201,
        roles=("support", "admin"),
    )
    def create_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.catalog, "create_package", actor.to_rpc(), payload)

    @endpoint("GET", "/packages/{package_id}", "One package", "catalog", response=PackageOut)
    def get_package(self, request: Any, actor: Actor, package_id: str) -> Any:
        return call(self.catalog, "get_package", actor.to_rpc(), package_id)
