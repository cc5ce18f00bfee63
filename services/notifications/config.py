"""Notifications configuration from the environment (defaults that run on one machine).

  IOTB_TIMEZONE              time zone of mails when a company has none (Asia/Shanghai)
  IOTB_REMINDER_DAYS         expiry reminders list devices expiring within this many days (7)
  IOTB_DIGEST_DELAY_SECONDS  how long reminders and expiries gather before the day's mail (60)
  IOTB_STATUS_BATCH_SECONDS  suspensions and re-enablings within this window share a mail (60)
  IOTB_MAIL_TICK_SECONDS     how often due digests and retries are looked at (2)
  IOTB_MAIL_BACKOFF          pauses in seconds after each failed attempt (5,30,120,600,1800)
  IOTB_RPC_TIMEOUT           seconds to wait for billing's statement workbook (30)

SMTP settings are read by the Mailer (services/notifications/mailer.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.common.config import env
from services.notifications.domain import BACKOFF_SECONDS

DEFAULT_TIMEZONE = "Asia/Shanghai"
# China Standard Time without a tz database (a slim container may lack /usr/share/zoneinfo)
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")


def zone(name: str | None) -> tzinfo:
    """The named IANA zone; an unknown or missing name falls back to China Standard Time."""
    if not name:
        name = env("IOTB_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return CHINA_STANDARD_TIME


@dataclass(frozen=True)
class NotificationSettings:
    timezone: str = DEFAULT_TIMEZONE
    reminder_days: int = 7
    digest_delay: timedelta = timedelta(seconds=60)
    status_window: timedelta = timedelta(seconds=60)
    tick_seconds: float = 2.0
    rpc_timeout: float = 30.0
    backoff: tuple[int, ...] = BACKOFF_SECONDS

    @classmethod
    def from_env(cls) -> NotificationSettings:
        return cls(
            timezone=env("IOTB_TIMEZONE", DEFAULT_TIMEZONE),
            reminder_days=int(env("IOTB_REMINDER_DAYS", "7")),
            digest_delay=timedelta(seconds=float(env("IOTB_DIGEST_DELAY_SECONDS", "60"))),
            status_window=timedelta(seconds=float(env("IOTB_STATUS_BATCH_SECONDS", "60"))),
            tick_seconds=float(env("IOTB_MAIL_TICK_SECONDS", "2")),
            rpc_timeout=float(env("IOTB_RPC_TIMEOUT", "30")),
            backoff=tuple(
                int(part) for part in env("IOTB_MAIL_BACKOFF", "").split(",") if part.strip()
            )
            or BACKOFF_SECONDS,
        )
