"""Payments use cases."""

from __future__ import annotations

from services.common.store import ServiceApplication


class PaymentsApplication(ServiceApplication):
    service = "payments"
