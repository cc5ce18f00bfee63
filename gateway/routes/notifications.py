"""HTTP routes: notifications."""

from __future__ import annotations

from typing import Any

from contracts.rpc.notifications import DeliveryOut
from gateway.api import call, endpoint
from gateway.schemas import (
    DeliveriesQuery,
)
from services.common.actor import Actor


class NotificationsRoutes:
    @endpoint(
        "GET",
        "/deliveries",
        "Mails sent to your company (admins: all)",
        "notifications",
        query=DeliveriesQuery,
        response=DeliveryOut,
        many=True,
    )
    def deliveries(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.notifications, "delivery_log", actor.to_rpc(), query.get("company_id"))
