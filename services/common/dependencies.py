"""nameko DependencyProviders shared by the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nameko.extensions import DependencyProvider


class Store(DependencyProvider):
    """Opens the service's application (event store, views, projector) once per container
    and hands every worker the same application object."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self.app: Any = None

    def setup(self) -> None:
        self.app = self.factory()

    def stop(self) -> None:
        if self.app is not None:
            self.app.close()

    def get_dependency(self, worker_ctx: Any) -> Any:
        return self.app
