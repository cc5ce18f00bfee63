"""A real SMTP server for tests (aiosmtpd): every message received is written to a folder
as <n>.eml. Runs as its own process so asyncio never meets eventlet.

    python -m tests.support.smtp_sink --port 2525 --dir /tmp/mails [--fail-first N]

``--fail-first N`` answers the first N messages with a temporary failure (451), to test
retries.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder: Path, fail_first: int) -> None:
        self.folder = folder
        self.fail_left = fail_first
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 try again later"
        n = next(self.counter)
        tmp = self.folder / f"{n}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.folder / f"{n}.eml")  # appears whole or not at all
        return "250 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    controller = Controller(Sink(args.dir, args.fail_first), hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    (args.dir / "ready").write_text("ok")
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
