"""Billing service entrypoints: parse, call the application, dump. No rules here."""

from __future__ import annotations

from typing import Any

from nameko.rpc import RpcProxy, rpc
from nameko.timer import timer

from contracts.envelope import Envelope
from contracts.rpc import load
from contracts.rpc.billing import (
    AccountConfigIn,
    AccountConfigOut,
    AccountOut,
    AccountSettingsIn,
    ApplicationFilter,
    AutoRenewalFilter,
    AutoRenewalOut,
    CompanyConfigOut,
    ConfigFilter,
    EntryFilter,
    EntryPage,
    ExportFilter,
    ExportPage,
    OfflineApplicationEdit,
    OfflineApplicationIn,
    OfflineApplicationOut,
    OrderFilter,
    OrderOut,
    OrderPage,
    PayIn,
    RechargeIn,
    RefundIn,
    RenewalCandidateOut,
    RenewalCenterFilter,
    RenewalOrderIn,
    ReviewIn,
    StatementEntriesOut,
    StatementOut,
    ValueAddedOrderIn,
)
from services.billing.application import BillingApplication
from services.common.actor import Actor
from services.common.config import env
from services.common.consumer import subscribe
from services.common.dependencies import Store
from services.common.domain import event_meta

LAPSE_SCAN_SECONDS = float(env("IOTB_LAPSE_SCAN_SECONDS", "30"))
STATEMENT_SCAN_SECONDS = float(env("IOTB_STATEMENT_SCAN_SECONDS", "300"))


def _order_out(result: dict) -> dict:
    # the payment attempt comes from the payments service already dumped: pass it through
    payment = result.pop("payment", None)
    return {**OrderOut().dump(result), "payment": payment}


def _caused_by(envelope: Envelope, source: str) -> Any:
    return event_meta(
        actor=source,
        causation_id=envelope.id,
        correlation_id=envelope.correlation_id or envelope.id,
    )


class BillingService:
    name = "billing"
    app: BillingApplication = Store(BillingApplication)
    devices = RpcProxy("devices")
    catalog = RpcProxy("catalog")
    payments = RpcProxy("payments")

    @rpc
    def health(self) -> dict:
        return {"service": self.name, "ok": True}

    # accounts and configs
    @rpc
    def get_account(self, actor: dict, company_id: str) -> dict:
        return AccountOut().dump(self.app.account(Actor.from_rpc(actor), company_id))

    @rpc
    def list_account_entries(
        self, actor: dict, company_id: str, filters: dict | None = None
    ) -> dict:
        data = load(EntryFilter(), filters or {})
        return EntryPage().dump(self.app.account_entries(Actor.from_rpc(actor), company_id, data))

    @rpc
    def set_account_config(self, actor: dict, company_id: str, payload: dict) -> dict:
        data = load(AccountConfigIn(), payload)
        return AccountConfigOut().dump(
            self.app.set_account_config(Actor.from_rpc(actor), company_id, data)
        )

    @rpc
    def update_account_settings(self, actor: dict, company_id: str, payload: dict) -> dict:
        data = load(AccountSettingsIn(), payload)
        return AccountConfigOut().dump(
            self.app.update_account_settings(Actor.from_rpc(actor), company_id, data)
        )

    @rpc
    def delete_account_config(self, actor: dict, company_id: str) -> None:
        self.app.delete_account_config(Actor.from_rpc(actor), company_id)

    @rpc
    def get_account_config(self, actor: dict, company_id: str) -> dict:
        return AccountConfigOut().dump(self.app.account_config(Actor.from_rpc(actor), company_id))

    @rpc
    def list_account_configs(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(ConfigFilter(), filters or {})
        return CompanyConfigOut(many=True).dump(
            self.app.list_account_configs(Actor.from_rpc(actor), data)
        )

    # offline recharge
    @rpc
    def file_offline_application(self, actor: dict, payload: dict) -> dict:
        data = load(OfflineApplicationIn(), payload)
        return OfflineApplicationOut().dump(
            self.app.file_offline_application(Actor.from_rpc(actor), data)
        )

    @rpc
    def edit_offline_application(self, actor: dict, application_id: str, payload: dict) -> dict:
        data = load(OfflineApplicationEdit(), payload)
        return OfflineApplicationOut().dump(
            self.app.edit_offline_application(Actor.from_rpc(actor), application_id, data)
        )

    @rpc
    def delete_offline_application(self, actor: dict, application_id: str) -> None:
        self.app.delete_offline_application(Actor.from_rpc(actor), application_id)

    @rpc
    def submit_offline_application(self, actor: dict, application_id: str) -> dict:
        return OfflineApplicationOut().dump(
            self.app.submit_offline_application(Actor.from_rpc(actor), application_id)
        )

    @rpc
    def review_offline_application(self, actor: dict, application_id: str, payload: dict) -> dict:
        data = load(ReviewIn(), payload)
        return OfflineApplicationOut().dump(
            self.app.review_offline_application(Actor.from_rpc(actor), application_id, data)
        )

    @rpc
    def get_offline_application(self, actor: dict, application_id: str) -> dict:
        return OfflineApplicationOut().dump(
            self.app.offline_application(Actor.from_rpc(actor), application_id)
        )

    @rpc
    def list_offline_applications(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(ApplicationFilter(), filters or {})
        return OfflineApplicationOut(many=True, exclude=("history",)).dump(
            self.app.list_offline_applications(Actor.from_rpc(actor), data)
        )

    # renewal center, orders, recharge
    @rpc
    def renewal_center(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(RenewalCenterFilter(), filters or {})
        return RenewalCandidateOut(many=True).dump(
            self.app.renewal_center(
                Actor.from_rpc(actor), data["within_days"], self.devices, self.catalog
            )
        )

    @rpc
    def create_renewal_order(self, actor: dict, payload: dict) -> dict:
        data = load(RenewalOrderIn(), payload)
        return _order_out(
            self.app.create_renewal_order(Actor.from_rpc(actor), data, self.devices, self.catalog)
        )

    @rpc
    def create_value_added_order(self, actor: dict, payload: dict) -> dict:
        data = load(ValueAddedOrderIn(), payload)
        return _order_out(
            self.app.create_value_added_order(
                Actor.from_rpc(actor), data, self.devices, self.catalog
            )
        )

    @rpc
    def create_recharge(self, actor: dict, payload: dict) -> dict:
        data = load(RechargeIn(), payload)
        return _order_out(self.app.create_recharge(Actor.from_rpc(actor), data, self.payments))

    @rpc
    def confirm_order(self, actor: dict, order_id: str) -> dict:
        return _order_out(self.app.confirm_order(Actor.from_rpc(actor), order_id))

    @rpc
    def cancel_order(self, actor: dict, order_id: str) -> dict:
        return _order_out(self.app.cancel_order(Actor.from_rpc(actor), order_id))

    @rpc
    def pay_order(self, actor: dict, order_id: str, payload: dict) -> dict:
        data = load(PayIn(), payload)
        return _order_out(
            self.app.pay_order(Actor.from_rpc(actor), order_id, data["method"], self.payments)
        )

    @rpc
    def refund_order_line(self, actor: dict, order_id: str, line_id: str, payload: dict) -> dict:
        data = load(RefundIn(), payload)
        return _order_out(
            self.app.refund_line(Actor.from_rpc(actor), order_id, line_id, data["reason"])
        )

    @rpc
    def get_order(self, actor: dict, order_id: str) -> dict:
        return _order_out(self.app.order(Actor.from_rpc(actor), order_id))

    @rpc
    def list_orders(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(OrderFilter(), filters or {})
        return OrderPage().dump(self.app.list_orders(Actor.from_rpc(actor), data))

    @rpc
    def manage_orders(self, actor: dict, filters: dict | None = None) -> dict:
        data = load(OrderFilter(), filters or {})
        return OrderPage().dump(self.app.manage_orders(Actor.from_rpc(actor), data))

    @rpc
    def export_orders(
        self, actor: dict, filters: dict | None = None, after: list | None = None
    ) -> dict:
        data = load(ExportFilter(), filters or {})
        return ExportPage().dump(self.app.export_orders(Actor.from_rpc(actor), data, after))

    # statements and auto-renewals
    @rpc
    def list_statements(self, actor: dict, company_id: str) -> list[dict]:
        return StatementOut(many=True).dump(self.app.statements(Actor.from_rpc(actor), company_id))

    @rpc
    def get_statement(self, actor: dict, statement_id: str) -> dict:
        return StatementOut().dump(self.app.statement(Actor.from_rpc(actor), statement_id))

    @rpc
    def statement_entries(self, actor: dict, statement_id: str, after: int = 0) -> dict:
        return StatementEntriesOut().dump(
            self.app.statement_entries(Actor.from_rpc(actor), statement_id, int(after or 0))
        )

    @rpc
    def list_auto_renewals(self, actor: dict, filters: dict | None = None) -> list[dict]:
        data = load(AutoRenewalFilter(), filters or {})
        return AutoRenewalOut(many=True).dump(self.app.auto_renewals(Actor.from_rpc(actor), data))

    # reactions
    @subscribe("devices", "company_registered")
    def on_company_registered(self, envelope: Envelope) -> None:
        self.app.record_company(envelope.sequence, envelope.data)

    @subscribe("payments", "payment_succeeded")
    def on_payment_succeeded(self, envelope: Envelope) -> None:
        with _caused_by(envelope, "payments"):
            self.app.on_payment_succeeded(envelope.data)

    @subscribe("payments", "payment_failed")
    def on_payment_failed(self, envelope: Envelope) -> None:
        with _caused_by(envelope, "payments"):
            self.app.on_payment_failed(envelope.data)

    @subscribe("devices", "renewal_applied")
    def on_renewal_applied(self, envelope: Envelope) -> None:
        with _caused_by(envelope, "devices"):
            self.app.on_renewal_applied(envelope.id, envelope.data)

    @subscribe("devices", "device_expired")
    def on_device_expired(self, envelope: Envelope) -> None:
        with _caused_by(envelope, "devices"):
            self.app.on_device_expired(envelope.data, self.catalog)

    # the clock
    @timer(interval=2)
    def catch_up(self) -> None:
        self.app.catch_up()  # views of events written by another replica

    @timer(interval=LAPSE_SCAN_SECONDS)
    def lapse_due(self) -> None:
        self.app.lapse_due()

    @timer(interval=STATEMENT_SCAN_SECONDS)
    def issue_statements(self) -> None:
        self.app.issue_due_statements()
