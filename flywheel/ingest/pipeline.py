"""The one processing path of ingested records: identities, schema, profiles, items, events.

The inbox processor (HTTP ingest) ends in :func:`apply_records`, and so do the record-level
parts of bulk import and the demo (items, sign-ups, profiles with identities). Bulk *event*
rows take the vectorised path in :mod:`flywheel.ingest.bulk` instead (same validation rules and
schema registry, identities resolved in bulk, one warehouse append per batch). Per batch it

1. checks every record's properties against the schema registry (first value fixes the type);
   a misfit rejects that record alone, with its reason kept in ``ingest_rejections``;
2. resolves identities through the ID-Mapping graph (binds, merges, unbinds, conflicts);
3. applies profile operations (Sensors semantics) and item operations to the operational store;
4. builds the warehouse rows (events, latest profiles, items) as Arrow tables and stages them in
   the warehouse outbox, in the same transaction as 1-3;
5. drains the outbox into the warehouse (events anti-joined on id, so a replay never
   duplicates).

No per-row SQL: identities are prefetched in bulk, profiles loaded and saved in bulk, and each
batch is one Arrow append per table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import structlog
from sqlalchemy.orm import Session

from flywheel.core.clock import utc_naive
from flywheel.core.errors import InvalidInput
from flywheel.identity import service as identity
from flywheel.ingest import feed
from flywheel.ingest import service as ingest_service
from flywheel.ingest.records import EVENT_TYPES, ITEM_TYPES, PROFILE_TYPES, IngestRecord
from flywheel.profiles import mirror
from flywheel.profiles import service as profiles
from flywheel.runtime import Runtime
from flywheel.warehouse.engine import PropertyType, TableKind

log = structlog.get_logger(__name__)

#: Event names of identity records sent without one.
DEFAULT_EVENT_NAMES: dict[str, str] = {
    "track_signup": "$SignUp",
    "track_id_bind": "$BindID",
    "track_id_unbind": "$UnbindID",
}


@dataclass
class ApplyResult:
    """What a batch did: records accepted, records rejected as ``(reason, raw)``."""

    accepted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    events: int = 0
    conflicts: int = 0
    new_users: int = 0


def apply_records(
    runtime: Runtime, *, project_id: int, records: Sequence[IngestRecord], source: str
) -> ApplyResult:
    """Apply validated records to the project: the single per-record processing path.

    An entry-point-level function: it commits its own unit of work (operational changes,
    rejections and the staged warehouse rows together), then drains the staged rows into the
    warehouse. Bad records are rejected one by one (kept with their reason under ``source``);
    the rest of the batch proceeds. Idempotent for events: re-applying records with the same
    event ids adds no duplicate events (profile operations are applied again, as Sensors does).

    Once the unit of work committed the batch is durable: if the warehouse write then fails,
    the staged rows stay in the outbox and the next drain (the processor loop, or the next
    call) writes them; the failure is logged, not raised.
    """
    with runtime.db.unit_of_work() as session:
        result = stage_records(
            session=session,
            project_id=project_id,
            records=records,
            sources=source,
            now=runtime.clock(),
        )
    try:
        mirror.drain(db=runtime.db, warehouse=runtime.warehouse)
    except Exception:
        log.exception("warehouse_outbox_drain_failed", project_id=project_id)
    return result


def identities_of(record: IngestRecord) -> dict[str, str]:
    """The identities a record carries, IDM 3 (``identities``) and IDM 2 fields combined.

    ``login_id`` → ``$identity_login_id``, ``anonymous_id`` → ``$identity_anonymous_id``;
    ``track_signup`` adds ``distinct_id`` as the login id and ``original_id`` as the anonymous
    id; a bare ``distinct_id`` counts as an anonymous id.
    """
    ids = {k: v for k, v in record.identities.items() if isinstance(v, str) and v}
    if record.type == "track_id_unbind" and ids:
        return ids
    if record.login_id:
        ids.setdefault(identity.LOGIN_KEY, record.login_id)
    if record.anonymous_id:
        ids.setdefault(identity.ANONYMOUS_KEY, record.anonymous_id)
    if record.type == "track_signup":
        if record.distinct_id:
            ids.setdefault(identity.LOGIN_KEY, record.distinct_id)
        if record.original_id:
            ids.setdefault(identity.ANONYMOUS_KEY, record.original_id)
    if not ids and record.distinct_id:
        ids[identity.ANONYMOUS_KEY] = record.distinct_id
    return ids


@dataclass
class _Op:
    record: IngestRecord
    user_id: int
    properties: dict[str, Any]
    distinct_id: str | None


def stage_records(
    *,
    session: Session,
    project_id: int,
    records: Sequence[IngestRecord],
    sources: str | Sequence[str],
    now: datetime,
) -> ApplyResult:
    """Apply records in ``session`` (flush only) and stage their warehouse rows in the outbox.

    ``sources`` names where the records came from (one name, or one per record) for
    rejections. The caller commits, then calls :func:`flywheel.profiles.mirror.drain`.
    """
    result = ApplyResult()
    rules = identity.key_rules(session=session, project_id=project_id)
    graph = identity.IdentityGraph(session=session, project_id=project_id, rules=rules, now=now)
    checker = profiles.PropertyChecker(profiles.load_schema(session=session, project_id=project_id))
    rejected: list[tuple[int, str]] = []

    usable: list[list[tuple[str, str]]] = []
    for record in records:
        usable.append([] if record.type in ITEM_TYPES else graph.usable(identities_of(record)))
    graph.prefetch(pair for ids in usable for pair in ids)
    graph.preload_holdings(usable)

    ops: list[_Op] = []
    items: dict[tuple[str, str], dict[str, Any] | None] = {}
    for index, (record, ids) in enumerate(zip(records, usable, strict=True)):
        try:
            properties = _checked(record, ids, checker)
        except InvalidInput as exc:
            rejected.append((index, exc.message))
            continue
        result.accepted += 1
        if record.type in ITEM_TYPES:
            assert record.item_type is not None and record.item_id is not None
            items[(record.item_type, record.item_id)] = (
                properties if record.type == "item_set" else None
            )
            continue
        if record.type == "track_id_unbind":
            held = [graph.unbind(k, v) for k, v in ids]
            user_id = next((u for u in held if u is not None), None)
            if user_id is None:
                user_id = graph.new_user()
        else:
            user_id = graph.resolve(ids, event_id=record.event_id)
        ops.append(_Op(record, user_id, properties, record.distinct_id or ids[0][1]))

    result.conflicts = len(graph.conflicts)
    state = _profile_state(session, project_id, ops)
    mapping = graph.flush()
    result.new_users = len(mapping)
    state = {mapping.get(u, u): p for u, p in state.items()}
    for op in ops:
        op.user_id = mapping.get(op.user_id, op.user_id)

    profiles.save_profiles(session=session, project_id=project_id, profiles=state, now=now)
    profiles.save_items(session=session, project_id=project_id, items=items, now=now)
    checker.flush(session=session, project_id=project_id)

    events = _events_table(session, project_id, ops, checker.types[TableKind.EVENTS], now)
    feed.publish(session=session, project_id=project_id, events=_live_events(ops))
    result.events = events.num_rows if events is not None else 0
    batch = mirror.WarehouseBatch(
        events=events,
        users=_users_table(state, checker.types[TableKind.USERS], now),
        deleted_users=sorted(u for u, p in state.items() if p is None),
        items=_items_table(items, checker.types[TableKind.ITEMS], now),
    )
    mirror.enqueue(session=session, project_id=project_id, batch=batch, now=now)

    if rejected:
        by_source: dict[str, list[tuple[str, str]]] = {}
        for index, reason in rejected:
            source = sources if isinstance(sources, str) else sources[index]
            raw = records[index].to_json().decode()
            by_source.setdefault(source, []).append((reason, raw))
            result.rejected.append((reason, raw))
        for source, rejections in by_source.items():
            ingest_service.record_rejections(
                session=session, project_id=project_id, source=source, rejections=rejections
            )
    session.flush()
    log.info(
        "ingest_batch_applied",
        project_id=project_id,
        accepted=result.accepted,
        rejected=len(result.rejected),
        events=result.events,
        new_users=result.new_users,
        conflicts=result.conflicts,
    )
    return result


def _checked(
    record: IngestRecord, ids: Sequence[tuple[str, str]], checker: profiles.PropertyChecker
) -> dict[str, Any]:
    """The record's normalised properties; :class:`InvalidInput` with the reason to reject."""
    if record.type in ITEM_TYPES:
        if not record.item_type or not record.item_id:
            raise InvalidInput(f"{record.type} needs item_type and item_id")
        if len(record.item_type) > 100 or len(record.item_id) > 255:
            raise InvalidInput("item_type is at most 100 characters and item_id 255")
        if record.type == "item_delete":
            return {}
        return checker.check(TableKind.ITEMS, record.properties)
    if not ids:
        raise InvalidInput(
            "no identity: distinct_id, login_id, anonymous_id or an enabled identities key "
            "is required"
        )
    for key, value in ids:
        if len(key) > 100:
            raise InvalidInput("identity keys are at most 100 characters")
        if len(value) > identity.MAX_VALUE_LENGTH:
            raise InvalidInput(f"identity {key} longer than {identity.MAX_VALUE_LENGTH} characters")
    if record.type in EVENT_TYPES:
        if record.type == "track" and not record.event:
            raise InvalidInput("track record without an event name")
        if record.event and len(record.event) > 100:
            raise InvalidInput("event names are at most 100 characters")
        return checker.check(TableKind.EVENTS, record.properties)
    if record.type == "profile_increment":
        return checker.check(TableKind.USERS, record.properties, expect=PropertyType.NUMBER)
    if record.type == "profile_append":
        return checker.check(TableKind.USERS, record.properties, expect=PropertyType.LIST)
    if record.type == "profile_unset":
        return dict.fromkeys(record.properties)
    if record.type == "profile_delete":
        return {}
    return checker.check(TableKind.USERS, record.properties)


def _profile_state(
    session: Session, project_id: int, ops: Sequence[_Op]
) -> dict[int, dict[str, Any] | None]:
    """Profiles after the batch's profile operations, for every user they touched."""
    profile_ops = [op for op in ops if op.record.type in PROFILE_TYPES]
    if not profile_ops:
        return {}
    current = profiles.load_profiles(
        session=session,
        project_id=project_id,
        user_ids=[op.user_id for op in profile_ops if op.user_id > 0],
    )
    state: dict[int, dict[str, Any] | None] = {}
    for op in profile_ops:
        before = state[op.user_id] if op.user_id in state else current.get(op.user_id)
        state[op.user_id] = profiles.apply_profile_operation(before, op.record.type, op.properties)
    return state


def _events_table(
    session: Session,
    project_id: int,
    ops: Sequence[_Op],
    types: Mapping[str, PropertyType],
    now: datetime,
) -> pa.Table | None:
    base: dict[str, list[Any]] = {
        "id": [],
        "user_id": [],
        "distinct_id": [],
        "event": [],
        "time": [],
        "$receive_time": [],
    }
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    received = utc_naive(now)
    for op in ops:
        record = op.record
        if record.type not in EVENT_TYPES or record.event_id in seen:
            continue
        seen.add(record.event_id)
        name = record.event or DEFAULT_EVENT_NAMES.get(record.type, record.type)
        base["id"].append(record.event_id)
        base["user_id"].append(op.user_id)
        base["distinct_id"].append(op.distinct_id)
        base["event"].append(name)
        base["time"].append(utc_naive(record.time))
        base["$receive_time"].append(received)
        rows.append(op.properties)
        pairs.add((name, ""))
        pairs.update((name, p) for p in op.properties)
    if not rows:
        return None
    profiles.register_event_properties(session=session, project_id=project_id, pairs=pairs)
    return mirror.build_table(TableKind.EVENTS, base, rows, types)


def _live_events(ops: Sequence[_Op]) -> list[feed.LiveEvent]:
    """The events among ``ops``, for live consumers (journey triggers, waits, goals)."""
    seen: set[str] = set()
    found: list[feed.LiveEvent] = []
    for op in ops:
        record = op.record
        if record.type not in EVENT_TYPES or record.event_id in seen:
            continue
        seen.add(record.event_id)
        found.append(
            feed.LiveEvent(
                event_id=record.event_id,
                user_id=op.user_id,
                event=record.event or DEFAULT_EVENT_NAMES.get(record.type, record.type),
                time=record.time,
                properties=op.properties,
            )
        )
    return found


def _users_table(
    state: Mapping[int, dict[str, Any] | None], types: Mapping[str, PropertyType], now: datetime
) -> pa.Table | None:
    live = [(u, p) for u, p in state.items() if p is not None]
    if not live:
        return None
    moment = utc_naive(now)
    base: dict[str, list[Any]] = {
        "user_id": [u for u, _ in live],
        "$update_time": [moment] * len(live),
    }
    return mirror.build_table(TableKind.USERS, base, [p for _, p in live], types)


def _items_table(
    items: Mapping[tuple[str, str], dict[str, Any] | None],
    types: Mapping[str, PropertyType],
    now: datetime,
) -> pa.Table | None:
    if not items:
        return None
    moment = utc_naive(now)
    keys = list(items)
    base: dict[str, list[Any]] = {
        "item_type": [t for t, _ in keys],
        "item_id": [i for _, i in keys],
        "$update_time": [moment] * len(keys),
        "$is_deleted": [items[k] is None for k in keys],
    }
    return mirror.build_table(TableKind.ITEMS, base, [items[k] or {} for k in keys], types)


def set_profile_properties(
    *, session: Session, project_id: int, values: Mapping[int, Mapping[str, Any]], now: datetime
) -> int:
    """``profile_set`` on customers known by user id (e.g. a journey's set-property node), in
    the caller's transaction, with the warehouse mirror staged in the same transaction.

    :class:`InvalidInput` when a value does not fit the property's registered type.
    """
    if not values:
        return 0
    checker = profiles.PropertyChecker(profiles.load_schema(session=session, project_id=project_id))
    current = profiles.load_profiles(session=session, project_id=project_id, user_ids=values)
    state: dict[int, dict[str, Any] | None] = {}
    for user_id, props in values.items():
        checked = checker.check(TableKind.USERS, props)
        state[user_id] = profiles.apply_profile_operation(
            current.get(user_id), "profile_set", checked
        )
    profiles.save_profiles(session=session, project_id=project_id, profiles=state, now=now)
    checker.flush(session=session, project_id=project_id)
    batch = mirror.WarehouseBatch(users=_users_table(state, checker.types[TableKind.USERS], now))
    mirror.enqueue(session=session, project_id=project_id, batch=batch, now=now)
    return len(state)
