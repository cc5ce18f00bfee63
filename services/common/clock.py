"""The service clock: UTC, and injectable.

Production reads the system clock. For the demo and the end-to-end tests the clock can be
shifted by a JSON file named by IOTB_CLOCK_FILE, e.g. {"offset_seconds": 86400}; every
process of the platform reads the same file, so "time passes" for all services at once.
Unit tests pass a FixedClock instead.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path


def utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class Clock:
    def now(self) -> datetime:
        raise NotImplementedError


class SystemClock(Clock):
    """System time plus the offset in IOTB_CLOCK_FILE (re-read when the file changes)."""

    def __init__(self, clock_file: str | None = None) -> None:
        self._file = clock_file if clock_file is not None else os.environ.get("IOTB_CLOCK_FILE")
        self._mtime: float | None = None
        self._offset = timedelta(0)

    def _read_offset(self) -> timedelta:
        if not self._file:
            return timedelta(0)
        try:
            mtime = os.stat(self._file).st_mtime_ns
        except FileNotFoundError:
            return timedelta(0)
        if mtime != self._mtime:
            try:
                data = json.loads(Path(self._file).read_text() or "{}")
                self._offset = timedelta(seconds=float(data.get("offset_seconds", 0)))
                self._mtime = mtime
            except (ValueError, OSError):
                pass  # a half-written file: keep the last good offset
        return self._offset

    def now(self) -> datetime:
        return datetime.now(UTC) + self._read_offset()

    def set_offset(self, seconds: float) -> None:
        if not self._file:
            raise RuntimeError("IOTB_CLOCK_FILE is not set: the clock cannot be shifted")
        tmp = Path(self._file).with_suffix(".tmp")
        tmp.write_text(json.dumps({"offset_seconds": seconds}))
        os.replace(tmp, self._file)


class FixedClock(Clock):
    def __init__(self, now: datetime) -> None:
        self._now = utc(now)

    def now(self) -> datetime:
        return self._now

    def advance(self, **kwargs: float) -> None:
        self._now += timedelta(**kwargs)


clock: Clock = SystemClock()


def now() -> datetime:
    return clock.now()
