"""Payments use cases: start an attempt, settle it from what the provider reports
(callbacks, queries, reconciliation), close it; and the attempts' read views."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from uuid import UUID

import sqlalchemy as sa

from services.common import clock
from services.common.actor import Actor
from services.common.config import StoreConfig
from services.common.domain import event_meta
from services.common.errors import Conflict, NotFound, ValidationFailed
from services.common.scope import require_scope, scope_meta, subtree_ids, upsert_company
from services.common.store import IntegrityError, ServiceApplication
from services.common.views import row_dict
from services.payments.config import PaymentsSettings, load_settings
from services.payments.domain import (
    PaymentAttempt,
    PaymentRefused,
    ProviderReference,
    attempt_id,
    check_method,
    request_fingerprint,
    trade_number,
)
from services.payments.projections import attempts, history, projection
from services.payments.providers.base import (
    CallbackAnswer,
    CallbackRejected,
    NewTrade,
    Provider,
    ProviderRefused,
    ProviderUnavailable,
    TradeReport,
)

log = logging.getLogger(__name__)

DEFAULT_SCENE = {"wechat_pay": "qr", "alipay": "qr", "paypal": "page"}
CLOSERS = ("customer", "finance", "admin")


def build_providers(settings: PaymentsSettings) -> dict[str, Provider]:
    """One adapter per configured provider."""
    from services.payments.providers.alipay import Alipay
    from services.payments.providers.paypal import PayPal
    from services.payments.providers.wechat import WechatPay

    found: dict[str, Provider] = {}
    timing = {"timeout": settings.http_timeout, "tolerance": settings.callback_tolerance}
    if settings.wechat is not None:
        found["wechat_pay"] = WechatPay(settings.wechat, **timing)
    if settings.alipay is not None:
        found["alipay"] = Alipay(settings.alipay, **timing)
    if settings.paypal is not None:
        found["paypal"] = PayPal(settings.paypal, **timing)
    return found


class PaymentsApplication(ServiceApplication):
    service = "payments"
    projection = projection

    def __init__(
        self,
        config: StoreConfig | None = None,
        env: dict | None = None,
        settings: PaymentsSettings | None = None,
        providers: Mapping[str, Provider] | None = None,
    ) -> None:
        super().__init__(config, env)
        scope_meta.create_all(self.engine)  # the company tree, fed by devices' events
        self._settings = settings
        self._settings_given = settings is not None
        self._injected: dict[str, Provider] = dict(providers or {})
        self._providers: dict[str, Provider] = {}
        self._built = False
        self._providers_lock = threading.Lock()

    # -- configuration ------------------------------------------------------------------
    @property
    def settings(self) -> PaymentsSettings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    def provider(self, method: str) -> Provider:
        with self._providers_lock:
            if not self._built or (method not in self._providers and not self._settings_given):
                # read the environment again: the local simulators may have written their
                # config after we started
                if not self._settings_given:
                    self._settings = load_settings()
                self._providers = {**build_providers(self.settings), **self._injected}
                self._built = True
            found = self._providers.get(method)
        if found is None:
            raise ValidationFailed(
                f"{method} is not configured on this platform", {"method": ["not available"]}
            )
        return found

    # -- helpers ------------------------------------------------------------------------
    def _scope(self, actor: Actor, company_id: str) -> None:
        if actor.is_system:
            return
        with self.engine.connect() as conn:
            require_scope(conn, actor, company_id)

    def _attempt(self, aid: UUID) -> PaymentAttempt:
        found = self.find(aid)
        if not isinstance(found, PaymentAttempt):
            raise NotFound(f"payment attempt {aid} not found")
        return found

    def _settle(self, aid: UUID, change: Callable[[PaymentAttempt], bool]) -> bool:
        """Apply ``change`` to the attempt with optimistic concurrency; True if it changed."""
        changed: list[bool] = []

        def decide() -> list:
            changed.clear()
            attempt = self._attempt(aid)
            if change(attempt):
                changed.append(True)
                return [attempt]
            return []

        self.retrying(decide)
        return bool(changed)

    # -- start --------------------------------------------------------------------------
    def start_payment(self, actor: Actor, data: dict) -> dict:
        """Open an attempt (or find the one this idempotency key opened) and make sure the
        provider holds the trade; answer with what the payer needs."""
        company_id = data["company_id"]
        self._scope(actor, company_id)
        method = data["method"]
        scene = data.get("scene") or DEFAULT_SCENE.get(method, "qr")
        try:
            check_method(method, data["currency"], scene)
        except PaymentRefused as exc:
            raise ValidationFailed(str(exc), {exc.field or "method": [str(exc)]}) from exc
        provider = self.provider(method)
        request = {**data, "scene": scene}
        fingerprint = request_fingerprint(request)
        out_trade_no = trade_number(company_id, data.get("idempotency_key"))
        aid = attempt_id(out_trade_no)
        attempt = self.find(aid)
        if attempt is None:
            now = clock.now()
            with event_meta(**actor.meta()):
                attempt = PaymentAttempt(
                    out_trade_no=out_trade_no,
                    purpose=data["purpose"],
                    reference_id=data["reference_id"],
                    company_id=company_id,
                    method=method,
                    amount=data["amount"],
                    currency=data["currency"],
                    description=data.get("description") or "",
                    scene=scene,
                    fingerprint=fingerprint,
                    idempotency_key=data.get("idempotency_key"),
                    created_at=now,
                    expires_at=now + timedelta(seconds=self.settings.attempt_ttl),
                )
            try:
                self.save(attempt)
            except IntegrityError:
                attempt = self._attempt(aid)  # a concurrent retry with the same key won
        if attempt.fingerprint != fingerprint:
            raise Conflict(
                "this idempotency key was already used for a different payment",
                {"idempotency_key": ["already used with another request body"]},
            )
        if attempt.status == "pending" and not attempt.linked:
            self._open_at_provider(actor, attempt, provider)
        return self.attempt_view(aid)

    def _open_at_provider(self, actor: Actor, attempt: PaymentAttempt, provider: Provider) -> None:
        trade = NewTrade(
            out_trade_no=attempt.out_trade_no,
            amount=attempt.amount,
            currency=attempt.currency,
            description=attempt.description,
            expires_at=attempt.expires_at,
            scene=attempt.scene,
        )
        aid = attempt.id
        try:
            created = provider.create(trade)
        except ProviderUnavailable as exc:
            log.warning("%s did not open trade %s: %s", provider.method, attempt.out_trade_no, exc)
            raise Conflict(
                "the payment provider did not answer; try again (with the same idempotency key)",
                {"method": ["provider unavailable, try again"]},
            ) from exc
        except ProviderRefused as exc:
            log.warning("%s refused trade %s: %s", provider.method, attempt.out_trade_no, exc.code)
            self._refused_at_start(actor, aid, provider, exc)
            return

        def decide() -> list:
            current = self._attempt(aid)
            with event_meta(**actor.meta()):
                if not current.link(created.code_url, created.approve_url, created.provider_ref):
                    return []
                found: list = [current]
                if created.provider_ref:
                    ref = ProviderReference(
                        method=provider.method,
                        provider_ref=created.provider_ref,
                        attempt_id=str(aid),
                    )
                    if ref.id not in self.repository:
                        found.append(ref)
            return found

        self.retrying(decide)

    def _refused_at_start(
        self, actor: Actor, aid: UUID, provider: Provider, refusal: ProviderRefused
    ) -> None:
        # "duplicate" refusals can mean the trade was paid already: ask before failing it
        attempt = self._attempt(aid)
        try:
            report = provider.query(attempt.out_trade_no, attempt.provider_ref)
        except (ProviderUnavailable, ProviderRefused):
            report = None
        if report is not None and report.state == "paid":
            self.apply_report(report, "query")
            return
        now = clock.now()
        with event_meta(**actor.meta()):
            self._settle(aid, lambda a: a.fail(f"refused by the provider: {refusal.code}", now))

    # -- settling from what the provider reports ----------------------------------------
    def _match(self, report: TradeReport) -> UUID | None:
        """The attempt a report is about, by our own records only."""
        if report.out_trade_no:
            aid = attempt_id(report.out_trade_no)
            return aid if aid in self.repository else None
        if report.provider_ref:
            ref = self.find(ProviderReference.create_id(report.provider, report.provider_ref))
            return UUID(ref.attempt_id) if isinstance(ref, ProviderReference) else None
        return None

    def apply_report(self, report: TradeReport, source: str) -> str:
        """Settle the matching attempt from a verified report. Answers succeeded,
        duplicate, failed, closed, pending, mismatch, ignored or unknown."""
        aid = self._match(report)
        if aid is None:
            return "unknown"
        if report.state == "approved":
            return self._capture(aid, report, source)
        outcome: list[str] = []

        def decide() -> list:
            outcome.clear()
            attempt = self._attempt(aid)
            now = clock.now()
            if attempt.method != report.provider:
                outcome.append("unknown")
                return []
            if report.state == "paid":
                problems = [report.merchant_error] if report.merchant_error else []
                problems += attempt.differences(report.amount, report.currency)
                if problems:
                    outcome.append("mismatch")
                    reason = "; ".join(problems)
                    changed = attempt.report_mismatch(reason, report.amount, report.currency)
                    return [attempt] if changed else []
                changed = attempt.succeed(
                    report.provider_trade_no or "", report.paid_at or now, source
                )
                outcome.append("succeeded" if changed else "duplicate")
                return [attempt] if changed else []
            if report.merchant_error:
                outcome.append("mismatch")
                return []
            if report.state == "failed":
                changed = attempt.fail(f"the provider reports {report.reason}", now)
                outcome.append("failed" if changed else "duplicate")
                return [attempt] if changed else []
            if report.state == "closed":
                changed = attempt.close(f"closed by the provider ({report.reason})", now)
                outcome.append("closed" if changed else "duplicate")
                return [attempt] if changed else []
            outcome.append("pending")
            return []

        with event_meta(actor=report.provider, source=source, provider_event=report.event_id):
            self.retrying(decide)
        return outcome[0] if outcome else "pending"

    def _capture(self, aid: UUID, report: TradeReport, source: str) -> str:
        """PayPal: the payer approved; take the money (once, by request id) if still wanted."""
        attempt = self._attempt(aid)
        problems = [report.merchant_error] if report.merchant_error else []
        problems += attempt.differences(report.amount, report.currency)
        if problems:
            with event_meta(actor=report.provider, source=source):
                self._settle(
                    aid,
                    lambda a: a.report_mismatch(
                        "; ".join(problems), report.amount, report.currency
                    ),
                )
            return "mismatch"
        if attempt.status != "pending" or not attempt.provider_ref:
            return "ignored"  # closed, failed or disputed: an approval moves no money
        capture = getattr(self.provider(attempt.method), "capture", None)
        if capture is None:
            return "pending"
        captured: TradeReport = capture(attempt.out_trade_no, attempt.provider_ref)
        if captured.state == "approved":
            return "pending"
        return self.apply_report(captured, source)

    def handle_callback(
        self, method: str, headers: Mapping[str, str], body: bytes
    ) -> CallbackAnswer:
        """A provider's notification: verify, match, check, record; answer as its protocol
        requires. Anything we cannot trust changes nothing."""
        provider = self.provider(method)
        try:
            report = provider.verify_callback(headers, body, clock.now())
        except CallbackRejected as exc:
            log.warning("refused a %s callback: %s", method, exc)
            return provider.answer(False, "verification failed", 401)
        except ProviderUnavailable as exc:
            log.warning("cannot verify a %s callback now: %s", method, exc)
            return provider.answer(False, "try again later", 503)
        if not report.out_trade_no and not report.provider_ref:
            return provider.answer(True, "")  # an event kind we do not act on
        try:
            outcome = self.apply_report(report, "callback")
        except (ProviderUnavailable, ProviderRefused, Conflict) as exc:
            log.warning("could not settle a %s callback now: %s", method, exc)
            return provider.answer(False, "try again later", 503)
        if outcome == "unknown":
            log.warning("a verified %s callback names a trade we do not know", method)
            return provider.answer(False, "unknown trade", 404)
        if outcome == "mismatch":
            return provider.answer(False, "the payment does not match the order", 400)
        return provider.answer(True, "")

    # -- close --------------------------------------------------------------------------
    def close_attempt(self, actor: Actor, attempt_ref: str) -> dict:
        row = self._row(attempt_ref)
        self._scope(actor, row["company_id"])
        if not actor.is_system:
            actor.require(*CLOSERS)
        aid = UUID(row["attempt_id"])
        attempt = self._attempt(aid)
        if attempt.status == "succeeded":
            raise Conflict(
                "the payment already succeeded; it cannot be closed", {"attempt_id": ["succeeded"]}
            )
        if attempt.status in ("pending", "mismatch"):
            self._close(actor, attempt, "closed on request")
        return self.attempt_view(aid)

    def _close(self, actor: Actor, attempt: PaymentAttempt, reason: str) -> None:
        provider = self.provider(attempt.method)
        try:
            report = provider.close(attempt.out_trade_no, attempt.provider_ref)
        except (ProviderUnavailable, ProviderRefused) as exc:
            raise Conflict(
                "the payment provider did not confirm the close; try again",
                {"attempt_id": ["provider unavailable"]},
            ) from exc
        if report.state == "paid":  # paid in the meantime: that payment counts
            self.apply_report(report, "query")
            return
        now = clock.now()
        with event_meta(**actor.meta()):
            self._settle(attempt.id, lambda a: a.close(reason, now))

    # -- reconciliation -----------------------------------------------------------------
    def reconcile(self, limit: int = 200) -> dict[str, int]:
        """Settle attempts still pending after ``reconcile_after`` from the provider's
        answer, and close those past their expiry: a lost callback never loses a payment."""
        now = clock.now()
        cutoff = now - timedelta(seconds=self.settings.reconcile_after)
        with self.engine.connect() as conn:
            due = (
                conn.execute(
                    sa.select(attempts.c.attempt_id)
                    .where(attempts.c.status == "pending", attempts.c.created_at <= cutoff)
                    .order_by(attempts.c.created_at)
                    .limit(limit)
                )
                .scalars()
                .all()
            )
        counts: dict[str, int] = {}
        for found in due:
            try:
                outcome = self.reconcile_attempt(UUID(found), now)
            except (
                ProviderUnavailable,
                ProviderRefused,
                CallbackRejected,
                Conflict,
                ValidationFailed,
            ) as exc:
                log.warning("reconciliation skipped attempt %s: %s", found, exc)
                outcome = "skipped"
            counts[outcome] = counts.get(outcome, 0) + 1
        return counts

    def reconcile_attempt(self, aid: UUID, now: datetime) -> str:
        attempt = self._attempt(aid)
        if attempt.status != "pending":
            return "settled"
        provider = self.provider(attempt.method)
        report = provider.query(attempt.out_trade_no, attempt.provider_ref)
        if report.state == "approved":
            outcome = self._capture(aid, report, "reconciliation")
        elif report.state in ("paid", "failed", "closed"):
            outcome = self.apply_report(report, "reconciliation")
        else:
            outcome = "pending"
        if outcome == "pending" and now >= attempt.expires_at:
            self._close(Actor("system", "reconciliation", "admin", ""), attempt, "expired unpaid")
            outcome = self._attempt(aid).status
        return outcome

    # -- company scope (fed by devices' events) -----------------------------------------
    def record_company(self, sequence: int, data: dict) -> None:
        with self.engine.begin() as conn:
            upsert_company(
                conn,
                data["company_id"],
                data.get("parent_id"),
                data["name"],
                data["region"],
                sequence,
            )

    # -- views --------------------------------------------------------------------------
    def _row(self, attempt_ref: str) -> dict:
        try:
            key = str(UUID(str(attempt_ref)))
        except ValueError:
            key = None
        query = sa.select(attempts).where(
            attempts.c.attempt_id == key if key else attempts.c.out_trade_no == str(attempt_ref)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:  # perhaps written by a concurrent request just now
            self.catch_up()
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"payment attempt {attempt_ref} not found")
        return row_dict(row)

    def attempt_view(self, aid: UUID | str) -> dict:
        self.catch_up()  # include what concurrent requests just wrote about this attempt
        data = self._row(str(aid))
        with self.engine.connect() as conn:
            data["history"] = [
                row_dict(r)
                for r in conn.execute(
                    sa.select(history.c.at, history.c.what, history.c.detail)
                    .where(history.c.attempt_id == data["attempt_id"])
                    .order_by(history.c.id)
                )
            ]
        return data

    def get_attempt(self, actor: Actor, attempt_ref: str) -> dict:
        row = self._row(attempt_ref)
        self._scope(actor, row["company_id"])
        return self.attempt_view(row["attempt_id"])

    def list_attempts(self, actor: Actor, filters: dict) -> list[dict]:
        query = sa.select(attempts).order_by(attempts.c.created_at.desc()).limit(500)
        with self.engine.connect() as conn:
            if not actor.is_system:
                query = query.where(attempts.c.company_id.in_(subtree_ids(conn, actor.company_id)))
            for name in ("reference_id", "company_id", "status", "method", "purpose"):
                if filters.get(name):
                    query = query.where(attempts.c[name] == filters[name])
            return [row_dict(r) for r in conn.execute(query)]
