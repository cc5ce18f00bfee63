"""Payment attempts with external providers (WeChat Pay, Alipay, PayPal).

The provider adapters and the attempt lifecycle arrive with the payments issue; the
service, its store and its relay already run so the platform's shape is complete.
"""
