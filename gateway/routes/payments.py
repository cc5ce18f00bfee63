"""HTTP routes: payments (provider callbacks arrive here, unauthenticated but verified)."""

from __future__ import annotations


class PaymentsRoutes:
    pass
