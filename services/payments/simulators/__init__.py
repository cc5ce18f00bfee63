"""Local simulators of WeChat Pay, Alipay and PayPal, speaking the protocol subset the
payments service uses, with real keys generated locally (see keys.py). A payer can scan or
approve (``POST /_sim/pay/<trade>``) and the simulator calls back with correctly signed
(and, for WeChat Pay, encrypted) notifications; ``POST /_sim/behaviour`` makes it drop,
duplicate, delay, reorder or tamper with callbacks, or time out (see base.py).

Run all three: ``python -m services.payments.simulators`` (``--help`` for options).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.payments.simulators.alipay import AlipaySimulator
from services.payments.simulators.keys import SimKeys, ensure_keys, service_env
from services.payments.simulators.paypal import PaypalSimulator
from services.payments.simulators.wechat import WechatSimulator

__all__ = ["AlipaySimulator", "PaypalSimulator", "Simulators", "WechatSimulator", "start_all"]


@dataclass
class Simulators:
    keys: SimKeys
    wechat: WechatSimulator
    alipay: AlipaySimulator
    paypal: PaypalSimulator
    callback_base: str

    @property
    def urls(self) -> dict[str, str]:
        return {"wechat_pay": self.wechat.url, "alipay": self.alipay.url, "paypal": self.paypal.url}

    @property
    def env(self) -> dict[str, str]:
        """The payments service configuration that talks to these simulators."""
        return service_env(
            self.keys, self.wechat.url, self.alipay.url, self.paypal.url, self.callback_base
        )

    def by_method(self, method: str) -> WechatSimulator | AlipaySimulator | PaypalSimulator:
        return {"wechat_pay": self.wechat, "alipay": self.alipay, "paypal": self.paypal}[method]

    def stop(self) -> None:
        for simulator in (self.wechat, self.alipay, self.paypal):
            simulator.stop()


def start_all(
    keys_dir: str | Path,
    callback_base: str,
    host: str = "127.0.0.1",
    ports: tuple[int, int, int] = (0, 0, 0),
) -> Simulators:
    """Start the three simulators in this process (threads); port 0 picks a free port.
    Callbacks go to ``<callback_base>/payments/callbacks/{wechat,alipay,paypal}``."""
    keys = ensure_keys(keys_dir)
    base = callback_base.rstrip("/")
    return Simulators(
        keys=keys,
        wechat=WechatSimulator(keys, host, ports[0]).start(),
        alipay=AlipaySimulator(keys, host, ports[1]).start(),
        paypal=PaypalSimulator(keys, f"{base}/payments/callbacks/paypal", host, ports[2]).start(),
        callback_base=base,
    )
