"""Payments: money in flight with WeChat Pay, Alipay and PayPal (billing owns balances).

domain.py      payment attempts (exactly one success each) and provider-id mappings
application.py start, settle from callbacks and queries, close, reconcile; read views
providers/     one adapter per provider, written against its HTTP protocol
simulators/    local simulators of the three providers (``python -m services.payments.simulators``)
config.py      IOTB_WECHAT_* / IOTB_ALIPAY_* / IOTB_PAYPAL_* / IOTB_PAYMENTS_*
"""
