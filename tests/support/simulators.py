"""Test support for payments: the three provider simulators on free ports, and a small
callback server that stands in for the gateway's public callback endpoints.

    sims = start_simulators(tmp_path / "keys", callback_base="http://127.0.0.1:8000")
    sims.urls   # {"wechat_pay": "http://127.0.0.1:41234", "alipay": ..., "paypal": ...}
    sims.env    # IOTB_WECHAT_* / IOTB_ALIPAY_* / IOTB_PAYPAL_* for the payments service
    sims.stop()

End-to-end tests point ``callback_base`` at the gateway and give ``sims.env`` to the
payments service process. Tests without a gateway use ``CallbackServer``, which hands each
callback to ``PaymentsApplication.handle_callback`` exactly as the gateway's route does
(raw body and headers in, the provider's answer out).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from services.payments.simulators import Simulators, start_all

CALLBACK_PATHS = {
    "/payments/callbacks/wechat": "wechat_pay",
    "/payments/callbacks/alipay": "alipay",
    "/payments/callbacks/paypal": "paypal",
}

__all__ = [
    "CallbackServer",
    "Simulators",
    "poll",
    "set_behaviour",
    "sim_keys_dir",
    "start_simulators",
]


def start_simulators(
    keys_dir: str | Path, callback_base: str, host: str = "127.0.0.1"
) -> Simulators:
    """Start WeChat Pay, Alipay and PayPal simulators on free ports (keys are generated in
    ``keys_dir`` the first time). ``.urls`` are their base URLs, ``.env`` the matching
    payments configuration; ``.stop()`` when done."""
    return start_all(keys_dir, callback_base, host)


class _CallbackHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: CallbackServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        method = CALLBACK_PATHS.get(self.path.split("?")[0])
        target = self.server.target
        if method is None or target is None:
            status, content_type, text = 404, "text/plain", "no such callback"
        else:
            answer = target(method, dict(self.headers.items()), body)
            status, content_type, text = answer.status, answer.content_type, answer.body
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class CallbackServer(ThreadingHTTPServer):
    """Receives provider callbacks on 127.0.0.1 and passes them to ``target`` (usually
    ``app.handle_callback``); set ``target`` once the application exists."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256

    def __init__(self, target: Callable[[str, dict, bytes], Any] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _CallbackHandler)
        self.target = target
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        threading.Thread(target=self.serve_forever, daemon=True, name="callbacks").start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def poll(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)


def set_behaviour(sims_url: str, **behaviour: Any) -> None:
    answer = requests.post(f"{sims_url}/_sim/behaviour", json=behaviour, timeout=10)
    answer.raise_for_status()


@pytest.fixture(scope="session")
def sim_keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keys for the simulators, generated once per test run."""
    return tmp_path_factory.mktemp("sim-keys")


@pytest.fixture
def callback_server() -> Iterator[CallbackServer]:
    server = CallbackServer()
    yield server
    server.stop()


@pytest.fixture
def simulators(sim_keys_dir: Path, callback_server: CallbackServer) -> Iterator[Simulators]:
    """Simulators calling back to ``callback_server``."""
    sims = start_simulators(sim_keys_dir, callback_server.url)
    yield sims
    sims.stop()
