"""HTTP routes: notifications (the delivery log).

Admins read every mail; everyone else the mails of their company and its subsidiaries
(the notifications service enforces it)."""

from __future__ import annotations

from typing import Any

from contracts.rpc.notifications import DeliveryFilter, DeliveryOut
from gateway.api import call, endpoint
from services.common.actor import Actor


class NotificationsRoutes:
    @endpoint(
        "GET",
        "/deliveries",
        "Mails sent to your company and its subsidiaries (admins: all), newest first",
        "notifications",
        query=DeliveryFilter,
        response=DeliveryOut,
        many=True,
        description="Each mail with the event that caused it, its template, language, "
        "recipients, status (pending, sending, sent, failed, skipped), attempts and times.",
    )
    def deliveries(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.notifications, "delivery_log", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/deliveries/{delivery_id}",
        "One mail of the delivery log",
        "notifications",
        response=DeliveryOut,
    )
    def delivery(self, request: Any, actor: Actor, delivery_id: str) -> Any:
        return call(self.notifications, "get_delivery", actor.to_rpc(), delivery_id)
