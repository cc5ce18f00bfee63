"""What the three simulators share: a small threaded HTTP server with routes, the
behaviour a test can ask for, and the dispatcher that delivers callbacks with it.

Control endpoints (every simulator, JSON):
  GET  /_sim/health                  {"ok": true}
  GET  /_sim/behaviour               the current behaviour
  POST /_sim/behaviour               set it: {"drop": bool, "duplicate": N, "concurrency": N,
                                     "delay": seconds, "reorder": N, "tamper": "byte" | "key" |
                                     "stale" | "amount" | "currency" | "merchant",
                                     "timeout": seconds, "only": [kinds], "retries": N}
  POST /_sim/reset                   default behaviour, forget deliveries
  POST /_sim/pay/<trade>             the payer scans / approves; body {"outcome": "success" |
                                     "fail" | "decline" | "pending", "wait": bool}
  POST /_sim/flush                   send callbacks held back for reordering
  GET  /_sim/trades/<trade>          the simulator's view of a trade
  GET  /_sim/deliveries              every callback sent: kind, copies, answers
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

log = logging.getLogger(__name__)

TAMPERS = ("byte", "key", "stale", "amount", "currency", "merchant")


@dataclass
class Behaviour:
    drop: bool = False
    duplicate: int = 1
    concurrency: int = 50
    delay: float = 0.0
    reorder: int = 0
    tamper: str | None = None
    timeout: float = 0.0
    only: list[str] = field(default_factory=list)
    retries: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Behaviour:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown behaviour {sorted(unknown)}")
        found = cls(**data)
        if found.tamper is not None and found.tamper not in TAMPERS:
            raise ValueError(f"tamper must be one of {TAMPERS}")
        if found.duplicate < 1 or found.concurrency < 1:
            raise ValueError("duplicate and concurrency must be at least 1")
        return found

    def applies_to(self, kind: str) -> bool:
        return not self.only or kind in self.only


@dataclass
class SimRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: Any  # email.message.Message: case-insensitive get()
    body: bytes
    target: str = ""  # the path and query exactly as sent (what WeChat Pay signs)
    params: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body) if self.body.strip() else {}


@dataclass
class SimResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, data: Any, headers: dict[str, str] | None = None) -> SimResponse:
        body = json.dumps(data, ensure_ascii=False).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def html(cls, text: str) -> SimResponse:
        return cls(200, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


Handler = Callable[[SimRequest], SimResponse]


@dataclass
class Delivery:
    kind: str
    trade: str
    url: str
    copies: int
    tamper: str | None
    dropped: bool = False
    held: bool = False
    statuses: list[int] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    done: bool = False

    @property
    def acknowledged(self) -> int:
        return sum(1 for s in self.statuses if s == 200)


class Dispatcher:
    """Sends callbacks as the behaviour says: dropped, duplicated (concurrently), delayed,
    held back and reordered, tampered with, retried."""

    def __init__(self, acknowledged: Callable[[int, bytes], bool]) -> None:
        self.acknowledged = acknowledged
        self.deliveries: list[Delivery] = []
        self._held: list[tuple[Delivery, dict[str, str], bytes, Behaviour]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._local = threading.local()

    def submit(
        self,
        kind: str,
        trade: str,
        url: str,
        build: Callable[[str | None], tuple[dict[str, str], bytes]],
        behaviour: Behaviour,
    ) -> Delivery:
        """``build(tamper)`` makes the signed request (tampering before signing where the
        tamper means "the provider reports something else")."""
        active = behaviour if behaviour.applies_to(kind) else Behaviour()
        headers, body = build(active.tamper if active.tamper != "byte" else None)
        if active.tamper == "byte":
            middle = len(body) // 2
            body = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
        delivery = Delivery(kind, trade, url, active.duplicate, active.tamper)
        with self._lock:
            self.deliveries.append(delivery)
            if active.drop:
                delivery.dropped = delivery.done = True
                return delivery
            if active.reorder > 1:
                delivery.held = True
                self._held.append((delivery, headers, body, active))
                if len(self._held) < active.reorder:
                    return delivery
                batch, self._held = list(reversed(self._held)), []
            else:
                batch = [(delivery, headers, body, active)]
        self._start(batch)
        return delivery

    def flush(self) -> int:
        with self._lock:
            batch, self._held = list(reversed(self._held)), []
        self._start(batch)
        return len(batch)

    def _start(self, batch: list[tuple[Delivery, dict[str, str], bytes, Behaviour]]) -> None:
        def run() -> None:
            for delivery, headers, body, active in batch:
                delivery.held = False
                if active.delay:
                    time.sleep(active.delay)
                self._send(delivery, headers, body, active)

        thread = threading.Thread(target=run, daemon=True, name="sim-callback")
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _post(self, delivery: Delivery, headers: dict[str, str], body: bytes, retries: int) -> None:
        for _ in range(retries + 1):
            try:
                answer = self._session().post(delivery.url, data=body, headers=headers, timeout=30)
                status, text = answer.status_code, answer.content
            except requests.RequestException as exc:
                status, text = 0, type(exc).__name__.encode()
            with self._lock:
                delivery.statuses.append(
                    status if self.acknowledged(status, text) else -abs(status or 1)
                )
                delivery.answers.append(text.decode("utf-8", errors="replace")[:200])
            if self.acknowledged(status, text):
                return

    def _send(
        self, delivery: Delivery, headers: dict[str, str], body: bytes, active: Behaviour
    ) -> None:
        copies = active.duplicate
        if copies == 1:
            self._post(delivery, headers, body, active.retries)
        else:
            with ThreadPoolExecutor(min(copies, active.concurrency)) as pool:
                for _ in range(copies):
                    pool.submit(self._post, delivery, headers, body, active.retries)
        delivery.done = True

    def wait(self, timeout: float = 120.0) -> bool:
        """Wait for every started delivery to finish (held ones excepted)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return all(not t.is_alive() for t in threads)

    def reset(self) -> None:
        self.wait(30)
        with self._lock:
            self.deliveries.clear()
            self._held.clear()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # quiet: requests may carry keys and signatures

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = SimRequest(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers=self.headers,
            body=body,
            target=self.path,
        )
        try:
            response = self.server.simulator.dispatch(request)
        except Exception as exc:  # noqa: BLE001 - a simulator bug answers 500, not a hang
            log.exception("simulator error")
            response = SimResponse.json(500, {"name": "INTERNAL_SERVER_ERROR", "message": str(exc)})
        try:
            self.send_response(response.status)
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (a "timeout" behaviour): nothing to answer

    do_GET = do_POST = do_PUT = do_DELETE = _serve  # noqa: N815


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256
    simulator: Simulator


class Simulator:
    """A provider's simulator: protocol routes plus the control routes above."""

    name = "simulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.simulator = self
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.behaviour = Behaviour()
        self.dispatcher = Dispatcher(self.acknowledged)
        self.lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler, bool]] = []
        self._thread: threading.Thread | None = None
        self.route(
            "GET", r"/_sim/health", lambda r: SimResponse.json(200, {"ok": True}), control=True
        )
        self.route(
            "GET",
            r"/_sim/behaviour",
            lambda r: SimResponse.json(200, asdict(self.behaviour)),
            control=True,
        )
        self.route("POST", r"/_sim/behaviour", self._set_behaviour, control=True)
        self.route("POST", r"/_sim/reset", self._reset, control=True)
        self.route("POST", r"/_sim/flush", self._flush, control=True)
        self.route("POST", r"/_sim/pay/(?P<trade>[^/]+)", self._pay, control=True)
        self.route("GET", r"/_sim/trades/(?P<trade>[^/]+)", self._trade, control=True)
        self.route("GET", r"/_sim/deliveries", self._deliveries, control=True)

    # -- serving ------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler, control: bool = False) -> None:
        self._routes.append((method, re.compile(pattern + "$"), handler, control))

    def dispatch(self, request: SimRequest) -> SimResponse:
        for method, pattern, handler, control in self._routes:
            found = pattern.match(request.path)
            if found and method == request.method:
                if not control and self.behaviour.timeout:
                    time.sleep(self.behaviour.timeout)  # the client gives up first
                request.params = found.groupdict()
                return handler(request)
        return SimResponse.json(404, {"name": "RESOURCE_NOT_FOUND", "message": request.path})

    def start(self) -> Simulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, daemon=True, name=self.name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- behaviour and callbacks ----------------------------------------------------------
    def acknowledged(self, status: int, body: bytes) -> bool:
        """Whether the merchant's answer tells this provider the callback was received."""
        return status == 200

    def deliver(
        self,
        kind: str,
        trade: str,
        url: str,
        build: Callable[[str | None], tuple[dict[str, str], bytes]],
    ) -> Delivery:
        return self.dispatcher.submit(kind, trade, url, build, self.behaviour)

    def _set_behaviour(self, request: SimRequest) -> SimResponse:
        try:
            self.behaviour = Behaviour.from_json(request.json())
        except (ValueError, TypeError) as exc:
            return SimResponse.json(400, {"error": str(exc)})
        return SimResponse.json(200, asdict(self.behaviour))

    def _reset(self, request: SimRequest) -> SimResponse:
        self.behaviour = Behaviour()
        self.dispatcher.reset()
        return SimResponse.json(200, {"ok": True})

    def _flush(self, request: SimRequest) -> SimResponse:
        sent = self.dispatcher.flush()
        return SimResponse.json(200, {"released": sent})

    def _deliveries(self, request: SimRequest) -> SimResponse:
        with self.dispatcher._lock:
            items = [
                {**asdict(d), "acknowledged": d.acknowledged} for d in self.dispatcher.deliveries
            ]
        return SimResponse.json(200, items)

    def _pay(self, request: SimRequest) -> SimResponse:
        try:
            options = request.json() if request.body else dict(request.query)
        except ValueError:
            options = dict(parse_qsl(request.body.decode(errors="replace")))
        outcome = str(options.get("outcome") or "success")
        found = self.pay(request.params["trade"], outcome)
        if found is None:
            return SimResponse.json(404, {"error": "no such trade"})
        if str(options.get("wait", "")).lower() in ("1", "true"):
            self.dispatcher.wait()
        if "text/html" in (request.headers.get("Accept") or ""):
            return SimResponse.html(f"<p>Payment {outcome}: {request.params['trade']}</p>")
        return SimResponse.json(200, found)

    def _trade(self, request: SimRequest) -> SimResponse:
        found = self.trade(request.params["trade"])
        if found is None:
            return SimResponse.json(404, {"error": "no such trade"})
        return SimResponse.json(200, found)

    # -- what each simulator provides -----------------------------------------------------
    def pay(self, trade: str, outcome: str) -> dict | None:
        raise NotImplementedError

    def trade(self, trade: str) -> dict | None:
        raise NotImplementedError


def pay_page(title: str, action: str, amount: str, currency: str) -> str:
    """The payer's page: one button that pays (the simulator then calls back)."""
    return (
        f"<!doctype html><meta charset='utf-8'><title>{title}</title>"
        f"<h1>{title}</h1><p>Amount: {amount} {currency}</p>"
        f"<form method='post' action='{action}'><input type='hidden' name='outcome' value='success'>"
        "<button>Pay</button></form>"
    )
