"""HTTP routes: the package catalog (T2). Every role reads; support and admin write."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Response

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
    QuoteOut,
    QuoteQuery,
)
from gateway.api import call, endpoint
from services.common.actor import Actor

WRITERS = ("support", "admin")
IN_USE = "Refused with 409 while it is in use; the error's fields say what uses it."


def _deleted() -> Response:
    return Response(status=204)


class CatalogRoutes:
    # -- major categories ----------------------------------------------------------------
    @endpoint(
        "GET",
        "/major-categories",
        "Major package categories",
        "catalog",
        query=MajorCategoryFilter,
        response=MajorCategoryPage,
    )
    def list_major_categories(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.catalog, "list_major_categories", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/major-categories",
        "Create a major category",
        "catalog",
        body=MajorCategoryIn,
        response=MajorCategoryOut,
        status=201,
        roles=WRITERS,
    )
    def create_major_category(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.catalog, "create_major_category", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/major-categories/{category_id}",
        "One major category",
        "catalog",
        response=MajorCategoryOut,
    )
    def get_major_category(self, request: Any, actor: Actor, category_id: str) -> Any:
        return call(self.catalog, "get_major_category", actor.to_rpc(), category_id)

    @endpoint(
        "PATCH",
        "/major-categories/{category_id}",
        "Change a major category (only the fields given)",
        "catalog",
        body=MajorCategoryChange,
        response=MajorCategoryOut,
        roles=WRITERS,
        description="The type cannot change while it holds minor categories or packages.",
    )
    def change_major_category(
        self, request: Any, actor: Actor, category_id: str, payload: dict
    ) -> Any:
        return call(self.catalog, "change_major_category", actor.to_rpc(), category_id, payload)

    @endpoint(
        "DELETE",
        "/major-categories/{category_id}",
        "Delete a major category",
        "catalog",
        status=204,
        roles=WRITERS,
        description=IN_USE,
    )
    def delete_major_category(self, request: Any, actor: Actor, category_id: str) -> Any:
        call(self.catalog, "delete_major_category", actor.to_rpc(), category_id)
        return _deleted()

    # -- minor categories ----------------------------------------------------------------
    @endpoint(
        "GET",
        "/minor-categories",
        "Minor package categories",
        "catalog",
        query=MinorCategoryFilter,
        response=MinorCategoryPage,
    )
    def list_minor_categories(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.catalog, "list_minor_categories", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/minor-categories",
        "Create a minor category",
        "catalog",
        body=MinorCategoryIn,
        response=MinorCategoryOut,
        status=201,
        roles=WRITERS,
        description="Its type is its major category's.",
    )
    def create_minor_category(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.catalog, "create_minor_category", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/minor-categories/{category_id}",
        "One minor category",
        "catalog",
        response=MinorCategoryOut,
    )
    def get_minor_category(self, request: Any, actor: Actor, category_id: str) -> Any:
        return call(self.catalog, "get_minor_category", actor.to_rpc(), category_id)

    @endpoint(
        "PATCH",
        "/minor-categories/{category_id}",
        "Change a minor category (only the fields given)",
        "catalog",
        body=MinorCategoryChange,
        response=MinorCategoryOut,
        roles=WRITERS,
        description="It moves to another major category only while it holds no packages.",
    )
    def change_minor_category(
        self, request: Any, actor: Actor, category_id: str, payload: dict
    ) -> Any:
        return call(self.catalog, "change_minor_category", actor.to_rpc(), category_id, payload)

    @endpoint(
        "DELETE",
        "/minor-categories/{category_id}",
        "Delete a minor category",
        "catalog",
        status=204,
        roles=WRITERS,
        description=IN_USE,
    )
    def delete_minor_category(self, request: Any, actor: Actor, category_id: str) -> Any:
        call(self.catalog, "delete_minor_category", actor.to_rpc(), category_id)
        return _deleted()

    # -- packages ------------------------------------------------------------------------
    @endpoint(
        "GET",
        "/packages",
        "Packages of the catalog",
        "catalog",
        query=PackageFilter,
        response=PackagePage,
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
        roles=WRITERS,
        description="Its kind follows its categories.",
    )
    def create_package(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.catalog, "create_package", actor.to_rpc(), payload)

    @endpoint("GET", "/packages/{package_id}", "One package", "catalog", response=PackageOut)
    def get_package(self, request: Any, actor: Actor, package_id: str) -> Any:
        return call(self.catalog, "get_package", actor.to_rpc(), package_id)

    @endpoint(
        "PATCH",
        "/packages/{package_id}",
        "Change a package (only the fields given)",
        "catalog",
        body=PackageChange,
        response=PackageOut,
        roles=WRITERS,
        description="A new price applies to orders made from now on; orders already made "
        "keep theirs. The kind cannot change while devices are bound to it.",
    )
    def change_package(self, request: Any, actor: Actor, package_id: str, payload: dict) -> Any:
        return call(self.catalog, "change_package", actor.to_rpc(), package_id, payload)

    @endpoint(
        "POST",
        "/packages/{package_id}/withdraw",
        "Withdraw a package from sale",
        "catalog",
        response=PackageOut,
        roles=WRITERS,
        description="Bound devices keep it; it can no longer be bound.",
    )
    def withdraw_package(self, request: Any, actor: Actor, package_id: str) -> Any:
        return call(self.catalog, "withdraw_package", actor.to_rpc(), package_id)

    @endpoint(
        "POST",
        "/packages/{package_id}/put-on-sale",
        "Put a withdrawn package back on sale",
        "catalog",
        response=PackageOut,
        roles=WRITERS,
    )
    def put_package_on_sale(self, request: Any, actor: Actor, package_id: str) -> Any:
        return call(self.catalog, "put_package_on_sale", actor.to_rpc(), package_id)

    @endpoint(
        "DELETE",
        "/packages/{package_id}",
        "Delete a package",
        "catalog",
        status=204,
        roles=WRITERS,
        description="Only a package bound to no device; otherwise withdraw it. " + IN_USE,
    )
    def delete_package(self, request: Any, actor: Actor, package_id: str) -> Any:
        call(self.catalog, "delete_package", actor.to_rpc(), package_id)
        return _deleted()

    @endpoint(
        "GET",
        "/packages/{package_id}/quote",
        "The price of a package for some months",
        "catalog",
        query=QuoteQuery,
        response=QuoteOut,
        description="per month: amount x months; per year: amount x months / 12, rounded "
        "half up to the cent; one-off: the amount.",
    )
    def quote_package(self, request: Any, actor: Actor, package_id: str, query: dict) -> Any:
        months = load(QuoteQuery(), query)["months"]
        return call(self.catalog, "quote", package_id, months)
