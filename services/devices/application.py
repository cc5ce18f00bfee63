"""Devices use cases: the company tree, the device registry, expiry maintenance (T1), bulk
expiry files (S3), suspension (C5), renewal and value-added bindings (T3, T4), the expiry
clock and paid orders.

Batch use cases are all or nothing: every id is checked first, then every device changes
in one atomic save, or nothing does.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import project_aggregate
from eventsourcing.persistence import StoredEvent

from services.common import clock
from services.common.actor import Actor
from services.common.config import StoreConfig, env
from services.common.domain import current_meta, event_meta
from services.common.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from services.common.scope import company, company_scope, in_scope, require_scope, subtree_ids
from services.common.store import IntegrityError, ServiceApplication
from services.common.views import row_dict
from services.devices import excel
from services.devices.domain import (
    Company,
    Device,
    DeviceRefused,
    ExpiryImport,
    RenewalApplied,
    TypeBinding,
    device_key,
    expiry_problem,
)
from services.devices.excel import iter_chunks
from services.devices.projections import (
    devices,
    expiry_history,
    projection,
    type_bindings,
    value_added,
)

PackageLookup = Callable[[str], dict]
EXPIRING_DAYS = int(env("IOTB_EXPIRING_DAYS", "7"))
MAX_BATCH = 50_000
COMPANY_FIELDS = ("company_id", "parent_id", "name", "region")
OUTSIDE = "outside your company and its subsidiaries"


class Target(NamedTuple):
    """A device as a bulk import sees it in the device list."""

    device_id: str
    device_key: str
    company_id: str
    version: int
    expires_at: datetime


def pasted_ids(text: str) -> list[str]:
    """Device ids pasted from anywhere: separated by spaces, new lines, commas or semicolons."""
    return [part for part in re.split(r"[\s,;，；]+", text) if part]


def _unique_ids(device_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(d.strip().upper() for d in device_ids if d and d.strip()))


def _cooperate() -> None:
    # a long import yields now and then: under eventlet (monkey-patched) this lets the
    # service's other requests run; elsewhere it costs a microsecond
    time.sleep(0)


class DevicesApplication(ServiceApplication):
    service = "devices"
    projection = projection

    def __init__(
        self,
        config: StoreConfig | None = None,
        env: dict | None = None,
        expiring_days: int | None = None,
    ) -> None:
        super().__init__(config=config, env=env)
        self.expiring_days = EXPIRING_DAYS if expiring_days is None else expiring_days
        self._upgrade_views()

    def _upgrade_views(self) -> None:
        """Views are disposable: a device list of an older shape is rebuilt from the log."""
        columns = {c["name"] for c in sa.inspect(self.engine).get_columns("devices")}
        if "version" not in columns and self.projector is not None:
            self.projector.rebuild()

    # -- loading ---------------------------------------------------------------------------
    def _load_devices(self, keys: list[str]) -> list[Device]:
        """Devices rebuilt from their events, a thousand per query.

        Batch work touches thousands of devices; one round trip each would dominate it.
        """
        if self.store.kind != "postgres":
            return [self.repository.get(UUID(k)) for k in keys]
        recorder: Any = self.recorder
        table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
        statement = sa.text(
            f"SELECT originator_id, originator_version, topic, state FROM {table}"
            " WHERE originator_id IN :ids ORDER BY originator_id, originator_version"
        ).bindparams(sa.bindparam("ids", expanding=True))
        events: dict[UUID, list] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in iter_chunks(keys, 1000):
                for row in conn.execute(statement, {"ids": [UUID(k) for k in chunk]}):
                    stored = StoredEvent(
                        originator_id=row.originator_id,
                        originator_version=row.originator_version,
                        topic=row.topic,
                        state=bytes(row.state),
                    )
                    events[row.originator_id].append(self.mapper.to_domain_event(stored))
        loaded = []
        for key in keys:
            found = project_aggregate(None, events.get(UUID(key), ()))
            if found is None:
                raise NotFound(f"device {key} not found")
            loaded.append(found)
        return loaded

    def _companies(
        self, conn: sa.Connection, actor: Actor, filters: dict, column: sa.Column
    ) -> sa.ColumnElement[bool]:
        """The company condition of a list: the company asked for (with its subsidiaries if
        asked), which must exist and lie in the actor's scope, or else the whole scope."""
        scope = self._scope(conn, actor)
        company_id = filters.get("company_id")
        if not company_id:
            return sa.true() if scope is None else column.in_(scope)
        if company(conn, company_id) is None:
            raise NotFound(f"company {company_id} not found", {"company_id": ["not found"]})
        if scope is not None and company_id not in scope:
            raise Forbidden(f"that company is {OUTSIDE}")
        if filters.get("include_subsidiaries"):
            return column.in_(subtree_ids(conn, company_id))
        return column == company_id

    def _scope(self, conn: sa.Connection, actor: Actor) -> set[str] | None:
        """The companies the actor may act on (None: the system, everything)."""
        return None if actor.is_system else subtree_ids(conn, actor.company_id)

    def _rows_by_id(self, conn: sa.Connection, device_ids: list[str]) -> dict[str, sa.Row]:
        found: dict[str, sa.Row] = {}
        for chunk in iter_chunks(device_ids, 5000):
            for row in conn.execute(sa.select(devices).where(devices.c.device_id.in_(chunk))):
                found[row.device_id] = row
        return found

    def _import_targets(self, device_ids: list[str]) -> dict[str, Target]:
        """What an import needs of each device named in a file, in two streamed statements
        on PostgreSQL (100,000 rows fetched through SQLAlchemy cost seconds)."""
        if self.store.kind != "postgres":
            with self.engine.connect() as conn:
                return {
                    row.device_id: Target(
                        row.device_id, row.device_key, row.company_id, row.version, row.expires_at
                    )
                    for row in self._rows_by_id(conn, device_ids).values()
                }
        found: dict[str, Target] = {}
        with self.engine.begin() as conn, conn.connection.driver_connection.cursor() as cur:
            cur.execute("CREATE TEMP TABLE wanted_devices (device_id text) ON COMMIT DROP")
            with cur.copy("COPY wanted_devices FROM STDIN") as copy:
                copy.write("".join(f"{d}\n" for d in device_ids))  # ids are [0-9A-Z-] only
            query = (
                "COPY (SELECT d.device_id, d.device_key, d.company_id, d.version, d.expires_at"
                " FROM devices d JOIN (SELECT DISTINCT device_id FROM wanted_devices) w"
                " USING (device_id)) TO STDOUT"
            )
            with cur.copy(query) as copy:
                data = b"".join(bytes(chunk) for chunk in copy).decode()
        for line in data.splitlines():
            device_id, key, company_id, version, expires_at = line.split("\t")
            found[device_id] = Target(
                device_id, key, company_id, int(version), datetime.fromisoformat(expires_at)
            )
        return found

    def _resolve(self, conn: sa.Connection, actor: Actor, device_ids: Iterable[str]) -> list:
        """View rows of every device, or a refusal naming each unknown or out-of-scope id."""
        ids = _unique_ids(device_ids)
        if not ids:
            raise ValidationFailed("no device ids given", {"device_ids": ["no device ids"]})
        if len(ids) > MAX_BATCH:
            raise ValidationFailed(
                f"at most {MAX_BATCH} devices at once", {"device_ids": ["too many"]}
            )
        found = self._rows_by_id(conn, ids)
        scope = self._scope(conn, actor)
        unknown = [d for d in ids if d not in found]
        outside = [
            d for d in ids if d in found and scope is not None and found[d].company_id not in scope
        ]
        reasons = [f"{d}: {OUTSIDE}" for d in outside] + [f"{d}: not found" for d in unknown]
        if outside:
            raise Forbidden(
                f"{len(outside)} devices are {OUTSIDE}; nothing was changed",
                {"device_ids": reasons},
            )
        if unknown:
            raise NotFound(
                f"{len(unknown)} devices do not exist; nothing was changed", {"device_ids": reasons}
            )
        return [found[d] for d in ids]

    def _device_row(self, conn: sa.Connection, actor: Actor, device_id: str) -> sa.Row:
        row = conn.execute(
            sa.select(devices).where(devices.c.device_key == str(device_key(device_id)))
        ).first()
        # a device outside the actor's subtree is reported as not found: its existence is
        # none of the actor's business
        if row is None or not in_scope(conn, actor, row.company_id):
            raise NotFound(f"device {device_id} not found", {"device_id": ["not found"]})
        return row

    def _change_devices(
        self, actor: Actor, device_ids: Iterable[str], change: Callable[[Device], bool]
    ) -> tuple[list[Device], list[Device]]:
        """Apply ``change`` to every device (all in scope, or a refusal) and save the
        changed ones atomically; returns (changed, unchanged)."""
        ids = list(device_ids)
        self.catch_up()  # devices another replica registered a moment ago are known here
        with self.engine.connect() as conn:
            keys = [r.device_key for r in self._resolve(conn, actor, ids)]
        result: dict[str, list[Device]] = {}

        def command() -> list[Device]:
            loaded = self._load_devices(keys)
            refused: list[str] = []
            with event_meta(**actor.meta()):
                changed, unchanged = [], []
                for device in loaded:
                    try:
                        (changed if change(device) else unchanged).append(device)
                    except DeviceRefused as exc:
                        refused.append(f"{device.imei}: {exc}")
            if refused:
                raise Conflict(
                    f"{len(refused)} devices cannot be changed; nothing was changed",
                    {"device_ids": refused},
                )
            result["changed"], result["unchanged"] = changed, unchanged
            return changed

        self.retrying(command)
        return result["changed"], result["unchanged"]

    # -- companies -------------------------------------------------------------------------
    def register_company(self, actor: Actor, data: dict) -> dict:
        actor.require("admin")
        parent_id = data.get("parent_id")
        with self.engine.connect() as conn:
            if parent_id is None:
                if not actor.is_system:
                    raise Forbidden("only the system may register a root company")
            elif company(conn, parent_id) is None:
                raise NotFound(
                    f"parent company {parent_id} not found", {"parent_id": ["not found"]}
                )
            else:
                require_scope(conn, actor, parent_id)
        with event_meta(**actor.meta()):
            created = Company(name=data["name"].strip(), parent_id=parent_id, region=data["region"])
        self.save(created)
        return self.company(actor, str(created.id))

    def company(self, actor: Actor, company_id: str) -> dict:
        with self.engine.connect() as conn:
            row = company(conn, company_id)
            if row is None:
                raise NotFound(f"company {company_id} not found")
            require_scope(conn, actor, company_id)
        return {k: row._mapping[k] for k in COMPANY_FIELDS}

    def list_companies(
        self, actor: Actor, whole_subtree: bool, parent_id: str | None = None
    ) -> list[dict]:
        """A company and its direct children, or its whole subtree; the actor's company
        unless ``parent_id`` names one of its subtree."""
        with self.engine.connect() as conn:
            root = parent_id or (None if actor.is_system else actor.company_id)
            if root is not None:
                if company(conn, root) is None:
                    raise NotFound(f"company {root} not found", {"parent_id": ["not found"]})
                require_scope(conn, actor, root)
            query = sa.select(company_scope)
            if whole_subtree:
                if root is not None:
                    query = query.where(company_scope.c.company_id.in_(subtree_ids(conn, root)))
            elif root is None:
                query = query.where(company_scope.c.parent_id.is_(None))
            else:
                query = query.where(
                    sa.or_(company_scope.c.parent_id == root, company_scope.c.company_id == root)
                )
            rows = conn.execute(query.order_by(company_scope.c.name)).all()
        return [{k: r._mapping[k] for k in COMPANY_FIELDS} for r in rows]

    # -- devices ---------------------------------------------------------------------------
    def register_device(self, actor: Actor, data: dict) -> dict:
        actor.require("admin", "support")
        problem = expiry_problem(data["expires_at"])
        if problem:
            raise ValidationFailed(f"expires_at: {problem}", {"expires_at": [problem]})
        device_type = data["device_type"].strip()
        with self.engine.connect() as conn:
            if company(conn, data["company_id"]) is None:
                raise NotFound("company not found", {"company_id": ["not found"]})
            require_scope(conn, actor, data["company_id"])
            rule = conn.execute(
                sa.select(type_bindings.c.package_id).where(
                    type_bindings.c.company_id == data["company_id"],
                    type_bindings.c.device_type == device_type,
                    type_bindings.c.active.is_(True),
                    type_bindings.c.follow_new.is_(True),
                )
            ).first()
        with event_meta(**actor.meta()):
            device = Device(
                imei=data["device_id"].strip().upper(),
                device_type=device_type,
                company_id=data["company_id"],
                expires_at=data["expires_at"],
            )
            if rule is not None:  # T3: devices added later of a bound type follow
                device.bind(rule.package_id, by_device_type=True)
        self.save_new(device, what=f"device {data['device_id']}")
        return self.device(actor, device.imei)

    def device(self, actor: Actor, device_id: str) -> dict:
        with self.engine.connect() as conn:
            row = self._device_row(conn, actor, device_id)
            return self._present(conn, [row], clock.now())[0]

    def _present(self, conn: sa.Connection, rows: list, now: datetime) -> list[dict]:
        """Device rows as answered: status worked out now, value-added bindings attached."""
        bindings: dict[str, list[dict]] = defaultdict(list)
        keys = [r.device_key for r in rows if r.value_added_count]
        for chunk in iter_chunks(keys, 1000):
            for b in conn.execute(
                sa.select(value_added)
                .where(value_added.c.device_key.in_(chunk))
                .order_by(value_added.c.bound_at)
            ):
                bindings[b.device_key].append(
                    {
                        "binding_id": b.binding_id,
                        "package_id": b.package_id,
                        "expires_at": b.expires_at,
                        "status": "expired" if b.expires_at <= now else "active",
                    }
                )
        items = []
        for row in rows:
            data = row_dict(row)
            data["status"] = (
                "suspended"
                if data["suspended"]
                else ("expired" if data["expires_at"] <= now else "active")
            )
            data["value_added"] = bindings.get(row.device_key, [])
            items.append(data)
        return items

    def _device_query(
        self, conn: sa.Connection, actor: Actor, filters: dict, now: datetime
    ) -> sa.Select:
        query = sa.select(devices).where(
            self._companies(conn, actor, filters, devices.c.company_id)
        )
        if filters.get("device_type"):
            query = query.where(devices.c.device_type == filters["device_type"])
        if filters.get("package_id"):
            query = query.where(devices.c.package_id == filters["package_id"])
        if filters.get("bound") is not None:
            bound = devices.c.package_id.is_not(None)
            query = query.where(bound if filters["bound"] else sa.not_(bound))
        if filters.get("has_value_added") is not None:
            has = devices.c.value_added_count > 0
            query = query.where(has if filters["has_value_added"] else sa.not_(has))
        if filters.get("q"):
            query = query.where(devices.c.device_id.contains(filters["q"].strip().upper()))
        status = filters.get("status")
        if status == "suspended":
            query = query.where(devices.c.suspended.is_(True))
        elif status == "expired":
            query = query.where(devices.c.suspended.is_(False), devices.c.expires_at <= now)
        elif status == "active":
            query = query.where(devices.c.suspended.is_(False), devices.c.expires_at > now)
        if filters.get("expires_from") is not None:
            query = query.where(devices.c.expires_at >= filters["expires_from"])
        if filters.get("expires_to") is not None:
            query = query.where(devices.c.expires_at <= filters["expires_to"])
        if filters.get("expires_within_days") is not None:
            horizon = now + timedelta(days=filters["expires_within_days"])
            query = query.where(devices.c.expires_at <= horizon)
        return query

    def list_devices(self, actor: Actor, filters: dict) -> dict:
        now = clock.now()
        page, per_page = filters.get("page", 1), filters.get("per_page", 50)
        with self.engine.connect() as conn:
            query = self._device_query(conn, actor, filters, now)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            order = (
                (devices.c.suspended_at.desc(), devices.c.device_id)
                if filters.get("status") == "suspended"
                else (devices.c.expires_at, devices.c.device_id)
            )
            rows = conn.execute(
                query.order_by(*order).limit(per_page).offset((page - 1) * per_page)
            ).all()
            items = self._present(conn, rows, now)
        return {"items": items, "total": total, "page": page, "per_page": per_page}

    def devices_for_order(self, actor: Actor, device_ids: list[str]) -> list[dict]:
        """What billing needs to price a renewal order, scope-checked here."""
        now = clock.now()
        with self.engine.connect() as conn:
            rows = self._resolve(conn, actor, device_ids)
            return [
                {
                    k: item[k]
                    for k in (
                        "device_id",
                        "company_id",
                        "package_id",
                        "status",
                        "expires_at",
                        "value_added",
                    )
                }
                for item in self._present(conn, rows, now)
            ]

    # -- T1: expiry maintenance ------------------------------------------------------------
    def change_expiry(self, actor: Actor, device_id: str, data: dict) -> dict:
        actor.require("support", "admin")
        with self.engine.connect() as conn:
            key = self._device_row(conn, actor, device_id).device_key

        def command() -> list[Device]:
            device = self.repository.get(UUID(key))
            try:
                with event_meta(**actor.meta()):
                    changed = device.change_expiry(data["expires_at"], data["reason"])
            except DeviceRefused as exc:
                raise ValidationFailed(str(exc), {"expires_at": [str(exc)]}) from exc
            return [device] if changed else []

        self.retrying(command)
        return self.device(actor, device_id)

    def expiry_history(self, actor: Actor, device_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            row = self._device_row(conn, actor, device_id)
            entries = conn.execute(
                sa.select(expiry_history)
                .where(expiry_history.c.device_key == row.device_key)
                .order_by(expiry_history.c.changed_at.desc(), expiry_history.c.entry_id.desc())
            ).all()
        return [{**row_dict(e), "device_id": row.device_id} for e in entries]

    # -- S3: bulk expiry files ---------------------------------------------------------------
    def expiry_template(self) -> bytes:
        return excel.expiry_template()

    def import_expiry(
        self, actor: Actor, file_name: str, content: bytes, dry_run: bool = False
    ) -> dict:
        """Apply a filled template: every row checked first; any bad row changes nothing
        and the refusal lists every bad row (``rows.<row>.<column>``: reason)."""
        actor.require("sales", "support", "admin")
        parsed = excel.read_expiry_file(content, cooperate=_cooperate)
        self.catch_up()
        for _attempt in range(5):
            errors = list(parsed.errors)
            found = self._import_targets([device_id for _, device_id in parsed.ids])
            with self.engine.connect() as conn:
                scope = self._scope(conn, actor)
            first_row: dict[str, int] = {}
            for number, device_id in parsed.ids:
                view = found.get(device_id)
                if device_id in first_row:
                    reason = f"duplicate of row {first_row[device_id]}"
                    errors.append(excel.RowError(number, "device_id", reason))
                    continue
                first_row[device_id] = number
                if view is None or (scope is not None and view.company_id not in scope):
                    reason = "no such device in your company and its subsidiaries"
                    errors.append(excel.RowError(number, "device_id", reason))
            for row in parsed.rows:
                problem = expiry_problem(row.expires_at)
                if problem:
                    errors.append(excel.RowError(row.row, "expires_at", problem))
            if errors:
                raise _report(errors)
            summary = {
                "import_id": None,
                "file_name": file_name,
                "rows": len(parsed.rows),
                "blank_rows": parsed.blank_rows,
                "changed": 0,
                "unchanged": 0,
                "dry_run": dry_run,
            }
            todo = [(r, found[r.device_id]) for r in parsed.rows]
            changes = [(r, v) for r, v in todo if v.expires_at != r.expires_at]
            summary["changed"], summary["unchanged"] = len(changes), len(todo) - len(changes)
            if dry_run or not changes:
                return summary
            try:
                import_id = self._apply_import(actor, file_name, len(parsed.rows), changes)
            except IntegrityError:
                self.catch_up()  # a device changed meanwhile: check again with its new version
                continue
            del found, todo, changes  # before the view catches up with 100,000 events
            self.catch_up()
            summary["import_id"] = import_id
            return summary
        raise Conflict("the devices kept changing during the import; try again")

    def _apply_import(
        self, actor: Actor, file_name: str, total: int, changes: list[tuple[Any, Target]]
    ) -> str:
        """Save the import record and every device's expiry change in one atomic write."""
        with event_meta(**actor.meta()):
            meta = current_meta()  # one dict shared by every row's event
            record = ExpiryImport(
                file_name=file_name,
                total_rows=total,
                rows=[
                    [
                        v.device_key,
                        v.device_id,
                        v.company_id,
                        v.version + 1,
                        v.expires_at.isoformat(),
                        r.expires_at.isoformat(),
                        r.reason or "bulk import",
                    ]
                    for r, v in changes
                ],
            )
        import_id = str(record.id)
        events = [
            Device.imported_expiry(
                UUID(v.device_key),
                v.version,
                v.expires_at,
                r.expires_at,
                r.reason or "bulk import",
                import_id,
                meta=meta,
            )
            for r, v in changes
        ]
        # The record first: its rows update the device list at once. Stored straight into
        # the event store (what save() does for plain events, minus a per-object type
        # check that costs ~1 s here) and without the view's catch-up, which the caller
        # runs once these 100,000 objects are released.
        self.events.put([*record.collect_events(), *events])
        return import_id

    # -- C5: suspension ------------------------------------------------------------------------
    def suspend(self, actor: Actor, device_ids: Iterable[str], reason: str | None = None) -> dict:
        """Suspend devices (one, or a pasted batch: all or nothing)."""
        actor.require("customer", "support", "admin")
        changed, unchanged = self._change_devices(actor, device_ids, lambda d: d.suspend(reason))
        return {
            "suspended": [d.imei for d in changed],
            "already_suspended": [d.imei for d in unchanged],
        }

    def reenable(self, actor: Actor, device_ids: Iterable[str], reason: str | None = None) -> dict:
        actor.require("customer", "support", "admin")
        changed, unchanged = self._change_devices(actor, device_ids, lambda d: d.reenable(reason))
        return {
            "reenabled": [d.imei for d in changed],
            "not_suspended": [d.imei for d in unchanged],
        }

    # -- T3: renewal bindings ----------------------------------------------------------------
    def _package(self, lookup: PackageLookup, package_id: str, kind: str) -> dict:
        package = lookup(package_id)
        if package["kind"] != kind:
            what = "a renewal" if kind == "renewal" else "a value-added"
            raise ValidationFailed(
                f"package_id: not {what} package", {"package_id": [f"not {what} package"]}
            )
        if not package.get("on_sale", True):
            raise Conflict("the package is withdrawn from sale", {"package_id": ["withdrawn"]})
        return package

    def _type_keys(
        self, conn: sa.Connection, actor: Actor, company_id: str, device_type: str
    ) -> list[str]:
        if company(conn, company_id) is None:
            raise NotFound(f"company {company_id} not found", {"company_id": ["not found"]})
        require_scope(conn, actor, company_id)
        return list(
            conn.execute(
                sa.select(devices.c.device_key).where(
                    devices.c.company_id == company_id, devices.c.device_type == device_type
                )
            ).scalars()
        )

    def bind_package(self, actor: Actor, data: dict, lookup_package: PackageLookup) -> dict:
        """T3: bind a renewal package to chosen devices, or to every device of a device type
        in a company (and, with ``follow_new``, to those registered later)."""
        actor.require("support", "admin")
        package_id = self._package(lookup_package, data["package_id"], "renewal")["package_id"]
        if data.get("device_ids"):
            changed, unchanged = self._change_devices(
                actor, data["device_ids"], lambda d: d.bind(package_id)
            )
            return {
                "package_id": package_id,
                "bound": [d.imei for d in changed + unchanged],
                "changed": len(changed),
            }
        company_id, device_type = data["company_id"], data["device_type"].strip()
        with self.engine.connect() as conn:
            keys = self._type_keys(conn, actor, company_id, device_type)
        result: dict[str, list] = {}

        def command() -> list:
            loaded = self._load_devices(keys)
            rule = self.find(TypeBinding.create_id(company_id, device_type))
            with event_meta(**actor.meta()):
                changed = [d for d in loaded if d.bind(package_id, by_device_type=True)]
                follow = bool(data.get("follow_new", True))
                if rule is None and follow:
                    rule = TypeBinding(company_id, device_type, package_id, follow_new=True)
                elif rule is not None and follow:
                    if not rule.active or rule.package_id != package_id or not rule.follow_new:
                        rule.change(package_id=package_id, follow_new=True)
                elif rule is not None and rule.active:
                    rule.end()  # bound once, without following: later devices stay unbound
            result["bound"] = [d.imei for d in loaded]
            result["changed"] = changed
            return [*changed, rule] if rule is not None and rule.pending_events else changed

        self.retrying(command)
        return {
            "package_id": package_id,
            "bound": result["bound"],
            "changed": len(result["changed"]),
            "company_id": company_id,
            "device_type": device_type,
            "follow_new": bool(data.get("follow_new", True)),
        }

    def unbind_package(self, actor: Actor, data: dict) -> dict:
        """T3: unbind chosen devices, or every device of a type in a company (which also
        stops devices registered later from following)."""
        actor.require("support", "admin")
        if data.get("device_ids"):
            changed, _ = self._change_devices(actor, data["device_ids"], lambda d: d.unbind())
            return {"unbound": [d.imei for d in changed]}
        company_id, device_type = data["company_id"], data["device_type"].strip()
        with self.engine.connect() as conn:
            keys = self._type_keys(conn, actor, company_id, device_type)
        result: dict[str, list] = {}

        def command() -> list:
            loaded = self._load_devices(keys)
            rule = self.find(TypeBinding.create_id(company_id, device_type))
            refused = []
            with event_meta(**actor.meta()):
                changed = []
                for device in loaded:
                    try:
                        if device.unbind():
                            changed.append(device)
                    except DeviceRefused as exc:
                        refused.append(f"{device.imei}: {exc}")
                if refused:
                    raise Conflict(
                        f"{len(refused)} devices cannot be unbound; nothing was changed",
                        {"device_ids": refused},
                    )
                if rule is not None and rule.active:
                    rule.end()
            result["changed"] = changed
            return [*changed, rule] if rule is not None and rule.pending_events else changed

        self.retrying(command)
        return {"unbound": [d.imei for d in result["changed"]]}

    def type_bindings(self, actor: Actor, company_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            if company(conn, company_id) is None:
                raise NotFound(f"company {company_id} not found")
            require_scope(conn, actor, company_id)
            rows = conn.execute(
                sa.select(type_bindings)
                .where(type_bindings.c.company_id == company_id, type_bindings.c.active.is_(True))
                .order_by(type_bindings.c.device_type)
            ).all()
        return [row_dict(r) for r in rows]

    def export_bindings(self, actor: Actor, filters: dict) -> tuple[str, bytes]:
        """T3: the filtered device list with its bindings, as an .xlsx workbook."""
        actor.require("support", "admin", "sales")
        now = clock.now()
        with self.engine.connect() as conn:
            query = self._device_query(conn, actor, filters, now)
            names = dict(
                conn.execute(sa.select(company_scope.c.company_id, company_scope.c.name)).all()
            )
            rows = conn.execute(
                query.order_by(devices.c.company_id, devices.c.device_id).limit(excel.MAX_ROWS)
            ).all()
            items = self._present(conn, rows, now)
        table = (
            [
                item["device_id"],
                item["device_type"],
                names.get(item["company_id"], item["company_id"]),
                item["status"],
                item["expires_at"],
                item["package_id"],
                ("device type" if item["bound_by_device_type"] else "device")
                if item["package_id"]
                else None,
                ", ".join(b["package_id"] for b in item["value_added"]) or None,
            ]
            for item in items
        )
        content = excel.write_table(
            "Renewal bindings",
            [
                "Device ID",
                "Device type",
                "Company",
                "Status",
                "Expires at (UTC)",
                "Renewal package",
                "Bound by",
                "Value-added packages",
            ],
            table,
        )
        return f"renewal-bindings-{now:%Y%m%d-%H%M%S}.xlsx", content

    # -- T4: value-added bindings ------------------------------------------------------------
    def add_value_added(self, actor: Actor, data: dict, lookup_package: PackageLookup) -> dict:
        """T4: add a value-added package to devices that have a renewal package."""
        actor.require("support", "admin")
        package_id = self._package(lookup_package, data["package_id"], "value_added")["package_id"]
        expires_at = data.get("expires_at") or clock.now()
        problem = expiry_problem(expires_at)
        if problem:
            raise ValidationFailed(f"expires_at: {problem}", {"expires_at": [problem]})
        made: dict[str, tuple[str, bool]] = {}

        def add(device: Device) -> bool:
            made[device.imei] = device.add_value_added(package_id, expires_at)
            return made[device.imei][1]

        changed, unchanged = self._change_devices(actor, data["device_ids"], add)
        return {
            "package_id": package_id,
            "bindings": [
                {
                    "device_id": d.imei,
                    "binding_id": made[d.imei][0],
                    "new": made[d.imei][1],
                    "expires_at": d.value_added[made[d.imei][0]]["expires_at"],
                }
                for d in changed + unchanged
            ],
        }

    def remove_value_added(self, actor: Actor, binding_ids: list[str]) -> dict:
        actor.require("support", "admin")
        wanted = list(dict.fromkeys(binding_ids))
        with self.engine.connect() as conn:
            rows = {
                r.binding_id: r
                for chunk in iter_chunks(wanted, 1000)
                for r in conn.execute(
                    sa.select(value_added).where(value_added.c.binding_id.in_(chunk))
                )
            }
            scope = self._scope(conn, actor)
        unknown = [
            b
            for b in wanted
            if b not in rows or (scope is not None and rows[b].company_id not in scope)
        ]
        if unknown:
            raise NotFound(
                f"{len(unknown)} value-added bindings not found; nothing was changed",
                {"binding_ids": [f"{b}: not found" for b in unknown]},
            )
        by_device: dict[str, set[str]] = defaultdict(set)
        for b in wanted:
            by_device[rows[b].device_id].add(b)

        def remove(device: Device) -> bool:
            return any([device.remove_value_added(b) for b in sorted(by_device[device.imei])])

        self._change_devices(actor, list(by_device), remove)
        return {"removed": wanted}

    def _value_added_query(
        self, conn: sa.Connection, actor: Actor, filters: dict, now: datetime
    ) -> sa.Select:
        query = (
            sa.select(value_added, devices.c.device_type, devices.c.suspended)
            .join(devices, devices.c.device_key == value_added.c.device_key)
            .where(self._companies(conn, actor, filters, value_added.c.company_id))
        )
        if filters.get("package_id"):
            query = query.where(value_added.c.package_id == filters["package_id"])
        if filters.get("device_type"):
            query = query.where(devices.c.device_type == filters["device_type"])
        if filters.get("q"):
            query = query.where(value_added.c.device_id.contains(filters["q"].strip().upper()))
        if filters.get("status") == "expired":
            query = query.where(value_added.c.expires_at <= now)
        elif filters.get("status") == "active":
            query = query.where(value_added.c.expires_at > now)
        return query

    def list_value_added(self, actor: Actor, filters: dict) -> dict:
        now = clock.now()
        page, per_page = filters.get("page", 1), filters.get("per_page", 50)
        with self.engine.connect() as conn:
            query = self._value_added_query(conn, actor, filters, now)
            total = conn.execute(
                sa.select(sa.func.count()).select_from(query.subquery())
            ).scalar_one()
            rows = conn.execute(
                query.order_by(value_added.c.expires_at, value_added.c.binding_id)
                .limit(per_page)
                .offset((page - 1) * per_page)
            ).all()
        return {
            "items": [_binding(r, now) for r in rows],
            "total": total,
            "page": page,
            "per_page": per_page,
        }

    def value_added_for_order(self, actor: Actor, binding_ids: list[str]) -> list[dict]:
        """What billing needs to price a value-added order, scope-checked here."""
        now = clock.now()
        wanted = list(dict.fromkeys(binding_ids))
        with self.engine.connect() as conn:
            rows = {
                r.binding_id: r
                for chunk in iter_chunks(wanted, 1000)
                for r in conn.execute(
                    sa.select(value_added, devices.c.device_type, devices.c.suspended)
                    .join(devices, devices.c.device_key == value_added.c.device_key)
                    .where(value_added.c.binding_id.in_(chunk))
                )
            }
            scope = self._scope(conn, actor)
        unknown = [
            b
            for b in wanted
            if b not in rows or (scope is not None and rows[b].company_id not in scope)
        ]
        if unknown:
            raise NotFound(
                f"{len(unknown)} value-added bindings not found",
                {"binding_ids": [f"{b}: not found" for b in unknown]},
            )
        return [_binding(rows[b], now) for b in wanted]

    # -- the clock -----------------------------------------------------------------------------
    def expire_due(self, now: datetime | None = None) -> int:
        """Record device_expired for each device past its expiry, once per expiry."""
        now = now or clock.now()
        with self.engine.connect() as conn:
            keys = list(
                conn.execute(
                    sa.select(devices.c.device_key).where(
                        devices.c.suspended.is_(False),
                        devices.c.expires_at <= now,
                        sa.or_(
                            devices.c.expired_notice_for.is_(None),
                            devices.c.expired_notice_for != devices.c.expires_at,
                        ),
                    )
                ).scalars()
            )
        return self._mark(keys, lambda d: d.mark_expired(now))

    def remind_due(self, now: datetime | None = None) -> int:
        """Record device_expiring for each device within ``expiring_days`` of its expiry,
        once per expiry (the reminders' trigger)."""
        now = now or clock.now()
        horizon = now + timedelta(days=self.expiring_days)
        with self.engine.connect() as conn:
            keys = list(
                conn.execute(
                    sa.select(devices.c.device_key).where(
                        devices.c.suspended.is_(False),
                        devices.c.expires_at > now,
                        devices.c.expires_at <= horizon,
                        sa.or_(
                            devices.c.expiring_notice_for.is_(None),
                            devices.c.expiring_notice_for != devices.c.expires_at,
                        ),
                    )
                ).scalars()
            )
        return self._mark(keys, lambda d: d.mark_expiring(now, self.expiring_days))

    def _mark(self, keys: list[str], mark: Callable[[Device], bool]) -> int:
        """Record a notice on each device, once, even with two replicas marking at once.

        Devices are saved 500 at a time; if another replica saved one of them first, the
        batch collides and each device is retried alone (reloaded: the notice is there).
        """
        marked = 0
        for chunk in iter_chunks(keys, 500):
            found = [d for d in self._load_devices(chunk) if mark(d)]
            if not found:
                continue
            try:
                self.save(*found)
                marked += len(found)
                continue
            except IntegrityError:
                pass
            for key in chunk:
                device = self.repository.get(UUID(key))
                if mark(device):
                    try:
                        self.save(device)
                        marked += 1
                    except IntegrityError:
                        pass  # another replica got there first
        return marked

    # -- reactions -----------------------------------------------------------------------------
    def apply_paid_order(self, message_id: str, order: dict) -> bool:
        """Extend each line's device (or value-added binding) once; record the outcome,
        refused lines included, so billing can refund them to balance."""
        value_added_order = order.get("order_type") == "value_added"

        def effect() -> list:
            if self.find(RenewalApplied.create_id(order["order_id"])) is not None:
                return []
            changed: dict[UUID, Device] = {}
            outcome = []
            for line in order["lines"]:
                key = device_key(line["device_id"])
                device = changed.get(key) or self.find(key)
                result = {
                    "line_id": line["line_id"],
                    "device_id": line["device_id"],
                    "months": line["months"],
                    "amount": line["amount"],
                    "old_expires_at": None,
                    "new_expires_at": None,
                    "reason": None,
                    "binding_id": line.get("binding_id"),
                }
                if device is None:
                    outcome.append({**result, "outcome": "refused", "reason": "unknown device"})
                    continue
                try:
                    if value_added_order:
                        binding_id = line.get("binding_id") or device.value_added_binding(
                            line["package_id"]
                        )
                        if binding_id is None:
                            raise DeviceRefused(
                                "the value-added package is not bound to the device"
                            )
                        result["binding_id"] = binding_id
                        old, new = device.renew_value_added(
                            binding_id,
                            order["order_id"],
                            line["line_id"],
                            line["months"],
                            order["paid_at"],
                        )
                    else:
                        old = device.expires_at
                        new = device.renew(
                            order["order_id"], line["line_id"], line["months"], order["paid_at"]
                        )
                except DeviceRefused as exc:
                    outcome.append(
                        {
                            **result,
                            "outcome": "refused",
                            "reason": str(exc),
                            "old_expires_at": device.expires_at,
                        }
                    )
                    continue
                changed[key] = device
                outcome.append(
                    {**result, "outcome": "renewed", "old_expires_at": old, "new_expires_at": new}
                )
            applied = RenewalApplied(
                order_id=order["order_id"],
                order_number=order["order_number"],
                company_id=order["company_id"],
                currency=order["currency"],
                total=order["total"],
                paid_at=order["paid_at"],
                lines=outcome,
            )
            return [applied, *changed.values()]

        return self.handle_once("devices.order_paid", message_id, effect)


def _binding(row: Any, now: datetime) -> dict:
    data = row_dict(row)
    data["binding_status"] = "expired" if row.expires_at <= now else "active"
    data["status"] = "suspended" if row.suspended else data["binding_status"]
    return data


def _report(errors: list[excel.RowError]) -> ValidationFailed:
    """Every bad row of a file, as field errors keyed ``rows.<row>.<column>``."""
    fields: dict[str, list[str]] = {}
    for error in sorted(errors, key=lambda e: (e.row, excel.HEADERS.index(e.column))):
        fields.setdefault(f"rows.{error.row}.{error.column}", []).append(error.reason)
    rows = len({e.row for e in errors})
    return ValidationFailed(f"{rows} rows of the file are wrong; nothing was changed", fields)
