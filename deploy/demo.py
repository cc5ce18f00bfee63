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
                users.create(
                    username,
                    PASSWORD,
                    role,
                    companies[key],
                    display,
                    "en",
                    f"{username}@iot-vendor.example",
                )
            except Conflict:
                pass

        # the catalog (T2): two major categories, four minor ones, renewal packages per
        # month and per year in CNY and USD, value-added packages; a rerun finds them by code
        def catalog_entry(kind: str, payload: dict) -> dict:
            try:
                return getattr(rpc.catalog, f"create_{kind}")(system, payload)
            except Conflict:
                plural = {"package": "packages"}.get(kind, kind.replace("category", "categories"))
                listed = getattr(rpc.catalog, f"list_{plural}")
                found = listed(system, {"code": payload["code"], "per_page": 500})["items"]
                return next(e for e in found if e["code"].lower() == payload["code"].lower())

        majors = {
            code: catalog_entry("major_category", {"code": code, "name": name, "type": kind})
            for code, name, kind in [
                ("RN", "Connectivity renewal", "renewal"),
                ("VA", "Value-added services", "value_added"),
            ]
        }
        minors = {
            code: catalog_entry(
                "minor_category",
                {"code": code, "name": name, "major_category_id": majors[major]["category_id"]},
            )
            for code, name, major in [
                ("RN-4G", "4G connectivity", "RN"),
                ("RN-NB", "NB-IoT connectivity", "RN"),
                ("VA-VIDEO", "Cloud video storage", "VA"),
                ("VA-ALERT", "Alerts and notifications", "VA"),
            ]
        }
        about = {
            "RN-4G": "4G data service for trackers and dashcams",
            "RN-NB": "NB-IoT data service for low-power sensors",
            "VA-VIDEO": "dashcam footage kept in the cloud",
            "VA-ALERT": "geofence, overspeed and power-cut alerts",
        }
        packages = {}
        for code, minor, pricing, amount, currency, name in [
            ("RN-CN-M", "RN-4G", "per_month", "10.00", "CNY", "4G renewal, monthly (CNY)"),
            ("RN-CN-Y", "RN-4G", "per_year", "100.00", "CNY", "4G renewal, yearly (CNY)"),
            ("RN-US-M", "RN-4G", "per_month", "2.00", "USD", "4G renewal, monthly (USD)"),
            ("RN-US-Y", "RN-4G", "per_year", "20.00", "USD", "4G renewal, yearly (USD)"),
            ("NB-CN-Y", "RN-NB", "per_year", "36.00", "CNY", "NB-IoT renewal, yearly (CNY)"),
            ("NB-US-Y", "RN-NB", "per_year", "6.00", "USD", "NB-IoT renewal, yearly (USD)"),
            ("VA-VID30-CN", "VA-VIDEO", "per_month", "15.00", "CNY", "Video storage 30 days"),
            ("VA-VID90-CN", "VA-VIDEO", "per_year", "399.00", "CNY", "Video storage 90 days"),
            ("VA-VID30-US", "VA-VIDEO", "per_month", "2.50", "USD", "Video storage 30 days"),
            ("VA-SMS-CN", "VA-ALERT", "per_month", "5.00", "CNY", "SMS alerts, 200 a month"),
            ("VA-SMS-US", "VA-ALERT", "per_month", "1.20", "USD", "SMS alerts, 200 a month"),
            ("VA-SETUP-CN", "VA-ALERT", "one_off", "50.00", "CNY", "Alert rules set-up"),
        ]:
            created = catalog_entry(
                "package",
                {
                    "code": code,
                    "name": name,
                    "minor_category_id": minors[minor]["category_id"],
                    "pricing": pricing,
                    "amount": amount,
                    "currency": currency,
                    "description": about[minor],
                },
            )
            packages[code] = created["package_id"]

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
