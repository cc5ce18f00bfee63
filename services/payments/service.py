"""Payments service entrypoints."""

from __future__ import annotations

from nameko.rpc import rpc

from services.common.dependencies import Store
from services.payments.application import PaymentsApplication


class PaymentsService:
    name = "payments"
    app: PaymentsApplication = Store(PaymentsApplication)

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}
