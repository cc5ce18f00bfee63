"""The HTTP gateway: authenticates, checks roles, forwards to the services by RPC with the
actor, and answers every failure in one JSON error format. Services enforce scope.

Endpoints live in gateway/routes/, one mixin per area; this class wires the dependencies.
"""

from __future__ import annotations

from nameko.rpc import RpcProxy

from gateway.dependencies import UserStore
from gateway.routes.billing import BillingRoutes
from gateway.routes.catalog import CatalogRoutes
from gateway.routes.devices import DevicesRoutes
from gateway.routes.notifications import NotificationsRoutes
from gateway.routes.payments import PaymentsRoutes
from gateway.routes.platform import PlatformRoutes


class GatewayService(
    PlatformRoutes, CatalogRoutes, DevicesRoutes, BillingRoutes, PaymentsRoutes, NotificationsRoutes
):
    name = "gateway"
    users = UserStore()
    catalog = RpcProxy("catalog")
    devices = RpcProxy("devices")
    billing = RpcProxy("billing")
    payments = RpcProxy("payments")
    notifications = RpcProxy("notifications")
