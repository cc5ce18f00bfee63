"""``python -m services.payments.simulators``: serve the three simulators until stopped.

Generates keys on first run, and writes the matching payments configuration to
``<keys-dir>/payments.env``, which the payments service reads when its own environment
names no provider (see services/payments/config.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from pathlib import Path

from services.common.config import data_dir
from services.payments.simulators import start_all
from services.payments.simulators.keys import write_env_file


def main(argv: list[str] | None = None) -> None:
    gateway = os.environ.get("IOTB_GATEWAY_ADDRESS", "127.0.0.1:8000")
    parser = argparse.ArgumentParser(
        description="Run the WeChat Pay, Alipay and PayPal simulators."
    )
    parser.add_argument("--keys-dir", default=str(data_dir() / "sim-keys"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--wechat-port", type=int, default=int(os.environ.get("IOTB_SIM_WECHAT_PORT", "8101"))
    )
    parser.add_argument(
        "--alipay-port", type=int, default=int(os.environ.get("IOTB_SIM_ALIPAY_PORT", "8102"))
    )
    parser.add_argument(
        "--paypal-port", type=int, default=int(os.environ.get("IOTB_SIM_PAYPAL_PORT", "8103"))
    )
    parser.add_argument(
        "--callback-base", default=f"http://{gateway}", help="where callbacks go (the gateway)"
    )
    parser.add_argument("--env-file", default=None, help="default: <keys-dir>/payments.env")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s simulators %(levelname)s %(message)s"
    )

    sims = start_all(
        args.keys_dir,
        args.callback_base,
        args.host,
        (args.wechat_port, args.alipay_port, args.paypal_port),
    )
    env_file = write_env_file(args.env_file or Path(args.keys_dir) / "payments.env", sims.env)
    for method, url in sims.urls.items():
        logging.info("%s simulator on %s", method, url)
    logging.info(
        "payments configuration written to %s; callbacks go to %s", env_file, sims.callback_base
    )

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    stopping.wait()
    sims.stop()


if __name__ == "__main__":
    main()
