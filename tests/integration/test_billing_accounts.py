"""S1/F1 offline recharge, C4/S2 account configs, auto-renewal, statements and the
operations (replay, balance as of, verify) against the real PostgreSQL store."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from services.billing.application import BillingApplication
from services.billing.domain import Account, account_id
from services.billing.projections import applications, balances, metadata
from services.billing.relay import to_wire
from services.common.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tests.conftest import new_pg_store
from tests.integration.test_billing_support import (
    FakeCatalog,
    FakeDevices,
    Tree,
    frozen,
    ledger_is_consistent,
    make_tree,
)

pytestmark = pytest.mark.integration
D = Decimal
SETTINGS = {
    "region": "china",
    "default_currency": "CNY",
    "billing_cycle": "monthly",
    "auto_renewal": False,
    "push_enabled": True,
    "language": "zh",
    "push_emails": ["ops@fleet.example"],
}


@pytest.fixture(scope="module")
def store():
    return new_pg_store("billing")


@pytest.fixture(scope="module")
def app(store) -> Iterator[BillingApplication]:
    billing = BillingApplication(config=store)
    yield billing
    billing.close()


@pytest.fixture
def tree(app: BillingApplication) -> Tree:
    return make_tree(app)


def _filed(app, tree, submit=True, who="sales", **overrides) -> dict:
    data = {
        "company_id": tree.customer,
        "payer": "Zhang San",
        "currency": "CNY",
        "amount": D("1000.00"),
        "reference_number": f"SLIP-{tree.vendor}",
        "remark": "",
        "submit": submit,
        **overrides,
    }
    return app.file_offline_application(tree[who], data)


def _review(app, tree, filed, decision, opinion="checked", who="finance") -> dict:
    return app.review_offline_application(
        tree[who], filed["application_id"], {"decision": decision, "opinion": opinion}
    )


def _views(app: BillingApplication) -> dict:
    with app.engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in metadata.sorted_tables
        }


# -- S1/F1 offline recharge -------------------------------------------------------------------
def test_a_draft_is_edited_deleted_or_submitted_and_approval_credits_the_balance(app, tree) -> None:
    draft = _filed(app, tree, submit=False)
    assert draft["status"] == "draft"
    edited = app.edit_offline_application(
        tree["sales"], draft["application_id"], {"amount": D("1200.00"), "payer": " Li Si "}
    )
    assert (edited["amount"], edited["payer"]) == (D("1200.00"), "Li Si")
    assert ledger_is_consistent(app, tree.customer) == {}  # a draft moves no money
    with pytest.raises(Forbidden):
        _review(app, tree, draft, "approve", who="sales2")
    with pytest.raises(Conflict, match="draft"):
        _review(app, tree, draft, "approve")  # not submitted yet
    submitted = app.submit_offline_application(tree["sales"], draft["application_id"])
    approved = _review(app, tree, submitted, "approve", "slip matches the bank statement")
    assert (approved["status"], approved["reviewer"]) == ("approved", tree["finance"].username)
    assert [h["action"] for h in approved["history"]] == [
        "drafted",
        "edited",
        "submitted",
        "approved",
    ]
    assert approved["history"][-1]["detail"] == "slip matches the bank statement"
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("1200.00")}
    for again in ("approve", "reject", "return"):  # a double review changes nothing
        with pytest.raises(Conflict):
            _review(app, tree, approved, again)
    with pytest.raises(Conflict):
        app.edit_offline_application(tree["sales"], draft["application_id"], {"amount": D("1.00")})
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("1200.00")}
    entry = app.account_entries(tree["customer"], tree.customer, {})["items"][0]
    assert (entry["reason"], entry["reference"]) == ("offline_application", draft["application_id"])

    other = _filed(app, tree, submit=False, reference_number="SLIP-X")
    with pytest.raises(Conflict, match="applicant"):
        app.delete_offline_application(tree["sales2"], other["application_id"])
    app.delete_offline_application(tree["sales"], other["application_id"])
    with pytest.raises(NotFound):
        app.offline_application(tree["sales"], other["application_id"])


def test_return_goes_back_to_the_applicant_who_edits_and_resubmits_and_reject_is_final(
    app, tree
) -> None:
    filed = _filed(app, tree)
    returned = _review(app, tree, filed, "return", "the amount differs from the slip")
    assert (returned["status"], returned["opinion"]) == (
        "returned",
        "the amount differs from the slip",
    )
    with pytest.raises(Conflict):
        _review(app, tree, filed, "approve")
    app.edit_offline_application(
        tree["sales"], filed["application_id"], {"amount": D("999.00"), "submit": True}
    )
    rejected = _review(app, tree, filed, "reject", "no such transfer")
    assert [h["action"] for h in rejected["history"]] == [
        "drafted",
        "submitted",
        "returned",
        "edited",
        "submitted",
        "rejected",
    ]
    with pytest.raises(Conflict):
        app.submit_offline_application(tree["sales"], filed["application_id"])
    assert ledger_is_consistent(app, tree.customer) == {}


def test_nobody_reviews_their_own_application_and_roles_and_scope_are_checked(app, tree) -> None:
    mine = _filed(app, tree, who="admin")
    with pytest.raises(Conflict, match="own"):
        _review(app, tree, mine, "approve", who="admin")
    with pytest.raises(Forbidden):
        _filed(app, tree, who="customer")
    with pytest.raises(Forbidden):
        _filed(app, tree, who="finance")
    outsider = make_tree(app)
    with pytest.raises(Forbidden):
        _filed(app, tree, company_id=outsider.customer)  # outside the subtree
    with pytest.raises(NotFound):
        _review(app, outsider, mine, "approve")  # finance of another tree
    with pytest.raises(NotFound):
        app.file_offline_application(
            tree["sales"],
            {
                "company_id": "no-such-company",
                "payer": "x",
                "currency": "CNY",
                "amount": D("1.00"),
                "reference_number": "R",
            },
        )
    assert _review(app, tree, mine, "approve")["status"] == "approved"


def test_duplicate_reference_numbers_are_flagged_and_lists_filter_by_every_field(app, tree) -> None:
    first = _filed(app, tree, reference_number="BANK-7")
    second = _filed(app, tree, reference_number="BANK-7", payer="Wang Wu", amount=D("5.00"))
    single = _filed(app, tree, submit=False, reference_number="BANK-8", currency="USD")
    assert app.offline_application(tree["finance"], first["application_id"])["duplicate_reference"]
    assert not single["duplicate_reference"]
    _review(app, tree, second, "reject", "a duplicate")
    assert not app.offline_application(tree["finance"], first["application_id"])[
        "duplicate_reference"
    ]  # a rejected one no longer counts

    def ids(**filters: object) -> set[str]:
        return {
            a["application_id"]
            for a in app.list_offline_applications(
                tree["finance"], {"company_id": tree.customer, **filters}
            )
        }

    everyone = {first["application_id"], second["application_id"], single["application_id"]}
    assert ids() == everyone
    assert ids(status="rejected") == {second["application_id"]}
    assert ids(pending=True) == {first["application_id"]}
    assert ids(pending=False) == everyone - {first["application_id"]}
    assert ids(payer="wang") == {second["application_id"]}
    assert ids(currency="USD") == {single["application_id"]}
    assert ids(reference_number="BANK-7") == {first["application_id"], second["application_id"]}
    assert ids(amount_max=D("10.00")) == {second["application_id"]}
    assert ids(applicant=tree["sales"].username) == everyone
    assert ids(reviewer=tree["finance"].username) == {second["application_id"]}
    assert ids(created_from=datetime.now(UTC) + timedelta(hours=1)) == set()
    assert (
        app.list_offline_applications(make_tree(app)["finance"], {"company_id": tree.customer})
        == []
    )


def test_two_finance_users_approving_at_once_credit_once(app, tree) -> None:
    from concurrent.futures import ThreadPoolExecutor

    filed = _filed(app, tree)
    reviewers = [tree["finance"], tree["admin"]] * 5

    def approve(actor) -> str:
        try:
            app.review_offline_application(
                actor, filed["application_id"], {"decision": "approve", "opinion": "ok"}
            )
            return "approved"
        except Conflict:
            return "refused"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(approve, reviewers))
    assert outcomes.count("approved") == 1
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("1000.00")}


# -- C4/S2 account configs --------------------------------------------------------------------
def test_sales_sets_up_configs_in_its_subtree_and_customers_change_their_push_settings(
    app, tree
) -> None:
    sales, customer = tree["sales"], tree["customer"]
    config = app.set_account_config(
        sales, tree.customer, {**SETTINGS, "push_emails": ["a@x.cn", "A@x.cn ", "b@x.cn"]}
    )
    assert config["push_emails"] == ["a@x.cn", "b@x.cn"] and config["changed_by"] == sales.username
    with pytest.raises(Forbidden):
        app.set_account_config(customer, tree.customer, SETTINGS)
    changed = app.update_account_settings(
        customer,
        tree.customer,
        {"push_enabled": False, "language": "en", "push_emails": ["c@x.cn", "d@x.cn"]},
    )
    assert (changed["push_enabled"], changed["language"], changed["region"]) == (
        False,
        "en",
        "china",
    )
    with pytest.raises(ValidationFailed, match="region"):
        app.update_account_settings(customer, tree.customer, {"region": "other"})
    with pytest.raises(Forbidden):
        app.update_account_settings(tree["other_customer"], tree.customer, {"push_enabled": True})
    with pytest.raises(NotFound):
        app.update_account_settings(customer, tree.subsidiary, {"push_enabled": True})
    outsider = make_tree(app)
    with pytest.raises(Forbidden):
        app.set_account_config(sales, outsider.customer, SETTINGS)
    app.set_account_config(sales, tree.intl, {**SETTINGS, "region": "other"})
    assert app.region(tree.intl) == "other"

    def listed(**filters: object) -> dict[str, bool]:
        return {c["company_id"]: c["configured"] for c in app.list_account_configs(sales, filters)}

    assert listed() == {
        tree.vendor: False,
        tree.customer: True,
        tree.other: False,
        tree.intl: True,
    }
    assert listed(whole_subtree=True)[tree.subsidiary] is False
    assert set(listed(configured=True)) == {tree.customer, tree.intl}
    assert set(listed(company_id=tree.customer)) == {tree.customer, tree.subsidiary}
    with pytest.raises(Forbidden):
        app.list_account_configs(customer, {})

    with pytest.raises(Forbidden):
        app.delete_account_config(customer, tree.customer)
    app.delete_account_config(sales, tree.customer)
    with pytest.raises(NotFound):
        app.account_config(customer, tree.customer)
    with pytest.raises(NotFound):
        app.delete_account_config(sales, tree.customer)
    assert app.set_account_config(sales, tree.customer, SETTINGS)["push_enabled"] is True


def test_config_events_go_on_the_wire(app, tree) -> None:
    app.set_account_config(tree["sales"], tree.customer, SETTINGS)
    app.set_account_config(tree["sales"], tree.customer, SETTINGS)  # unchanged: no event
    app.delete_account_config(tree["sales"], tree.customer)
    from services.billing.domain import AccountConfig

    events = list(app.events.get(AccountConfig.create_id(tree.customer)))
    kinds = [w.type for e in events for w in to_wire(e, app)]
    assert kinds == ["account_config_set", "account_config_deleted"]


# -- auto-renewal ---------------------------------------------------------------------------
def _expired(devices: FakeDevices, device_id: str, package_id: str) -> dict:
    device = devices.devices[device_id]
    return {
        "device_id": device_id,
        "company_id": device["company_id"],
        "expires_at": device["expires_at"],
        "package_id": package_id,
    }


def test_auto_renewal_renews_from_the_balance_once_per_expiry(app, tree) -> None:
    catalog, devices = FakeCatalog(), FakeDevices(app)
    yearly = catalog.add("4G yearly", "120.00", pricing="per_year")
    device = devices.add(tree.customer, yearly)
    app.set_account_config(tree["sales"], tree.customer, {**SETTINGS, "auto_renewal": True})
    filed = _filed(app, tree, amount=D("130.00"))
    _review(app, tree, filed, "approve")
    expired = _expired(devices, device, yearly)
    assert app.on_device_expired(expired, catalog) is True
    assert app.on_device_expired(expired, catalog) is False  # a duplicate expiry message
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("10.00")}
    [renewal] = app.auto_renewals(tree["customer"], {"device_id": device})
    assert renewal["outcome"] == "renewed"
    order = app.order(tree["customer"], renewal["order_id"])
    assert (order["status"], order["method"], order["total"]) == ("paid", "balance", D("120.00"))
    assert [(line["device_id"], line["months"]) for line in order["lines"]] == [(device, 12)]
    # the next expiry of the same device is a new one, and the balance no longer covers it
    later = {**expired, "expires_at": expired["expires_at"] + timedelta(days=365)}
    assert app.on_device_expired(later, catalog) is True
    failed = app.auto_renewals(tree["customer"], {"device_id": device, "outcome": "failed"})
    assert [(f["balance"], f["missing"]) for f in failed] == [(D("10.00"), D("110.00"))]
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("10.00")}


def test_auto_renewal_does_nothing_when_off_and_fails_when_the_balance_cannot_pay(
    app, tree
) -> None:
    catalog, devices = FakeCatalog(), FakeDevices(app)
    monthly = catalog.add("monthly", "10.00")
    device = devices.add(tree.customer, monthly)
    assert app.on_device_expired(_expired(devices, device, monthly), catalog) is False  # no config
    app.set_account_config(tree["sales"], tree.customer, SETTINGS)
    assert app.on_device_expired(_expired(devices, device, monthly), catalog) is False  # off
    assert catalog.calls == 0
    usd = catalog.add("intl", "5.00", currency="USD")
    app.set_account_config(
        tree["sales"], tree.intl, {**SETTINGS, "region": "other", "auto_renewal": True}
    )
    intl_device = devices.add(tree.intl, usd)
    assert app.on_device_expired(_expired(devices, intl_device, usd), catalog) is True
    [failed] = app.auto_renewals(tree["admin"], {"device_id": intl_device})
    assert failed["outcome"] == "failed" and "cannot pay USD" in failed["reason"]


# -- statements -----------------------------------------------------------------------------
def test_a_statement_per_billing_cycle_with_opening_entries_and_closing(app, tree) -> None:
    jan = datetime(2031, 1, 10, tzinfo=UTC)
    with frozen(jan) as now:
        _review(app, tree, _filed(app, tree, amount=D("100.00"), reference_number="J1"), "approve")
        now.advance(days=25)  # February
        _review(app, tree, _filed(app, tree, amount=D("50.00"), reference_number="F1"), "approve")
        catalog, devices = FakeCatalog(), FakeDevices(app)
        package = catalog.add("monthly", "30.00")
        order = app.create_renewal_order(
            tree["customer"],
            {"device_ids": [devices.add(tree.customer, package)], "months": 1},
            devices,
            catalog,
        )
        app.confirm_order(tree["customer"], order["order_id"])
        app.pay_order(tree["customer"], order["order_id"], "balance")
        now.advance(days=30)  # March: February's statement is due
        app.issue_due_statements()
        assert app.issue_due_statements() == 0  # once per cycle
        statements = app.statements(tree["customer"], tree.customer)
        february = next(s for s in statements if s["period_start"].month == 2)
        assert february["balances"] == [
            {
                "currency": "CNY",
                "opening_balance": D("100.00"),
                "total_credits": D("50.00"),
                "total_debits": D("30.00"),
                "closing_balance": D("120.00"),
                "entries": 2,
            }
        ]
        entries = app.statement_entries(tree["customer"], february["statement_id"], 0, limit=1)
        assert [e["amount"] for e in entries["items"]] == [D("50.00")]
        rest = app.statement_entries(tree["customer"], february["statement_id"], entries["next"])
        assert [e["amount"] for e in rest["items"]] == [D("30.00")] and rest["next"] is None
        with pytest.raises(NotFound):
            app.statement(tree["other_customer"], february["statement_id"])
        # a quarterly account gets one statement per quarter
        app.set_account_config(
            tree["sales"], tree.customer, {**SETTINGS, "billing_cycle": "quarterly"}
        )
        now.advance(days=35)  # April: the first quarter closed
        app.issue_due_statements()
        [quarter] = [
            s for s in app.statements(tree["customer"], tree.customer) if s["cycle"] == "quarterly"
        ]
        assert (quarter["cycle"], quarter["period_start"].month, quarter["period_end"].month) == (
            "quarterly",
            1,
            4,
        )
        assert quarter["balances"][0]["opening_balance"] == D("0.00")
        assert quarter["balances"][0]["closing_balance"] == D("120.00")


# -- operations -----------------------------------------------------------------------------
def test_snapshots_keep_a_long_lived_account_loading_fast(app, tree) -> None:
    account = Account(company_id=tree.customer)
    for n in range(45):
        account.credit(currency="CNY", amount=D("1.00"), reason="recharge", reference=f"r{n}")
        app.save(account)
    snapshots = list(app.snapshots.get(account_id(tree.customer), desc=True, limit=1))
    assert snapshots and snapshots[0].originator_version == 40
    assert app.load_account(tree.customer).balance("CNY") == D("45.00")


def test_replay_rebuilds_every_view_and_verify_finds_any_difference(app, tree) -> None:
    _review(app, tree, _filed(app, tree, amount=D("75.00"), reference_number="OPS-1"), "approve")
    app.set_account_config(tree["sales"], tree.customer, SETTINGS)
    before = _views(app)
    assert app.verify_views() == []
    app.rebuild_views()
    assert _views(app) == before
    with app.engine.begin() as conn:
        conn.execute(
            balances.update()
            .where(balances.c.company_id == tree.customer)
            .values(balance=D("1.00"))
        )
        conn.execute(applications.delete().where(applications.c.company_id == tree.customer))
    found = app.verify_views()
    assert any("balances" in d and "balance is Decimal('1.00')" in d for d in found), found
    assert any("offline_applications" in d and "missing from the live view" in d for d in found)
    app.rebuild_views()
    assert app.verify_views() == [] and _views(app) == before


def test_the_operations_cli(app, tree, store) -> None:
    at = datetime.now(UTC)
    _review(app, tree, _filed(app, tree, amount=D("40.00"), reference_number="CLI-1"), "approve")
    env = {
        **os.environ,
        "IOTB_STORE": "postgres",
        "IOTB_DB_PREFIX": store.pg_dbname[: -len("billing")],
    }

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "services.billing.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert "CNY 0.00" in cli("balance", tree.customer, "--at", at.isoformat()).stdout
    assert "CNY 40.00" in cli("balance", tree.customer).stdout
    verified = cli("verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with app.engine.begin() as conn:
        conn.execute(balances.delete().where(balances.c.company_id == tree.customer))
    broken = cli("verify")
    assert broken.returncode == 1 and "balances" in broken.stdout
    replayed = cli("replay")
    assert replayed.returncode == 0 and "events" in replayed.stdout, replayed.stderr
    assert cli("verify").returncode == 0
    assert ledger_is_consistent(app, tree.customer) == {"CNY": D("40.00")}
