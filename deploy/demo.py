"""Load the demo data into a running platform (``make run`` does this once).

A company tree (vendor -> dealer -> two customers, one with a subsidiary; one customer in
China, one abroad), a user per role, renewal packages in CNY and USD, twenty devices of
two types (some already expired), bindings and billing configs. Idempotent: a second run
finds the marker file and does nothing.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nameko.standalone.rpc import ClusterRpcProxy  # noqa: E402

from gateway.users import Users  # noqa: E402
from services.common import clock  # noqa: E402
from services.common.actor import SYSTEM  # noqa: E402
from services.common.config import amqp_uri, data_dir  # noqa: E402
from services.common.errors import Conflict, NotFound  # noqa: E402

PASSWORD = "demo-pass-2026"
LOGINS = [
    ("admin", "admin", "vendor", "platform administrator"),
    ("sales", "sales", "vendor", "sales staff"),
    ("finance", "finance", "vendor", "finance reviewer"),
    ("support", "support", "vendor", "technical support"),
    ("customer", "customer", "cn_customer", "customer in China (CNY)"),
    ("customer-intl", "customer", "intl_customer", "customer abroad (USD)"),
]


def _retry(fn: Any, *args: Any, deadline: float = 60.0) -> Any:
    """Services learn about new companies from events: wait for them to arrive."""
    end = time.monotonic() + deadline
    while True:
        try:
            return fn(*args)
        except NotFound:
            if time.monotonic() > end:
                raise
            time.sleep(0.3)


def load(marker: Path | None = None) -> dict:
    marker = marker or data_dir() / "demo.json"
    if marker.exists():
        return json.loads(marker.read_text())
    system = SYSTEM.to_rpc()
    now = clock.now().replace(microsecond=0)
    with ClusterRpcProxy({"AMQP_URI": amqp_uri()}, timeout=60) as rpc:
        companies: dict[str, str] = {}

        def company(key: str, name: str, parent: str | None, region: str) -> None:
            created = _retry(
                rpc.devices.register_company,
                system,
                {
                    "name": name,
                    "parent_id": companies.get(parent) if parent else None,
                    "region": region,
                },
            )
            companies[key] = created["company_id"]

        company("vendor", "IoT Vendor Ltd.", None, "china")
        company("dealer", "East Dealer Co.", "vendor", "china")
        company("cn_customer", "Shenzhen Fleet Logistics", "dealer", "china")
        company("cn_subsidiary", "Shenzhen Fleet Logistics (Guangzhou)", "cn_customer", "china")
        company("intl_customer", "Rotterdam Cold Chain B.V.", "dealer", "other")

        users = Users()
        for username, role, key, display in LOGINS:
            try:
                users.create(username, PASSWORD, role, companies[key], display, "en")
            except Conflict:
                pass

        packages = {}
        for code, name, pricing, amount, currency in [
            ("RN-CN-M", "4G renewal, monthly (CNY)", "per_month", "10.00", "CNY"),
            ("RN-CN-Y", "4G renewal, yearly (CNY)", "per_year", "100.00", "CNY"),
            ("RN-US-M", "4G renewal, monthly (USD)", "per_month", "2.00", "USD"),
            ("RN-US-Y", "4G renewal, yearly (USD)", "per_year", "20.00", "USD"),
        ]:
            try:
                created = rpc.catalog.create_package(
                    system,
                    {
                        "code": code,
                        "name": name,
                        "kind": "renewal",
                        "pricing": pricing,
                        "amount": amount,
                        "currency": currency,
                    },
                )
                packages[code] = created["package_id"]
            except Conflict:
                pass

        devices = []
        plan = [
            ("cn_customer", "GT06 tracker", 8, -30, "RN-CN-M"),
            ("cn_customer", "DC-200 dashcam", 4, 10, "RN-CN-Y"),
            ("cn_subsidiary", "GT06 tracker", 3, 45, "RN-CN-M"),
            ("intl_customer", "GT06 tracker", 3, -5, "RN-US-M"),
            ("intl_customer", "DC-200 dashcam", 2, 200, None),
        ]
        serial = 860000000000000
        for key, device_type, count, base_days, package in plan:
            for n in range(count):
                serial += 1
                days = base_days + n * 7
                device = _retry(
                    rpc.devices.register_device,
                    system,
                    {
                        "device_id": str(serial),
                        "device_type": device_type,
                        "company_id": companies[key],
                        "expires_at": (now + timedelta(days=days)).isoformat(),
                    },
                )
                devices.append(device["device_id"])
                if package and n % 4 != 3:  # leave some unbound, as in real life
                    rpc.devices.bind_package(
                        system,
                        {"package_id": packages[package], "device_ids": [device["device_id"]]},
                    )

        for key, region, currency, language, email in [
            ("cn_customer", "china", "CNY", "zh", "fleet-ops@shenzhen-fleet.example"),
            ("cn_subsidiary", "china", "CNY", "zh", "gz-ops@shenzhen-fleet.example"),
            ("intl_customer", "other", "USD", "en", "ops@rotterdam-coldchain.example"),
        ]:
            _retry(
                rpc.billing.set_account_config,
                system,
                companies[key],
                {
                    "region": region,
                    "default_currency": currency,
                    "billing_cycle": "monthly",
                    "auto_renewal": False,
                    "push_enabled": True,
                    "language": language,
                    "push_emails": [email],
                },
            )
    result = {"companies": companies, "packages": packages, "devices": devices}
    marker.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    print(json.dumps(load(), indent=2))
