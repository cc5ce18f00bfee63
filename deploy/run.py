"""``make run``: prepare the stores, start every process of deploy/Procfile with honcho,
wait for the gateway's /health, load the demo data once and say where to go.
Ctrl-C stops everything."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.common.config import amqp_uri, data_dir  # noqa: E402

GATEWAY = "http://" + os.environ.get("IOTB_GATEWAY_ADDRESS", "127.0.0.1:8000")


def rabbitmq_reachable() -> bool:
    url = urlparse(amqp_uri())
    try:
        with socket.create_connection((url.hostname or "127.0.0.1", url.port or 5672), timeout=3):
            return True
    except OSError:
        return False


def wait_healthy(deadline: float) -> dict | None:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(GATEWAY + "/health", timeout=5) as answer:
                body = json.loads(answer.read())
                if body.get("status") == "ok":
                    return body
        except OSError:
            pass
        time.sleep(1)
    return None


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # a shell that starts us in the background ignores SIGINT; Ctrl-C and kill must stop us
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    if not rabbitmq_reachable():
        print(
            f"RabbitMQ is not reachable at {urlparse(amqp_uri()).netloc}: start it "
            "(Debian/Ubuntu: sudo apt-get install rabbitmq-server && sudo service "
            "rabbitmq-server start) or set AMQP_URI.",
            file=sys.stderr,
        )
        return 1
    env = dict(os.environ)
    var = data_dir()
    env.setdefault("IOTB_DATA_DIR", str(var))
    env.setdefault("IOTB_CLOCK_FILE", str(var / "clock.json"))
    env.setdefault("IOTB_CLOCK_CONTROL", "1")
    env.setdefault("IOTB_EXPIRY_SCAN_SECONDS", "2")
    # eventlet announces its deprecation on import; we know (see README), keep logs readable
    env.setdefault("EVENTLET_TESTS", "1")
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    os.environ.update({k: env[k] for k in ("IOTB_DATA_DIR", "IOTB_CLOCK_FILE")})

    subprocess.run([sys.executable, "-m", "services.common.prepare"], check=True, env=env, cwd=ROOT)
    honcho = subprocess.Popen(
        [sys.executable, "-m", "honcho", "start", "-f", "deploy/Procfile", "-d", str(ROOT)],
        env=env,
        cwd=ROOT,
    )
    try:
        health = wait_healthy(time.monotonic() + 90)
        if health is None:
            print(
                "the platform did not become healthy within 90 s; see the log above",
                file=sys.stderr,
            )
            honcho.terminate()
            honcho.wait(30)
            return 1
        from deploy_demo import load  # noqa: PLC0415 - loaded late, once the services run

        demo = load(var / "demo.json")
        print(banner(demo), flush=True)
        return honcho.wait()
    except KeyboardInterrupt:
        honcho.terminate()  # honcho stops every process of the Procfile
        try:
            honcho.wait(30)
        except subprocess.TimeoutExpired:
            honcho.kill()
        return 0


def banner(demo: dict) -> str:
    from deploy_demo import LOGINS, PASSWORD  # noqa: PLC0415

    lines = [
        "",
        "=" * 72,
        f" IoT fleet billing is running: {GATEWAY}",
        f"   health:  {GATEWAY}/health        API document: {GATEWAY}/openapi.json",
        f"   mails are written to {data_dir() / 'mail'}",
        "   payment simulators: WeChat Pay :8101, Alipay :8102, PayPal :8103 (see README)",
        "",
        f" Demo logins (password for all: {PASSWORD}):",
    ]
    lines += [f"   {u:<14} {r:<9} {d}" for u, r, _, d in LOGINS]
    lines += [
        "",
        f"   try: curl -s -X POST {GATEWAY}/auth/login -H 'Content-Type: application/json' \\",
        f'          -d \'{{"username": "customer", "password": "{PASSWORD}"}}\'',
        f"   demo ids (companies, packages, devices): {data_dir() / 'demo.json'}",
        " Ctrl-C stops everything.",
        "=" * 72,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "deploy"))
    import demo as deploy_demo  # noqa: E402

    sys.modules["deploy_demo"] = deploy_demo
    sys.exit(main())
