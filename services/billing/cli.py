"""Operations on the billing ledger (uses the same environment as the service: IOTB_STORE,
IOTB_DB_PREFIX, IOTB_PG_DSN, IOTB_DATA_DIR).

    python -m services.billing.cli replay
        drop every billing read view and rebuild it from the event store
    python -m services.billing.cli balance <company_id> --at 2026-03-31T23:59:59Z
        an account's balance per currency as of an instant, from its events alone
    python -m services.billing.cli verify
        replay into a scratch database and compare with the live views; exit status 1 on
        any difference

Run replay while the billing service is stopped: the service would otherwise read views
that are being rebuilt (verify is safe at any time).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from tqdm import tqdm

from services.billing.application import BillingApplication


@contextmanager
def progress_bar(app: BillingApplication, what: str) -> Iterator[Callable[[int], None]]:
    total = app.recorder.max_notification_id() or 0
    with tqdm(total=total, desc=what, unit="event", file=sys.stderr) as bar:
        yield bar.update


def parse_instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def replay(app: BillingApplication) -> int:
    with progress_bar(app, "replaying") as update:
        count = app.rebuild_views(update)
    print(f"rebuilt the billing views from {count} events")
    return 0


def balance(app: BillingApplication, company_id: str, at: datetime) -> int:
    balances = app.balance_at(company_id, at)
    print(f"balance of {company_id} as of {at.isoformat()}:")
    for currency in ("CNY", "USD"):
        print(f"  {currency} {balances.get(currency, '0.00')}")
    return 0


def verify(app: BillingApplication) -> int:
    with progress_bar(app, "replaying into a scratch database") as update:
        differences = app.verify_views(update)
    for line in differences:
        print(line)
    if differences:
        print(f"{len(differences)} difference(s) between the live views and a replay")
        return 1
    print("the live views equal a fresh replay")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.billing.cli", description="Billing ledger operations."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("replay", help="drop and rebuild every billing view from the events")
    at = commands.add_parser("balance", help="a balance as of a past instant, from events")
    at.add_argument("company_id")
    at.add_argument(
        "--at",
        type=parse_instant,
        default=None,
        help="ISO 8601 instant, e.g. 2026-03-31T23:59:59Z (default: now)",
    )
    commands.add_parser("verify", help="compare the live views with a fresh replay")
    args = parser.parse_args(argv)

    app = BillingApplication()
    try:
        if args.command == "replay":
            return replay(app)
        if args.command == "balance":
            return balance(app, args.company_id, args.at or datetime.now(UTC))
        return verify(app)
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main())
