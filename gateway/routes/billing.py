"""HTTP routes: billing."""

from __future__ import annotations

from typing import Any

from contracts.rpc.billing import (
    AccountConfigIn,
    AccountConfigOut,
    AccountOut,
    ApplicationFilter,
    OfflineApplicationIn,
    OfflineApplicationOut,
    OrderFilter,
    OrderOut,
    OrderPage,
    PayIn,
    RenewalCandidateOut,
    RenewalCenterFilter,
    RenewalOrderIn,
    ReviewIn,
)
from gateway.api import call, endpoint
from services.common.actor import Actor


class BillingRoutes:
    @endpoint(
        "GET",
        "/accounts/{company_id}",
        "Balances of a company's account",
        "billing",
        response=AccountOut,
    )
    def get_account(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.billing, "get_account", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/accounts/{company_id}/config",
        "C4/S2: a company's billing account config",
        "billing",
        response=AccountConfigOut,
    )
    def get_account_config(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.billing, "get_account_config", actor.to_rpc(), company_id)

    @endpoint(
        "PUT",
        "/accounts/{company_id}/config",
        "S2: create or change a billing account config",
        "billing",
        body=AccountConfigIn,
        response=AccountConfigOut,
        roles=("sales", "admin"),
    )
    def set_account_config(self, request: Any, actor: Actor, company_id: str, payload: dict) -> Any:
        return call(self.billing, "set_account_config", actor.to_rpc(), company_id, payload)

    @endpoint(
        "POST",
        "/offline-applications",
        "S1: file an offline recharge (draft, or submit at once)",
        "billing",
        body=OfflineApplicationIn,
        response=OfflineApplicationOut,
        status=201,
        roles=("sales", "admin"),
    )
    def file_application(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "file_offline_application", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/offline-applications",
        "S1/F1: offline recharge applications",
        "billing",
        query=ApplicationFilter,
        response=OfflineApplicationOut,
        many=True,
        roles=("sales", "finance", "admin"),
    )
    def list_applications(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_offline_applications", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/offline-applications/{application_id}",
        "One application with its history",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "finance", "admin"),
    )
    def get_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return call(self.billing, "get_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/submit",
        "S1: submit a draft or returned application for review",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "admin"),
    )
    def submit_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return call(self.billing, "submit_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/review",
        "F1: approve (credits the balance), return or reject, with an opinion",
        "billing",
        body=ReviewIn,
        response=OfflineApplicationOut,
        roles=("finance", "admin"),
    )
    def review_application(
        self, request: Any, actor: Actor, application_id: str, payload: dict
    ) -> Any:
        return call(
            self.billing, "review_offline_application", actor.to_rpc(), application_id, payload
        )

    @endpoint(
        "GET",
        "/renewal-center",
        "C1: devices expired or expiring within the window, with package and price",
        "billing",
        query=RenewalCenterFilter,
        response=RenewalCandidateOut,
        many=True,
    )
    def renewal_center(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "renewal_center", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/orders",
        "C1: create a renewal order for devices and a month count",
        "billing",
        body=RenewalOrderIn,
        response=OrderOut,
        status=201,
        roles=("customer", "admin"),
    )
    def create_order(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "create_renewal_order", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/orders",
        "C2: orders of your company, filtered and paged",
        "billing",
        query=OrderFilter,
        response=OrderPage,
    )
    def list_orders(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_orders", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/orders/{order_id}",
        "C2: one order with its lines and history",
        "billing",
        response=OrderOut,
    )
    def get_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "get_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/confirm",
        "C1: the second confirmation",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def confirm_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "confirm_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/pay",
        "C1: pay a confirmed order",
        "billing",
        body=PayIn,
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def pay_order(self, request: Any, actor: Actor, order_id: str, payload: dict) -> Any:
        return call(self.billing, "pay_order", actor.to_rpc(), order_id, payload)

    @endpoint(
        "POST",
        "/orders/{order_id}/cancel",
        "C2: cancel an unpaid order",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def cancel_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "cancel_order", actor.to_rpc(), order_id)
