"""Starting and stopping platform processes from tests, and waiting with deadlines."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(
    condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: Any = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
            last_error = exc
        time.sleep(interval)
    described = what() if callable(what) else (what or condition)
    raise AssertionError(f"timed out after {timeout}s waiting for {described}: {last_error!r}")


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=self._file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (what a crash looks like)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._file.close()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def nameko_config(
    path: Path, amqp_uri: str, web_address: str = "127.0.0.1:0", max_workers: int = 10
) -> Path:
    path.write_text(
        f"AMQP_URI: '{amqp_uri}'\n"
        f"WEB_SERVER_ADDRESS: '{web_address}'\n"
        f"max_workers: {max_workers}\n"
        "serializer: json\n"
    )
    return path


def nameko_run(name: str, target: str, config: Path, env: dict[str, str], log_dir: Path) -> Process:
    return Process(
        name, [str(BIN / "nameko"), "run", "--config", str(config), target], env, log_dir
    )


def relay_run(
    service: str, env: dict[str, str], log_dir: Path, module: str | None = None
) -> Process:
    args = [sys.executable, "-m", "services.common.relay", service]
    if module:
        args += ["--module", module]
    return Process(f"{service}-relay", args, env, log_dir)
