"""HTTP routes: billing (C1-C4, F1, F2, S1, S2, statements).

The .xlsx downloads page through the billing service by RPC and write each page into a
write-only workbook (rows go to a temporary file, strings inline), then stream the file:
memory stays bounded however many orders are exported.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import IO, Any

import eventlet
from openpyxl import Workbook
from werkzeug.wrappers import Response

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
    StatementOut,
    ValueAddedOrderIn,
)
from gateway.api import call, endpoint
from services.common.actor import Actor
from services.common.spreadsheets import safe_row

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 64 * 1024

Column = tuple[str, Callable[[dict], Any]]


# -- workbook helpers -------------------------------------------------------------------------
def money(value: str | None) -> Decimal | None:
    return Decimal(value) if value not in (None, "") else None


def when(value: str | None) -> datetime | None:
    """ISO text from the wire to a naive UTC datetime (Excel cells have no time zone)."""
    if not value:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def field(name: str, convert: Callable[[Any], Any] = lambda v: v) -> Callable[[dict], Any]:
    return lambda item: convert(item.get(name))


def write_xlsx(
    out: IO[bytes],
    title: str,
    heading: Iterable[list],
    columns: list[Column],
    pages: Iterable[list[dict]],
) -> int:
    """Write ``heading`` rows, a header row and every item of ``pages``; returns the count.

    A write-only workbook keeps nothing but the current row in memory.
    """
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title)
    for row in heading:
        sheet.append(safe_row(row))
    sheet.append(safe_row([name for name, _ in columns]))
    written = 0
    for page in pages:
        for item in page:
            sheet.append(safe_row([value(item) for _, value in columns]))
        written += len(page)
        eventlet.sleep(0)  # let the gateway's other requests run between pages
    book.save(out)
    return written


def xlsx_response(
    filename: str,
    title: str,
    heading: Iterable[list],
    columns: list[Column],
    pages: Iterable[list[dict]],
) -> Response:
    out = tempfile.TemporaryFile(suffix=".xlsx")
    try:
        write_xlsx(out, title, heading, columns, pages)
        size = out.tell()
        out.seek(0)
    except BaseException:
        out.close()
        raise

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := out.read(CHUNK):
                yield chunk
        finally:
            out.close()

    return Response(
        chunks(),
        mimetype=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(size),
        },
        direct_passthrough=True,
    )


def follow(fetch: Callable[[Any], dict]) -> Iterator[list[dict]]:
    """Pages of a keyset-paged RPC, following ``next`` until the last one."""
    cursor = None
    while True:
        page = fetch(cursor)
        yield page["items"]
        cursor = page.get("next")
        if cursor is None:
            return


ORDER_COLUMNS: list[Column] = [
    ("Order number", field("order_number")),
    ("Type", field("order_type")),
    ("Status", field("status")),
    ("Company", field("company_id")),
    ("Company name", field("company_name")),
    ("Currency", field("currency")),
    ("Total", field("total", money)),
    ("Refunded", field("refunded_total", money)),
    ("Method", field("method")),
    ("Payment reference", field("payment_reference")),
    ("Lines", field("line_count")),
    ("Created by", field("created_by")),
    ("Created at (UTC)", field("created_at", when)),
    ("Paid at (UTC)", field("paid_at", when)),
]

ENTRY_COLUMNS: list[Column] = [
    ("Time (UTC)", field("at", when)),
    ("Currency", field("currency")),
    ("Direction", field("direction")),
    ("Amount", field("amount", money)),
    ("Balance after", field("balance_after", money)),
    ("Reason", field("reason")),
    ("Reference", field("reference")),
]


def statement_heading(statement: dict) -> list[list]:
    rows: list[list] = [
        ["Statement", statement["statement_id"]],
        ["Company", statement["company_id"]],
        ["Billing cycle", statement["cycle"]],
        ["Period start (UTC)", when(statement["period_start"])],
        ["Period end (UTC)", when(statement["period_end"])],
        [],
        ["Currency", "Opening balance", "Credits", "Debits", "Closing balance", "Entries"],
    ]
    for part in statement["balances"]:
        rows.append(
            [
                part["currency"],
                money(part["opening_balance"]),
                money(part["total_credits"]),
                money(part["total_debits"]),
                money(part["closing_balance"]),
                part["entries"],
            ]
        )
    rows.append([])
    return rows


def _no_content() -> Response:
    return Response(status=204)


class BillingRoutes:
    # -- accounts and configs -------------------------------------------------------------
    @endpoint(
        "GET",
        "/accounts/{company_id}",
        "Balances of a company's account, per currency",
        "billing",
        response=AccountOut,
    )
    def get_account(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.billing, "get_account", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/accounts/{company_id}/entries",
        "Every credit and debit of an account, newest first",
        "billing",
        query=EntryFilter,
        response=EntryPage,
    )
    def list_entries(self, request: Any, actor: Actor, company_id: str, query: dict) -> Any:
        return call(self.billing, "list_account_entries", actor.to_rpc(), company_id, query)

    @endpoint(
        "GET",
        "/accounts/{company_id}/config",
        "C4/S2: a company's billing account config",
        "billing",
        response=AccountConfigOut,
    )
    def get_account_config(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.billing, "get_account_config", actor.to_rpc(), company_id)

    @endpoint(
        "PUT",
        "/accounts/{company_id}/config",
        "S2: create or change a billing account config",
        "billing",
        body=AccountConfigIn,
        response=AccountConfigOut,
        roles=("sales", "admin"),
    )
    def set_account_config(self, request: Any, actor: Actor, company_id: str, payload: dict) -> Any:
        return call(self.billing, "set_account_config", actor.to_rpc(), company_id, payload)

    @endpoint(
        "PATCH",
        "/accounts/{company_id}/config",
        "C4: change some settings (customers: cycle, auto-renewal, push settings)",
        "billing",
        body=AccountSettingsIn,
        response=AccountConfigOut,
        roles=("customer", "sales", "admin"),
    )
    def update_account_settings(
        self, request: Any, actor: Actor, company_id: str, payload: dict
    ) -> Any:
        return call(self.billing, "update_account_settings", actor.to_rpc(), company_id, payload)

    @endpoint(
        "DELETE",
        "/accounts/{company_id}/config",
        "S2: delete a billing account config",
        "billing",
        status=204,
        roles=("sales", "admin"),
    )
    def delete_account_config(self, request: Any, actor: Actor, company_id: str) -> Any:
        call(self.billing, "delete_account_config", actor.to_rpc(), company_id)
        return _no_content()

    @endpoint(
        "GET",
        "/account-configs",
        "S2: companies with and without a billing config (children or whole subtree)",
        "billing",
        query=ConfigFilter,
        response=CompanyConfigOut,
        many=True,
        roles=("sales", "finance", "admin"),
    )
    def list_account_configs(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_account_configs", actor.to_rpc(), query)

    # -- offline recharge -----------------------------------------------------------------
    @endpoint(
        "POST",
        "/offline-applications",
        "S1: file an offline recharge (draft, or submit at once)",
        "billing",
        body=OfflineApplicationIn,
        response=OfflineApplicationOut,
        status=201,
        roles=("sales", "admin"),
    )
    def file_application(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "file_offline_application", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/offline-applications",
        "S1/F1: offline recharge applications, filtered by any field",
        "billing",
        query=ApplicationFilter,
        response=OfflineApplicationOut,
        many=True,
        roles=("sales", "finance", "admin"),
    )
    def list_applications(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_offline_applications", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/offline-applications/{application_id}",
        "One application with its history",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "finance", "admin"),
    )
    def get_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return call(self.billing, "get_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "PUT",
        "/offline-applications/{application_id}",
        "S1: edit an application until it is reviewed (submit: true sends it on)",
        "billing",
        body=OfflineApplicationEdit,
        response=OfflineApplicationOut,
        roles=("sales", "admin"),
    )
    def edit_application(
        self, request: Any, actor: Actor, application_id: str, payload: dict
    ) -> Any:
        return call(
            self.billing, "edit_offline_application", actor.to_rpc(), application_id, payload
        )

    @endpoint(
        "DELETE",
        "/offline-applications/{application_id}",
        "S1: delete a draft",
        "billing",
        status=204,
        roles=("sales", "admin"),
    )
    def delete_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        call(self.billing, "delete_offline_application", actor.to_rpc(), application_id)
        return _no_content()

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/submit",
        "S1: submit a draft or returned application for review",
        "billing",
        response=OfflineApplicationOut,
        roles=("sales", "admin"),
    )
    def submit_application(self, request: Any, actor: Actor, application_id: str) -> Any:
        return call(self.billing, "submit_offline_application", actor.to_rpc(), application_id)

    @endpoint(
        "POST",
        "/offline-applications/{application_id}/review",
        "F1: approve (credits the balance), return or reject, with an opinion",
        "billing",
        body=ReviewIn,
        response=OfflineApplicationOut,
        roles=("finance", "admin"),
    )
    def review_application(
        self, request: Any, actor: Actor, application_id: str, payload: dict
    ) -> Any:
        return call(
            self.billing, "review_offline_application", actor.to_rpc(), application_id, payload
        )

    # -- renewal center, orders, recharge -------------------------------------------------
    @endpoint(
        "GET",
        "/renewal-center",
        "C1: devices expired or expiring within the window, with package and price",
        "billing",
        query=RenewalCenterFilter,
        response=RenewalCandidateOut,
        many=True,
    )
    def renewal_center(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "renewal_center", actor.to_rpc(), query)

    @endpoint(
        "POST",
        "/orders",
        "C1: create a renewal order for devices and a month count",
        "billing",
        body=RenewalOrderIn,
        response=OrderOut,
        status=201,
        roles=("customer", "admin"),
        description="Months: 6, 12, 24 or a custom 1-120. Devices without a bound renewal "
        "package are refused (422) with the list. Send an idempotency_key to make a double "
        "submit return the same order.",
    )
    def create_order(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "create_renewal_order", actor.to_rpc(), payload)

    @endpoint(
        "POST",
        "/value-added-orders",
        "T4/C1: create a value-added order for value-added bindings",
        "billing",
        body=ValueAddedOrderIn,
        response=OrderOut,
        status=201,
        roles=("customer", "admin"),
    )
    def create_value_added_order(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "create_value_added_order", actor.to_rpc(), payload)

    @endpoint(
        "POST",
        "/recharges",
        "C3: recharge the balance: creates the recharge and starts the payment",
        "billing",
        body=RechargeIn,
        response=OrderOut,
        status=201,
        roles=("customer", "admin"),
        description="China: wechat_pay or alipay in CNY; other regions: paypal in USD. The "
        "answer's payment holds the QR code (code_url) or approval link (approve_url); the "
        "balance is credited once the provider confirms.",
    )
    def create_recharge(self, request: Any, actor: Actor, payload: dict) -> Any:
        return call(self.billing, "create_recharge", actor.to_rpc(), payload)

    @endpoint(
        "GET",
        "/recharges",
        "C3: recharge records, paid and pending",
        "billing",
        query=OrderFilter,
        response=OrderPage,
    )
    def list_recharges(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(
            self.billing, "list_orders", actor.to_rpc(), {**query, "order_type": "recharge"}
        )

    @endpoint(
        "GET",
        "/orders",
        "C2: orders of your company, filtered and paged",
        "billing",
        query=OrderFilter,
        response=OrderPage,
    )
    def list_orders(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_orders", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/orders/{order_id}",
        "C2: one order with its lines and history",
        "billing",
        response=OrderOut,
    )
    def get_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "get_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/confirm",
        "C1: the second confirmation",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def confirm_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "confirm_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/pay",
        "C1: pay a confirmed order",
        "billing",
        body=PayIn,
        response=OrderOut,
        roles=("customer", "admin"),
        description="balance: paid at once. wechat_pay, alipay, paypal: the answer's payment "
        "holds the QR code or approval link; the order is paid when the provider confirms.",
    )
    def pay_order(self, request: Any, actor: Actor, order_id: str, payload: dict) -> Any:
        return call(self.billing, "pay_order", actor.to_rpc(), order_id, payload)

    @endpoint(
        "POST",
        "/orders/{order_id}/cancel",
        "C2: cancel an unpaid order",
        "billing",
        response=OrderOut,
        roles=("customer", "admin"),
    )
    def cancel_order(self, request: Any, actor: Actor, order_id: str) -> Any:
        return call(self.billing, "cancel_order", actor.to_rpc(), order_id)

    @endpoint(
        "POST",
        "/orders/{order_id}/lines/{line_id}/refund",
        "Refund a paid line that cannot be fulfilled to the balance (once)",
        "billing",
        body=RefundIn,
        response=OrderOut,
        roles=("finance", "admin"),
    )
    def refund_line(
        self, request: Any, actor: Actor, order_id: str, line_id: str, payload: dict
    ) -> Any:
        return call(self.billing, "refund_order_line", actor.to_rpc(), order_id, line_id, payload)

    # -- F2 order management --------------------------------------------------------------
    @endpoint(
        "GET",
        "/order-management",
        "F2: paid orders of your subtree (recharge, renewal, value-added), filtered",
        "billing",
        query=OrderFilter,
        response=OrderPage,
        roles=("finance", "admin"),
        description="Without a status only paid orders are listed.",
    )
    def manage_orders(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "manage_orders", actor.to_rpc(), query)

    @endpoint(
        "GET",
        "/order-management/export",
        "F2: the filtered orders as an Excel workbook (.xlsx)",
        "billing",
        query=ExportFilter,
        roles=("finance", "admin"),
        description="Exactly the orders the same filters list, oldest first.",
    )
    def export_orders(self, request: Any, actor: Actor, query: dict) -> Any:
        who = actor.to_rpc()
        pages = follow(lambda after: call(self.billing, "export_orders", who, query, after))
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return xlsx_response(f"orders-{stamp}.xlsx", "Orders", [], ORDER_COLUMNS, pages)

    # -- statements and auto-renewals -----------------------------------------------------
    @endpoint(
        "GET",
        "/accounts/{company_id}/statements",
        "Statements of an account, one per billing cycle, newest first",
        "billing",
        response=StatementOut,
        many=True,
    )
    def list_statements(self, request: Any, actor: Actor, company_id: str) -> Any:
        return call(self.billing, "list_statements", actor.to_rpc(), company_id)

    @endpoint(
        "GET",
        "/statements/{statement_id}",
        "One statement: opening balance, credits, debits, closing balance per currency",
        "billing",
        response=StatementOut,
    )
    def get_statement(self, request: Any, actor: Actor, statement_id: str) -> Any:
        return call(self.billing, "get_statement", actor.to_rpc(), statement_id)

    @endpoint(
        "GET",
        "/statements/{statement_id}/xlsx",
        "A statement with every entry of its cycle, as an Excel workbook (.xlsx)",
        "billing",
    )
    def download_statement(self, request: Any, actor: Actor, statement_id: str) -> Any:
        who = actor.to_rpc()
        head = call(self.billing, "get_statement", who, statement_id)
        pages = follow(
            lambda after: call(self.billing, "statement_entries", who, statement_id, after or 0)
        )
        name = f"statement-{head['company_id']}-{head['period_start'][:10]}.xlsx"
        return xlsx_response(name, "Statement", statement_heading(head), ENTRY_COLUMNS, pages)

    @endpoint(
        "GET",
        "/auto-renewals",
        "C4: what auto-renewal did when devices expired (renewed or failed)",
        "billing",
        query=AutoRenewalFilter,
        response=AutoRenewalOut,
        many=True,
    )
    def list_auto_renewals(self, request: Any, actor: Actor, query: dict) -> Any:
        return call(self.billing, "list_auto_renewals", actor.to_rpc(), query)
