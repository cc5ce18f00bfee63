"""Gateway DependencyProviders."""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider

from gateway.users import Users


class UserStore(DependencyProvider):
    def setup(self) -> None:
        self.users = Users()

    def get_dependency(self, worker_ctx: Any) -> Users:
        return self.users
