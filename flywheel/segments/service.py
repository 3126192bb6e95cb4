"""Segments (圈人): preview, create (rule, tags, upload, analysis), refresh with membership diff
events, counts, members and audited CSV export.

Membership lives in the operational table ``segment_members`` (what has been announced) and is
copied to the warehouse table ``p{project}_segment_members`` (what rules and exports read).
Refreshing a dynamic segment stages one ``$SegmentEnter`` / ``$SegmentLeave`` event per changed
customer for ``p{project}_events`` (properties ``segment_id``, ``segment_name``) and queues it
in the live feed, so journeys and analytics see membership changes like any other event.

A principal limited to branches or to one advisor counts, previews and exports only their
customers (``auth.scope``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import time as monotonic
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import structlog
from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth.pii import authorize_reveal, mask_properties
from flywheel.auth.schemas import Principal
from flywheel.auth.scope import ADVISOR_PROPERTY, BRANCH_PROPERTY, is_unrestricted, scope_predicate
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, FlywheelError, InvalidInput, NotFound
from flywheel.ingest import feed
from flywheel.profiles import mirror
from flywheel.rules.compiler import Compiled, Tables, compile_rule
from flywheel.rules.schema import InvalidRule, RuleGroup, parse, referenced_segments
from flywheel.segments.models import Segment, SegmentMember, SegmentRun
from flywheel.segments.schemas import (
    CountOut,
    MembersOut,
    PreviewOut,
    RefreshOut,
    SegmentIn,
    SegmentOut,
    SegmentRunOut,
    SegmentUpdate,
)
from flywheel.store import bulk
from flywheel.tags import service as tags
from flywheel.warehouse import PropertyType, TableKind, Warehouse
from flywheel.warehouse.engine import BASE_ARROW, quote_ident

log = structlog.get_logger(__name__)

ENTER_EVENT = "$SegmentEnter"
LEAVE_EVENT = "$SegmentLeave"
DEFAULT_EXPORT_COLUMNS = ("name", "mobile", "branch", "advisor_id", "risk_tolerance")
MAX_EXPORT_ROWS = 1_000_000
_MIRROR_CHUNK = 5000
_MEMBERS_TABLE: Table = SegmentMember.__table__  # type: ignore[assignment]


# -- helpers --------------------------------------------------------------------------------


def _get(session: Session, project_id: int, segment_id: int) -> Segment:
    segment = session.get(Segment, segment_id)
    if segment is None or segment.project_id != project_id:
        raise NotFound(f"unknown segment {segment_id}")
    return segment


def resolver(session: Session, project_id: int) -> Callable[[int], RuleGroup | None]:
    """Segment id → its rule when dynamic (compiled inline), None when static (members table);
    :class:`LookupError` for an unknown segment."""

    def resolve(segment_id: int) -> RuleGroup | None:
        segment = session.get(Segment, segment_id)
        if segment is None or segment.project_id != project_id:
            raise LookupError(segment_id)
        if segment.mode == "dynamic" and segment.rule is not None:
            return parse(segment.rule)
        return None

    return resolve


def _scope(
    principal: Principal | None, warehouse: Warehouse, project_id: int
) -> tuple[str, list[Any]] | None:
    if principal is None or is_unrestricted(principal):
        return None
    warehouse.ensure_columns(
        project_id,
        TableKind.USERS,
        {BRANCH_PROPERTY: PropertyType.STRING, ADVISOR_PROPERTY: PropertyType.STRING},
    )
    return scope_predicate(principal, alias="u")


def _compile(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    rule: RuleGroup,
    now: datetime,
    output: str,
    principal: Principal | None = None,
    limit: int | None = None,
) -> Compiled:
    ctx = tags.rule_context(warehouse, project_id, now, resolver(session, project_id))
    return compile_rule(
        rule,
        ctx,
        output="count" if output == "count" else "user_ids",
        scope=_scope(principal, warehouse, project_id),
        limit=limit,
    )


def _arrow(warehouse: Warehouse, sql: str, params: dict[str, Any]) -> pa.Table:
    """Rows as Arrow on this thread's cursor (so views registered on it are visible).

    ``cursor.sql()`` would refuse to run while an earlier ``execute()`` result on the cursor is
    unread; DuckDB warns that Arrow from ``execute()`` copies once, which is cheap here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        table: pa.Table = warehouse.cursor().execute(sql, params).to_arrow_table()
    return table


def _run(warehouse: Warehouse, compiled: Compiled) -> list[tuple[Any, ...]]:
    sql, params = compiled.bound("duckdb")
    return warehouse.cursor().execute(sql, params).fetchall()


# -- preview and create ---------------------------------------------------------------------


def preview(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    rule: dict[str, Any] | RuleGroup,
    now: datetime,
    principal: Principal | None = None,
    sample: int = 10,
) -> PreviewOut:
    """Size of a rule's segment now, in the principal's scope, and the first ``sample`` ids.

    :class:`InvalidRule` naming the bad part when the rule is invalid.
    """
    started = monotonic.perf_counter()
    group = parse(rule)
    compiled = _compile(
        session=session,
        warehouse=warehouse,
        project_id=project_id,
        rule=group,
        now=now,
        output="user_ids" if sample else "count",
        principal=principal,
    )
    ids: list[int] = []
    if sample:
        # One pass: the matching ids (8 bytes each) give both the count and the sample; a second
        # ORDER BY … LIMIT query would evaluate the whole rule again.
        sql, params = compiled.bound("duckdb")
        matched = _arrow(warehouse, sql, params).column(0)
        count = len(matched)
        if count:
            positions = pc.bottom_k_unstable(matched, k=min(sample, count))
            ids = sorted(int(v) for v in pc.take(matched, positions).to_pylist())
    else:
        count = int(_run(warehouse, compiled)[0][0])
    elapsed = (monotonic.perf_counter() - started) * 1000
    log.info("segment_previewed", project_id=project_id, count=count, ms=round(elapsed, 1))
    return PreviewOut(
        count=count, sample_user_ids=ids, warnings=compiled.warnings, elapsed_ms=elapsed
    )


def count_rule(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    rule: dict[str, Any] | RuleGroup,
    now: datetime,
    principal: Principal | None = None,
) -> int:
    """How many customers a rule selects now (in the principal's scope)."""
    compiled = _compile(
        session=session,
        warehouse=warehouse,
        project_id=project_id,
        rule=parse(rule),
        now=now,
        output="count",
        principal=principal,
    )
    return int(_run(warehouse, compiled)[0][0])


def _check_references(
    session: Session, project_id: int, segment_id: int | None, rule: RuleGroup
) -> None:
    """Refuse unknown segment references and cycles through the referenced segments."""
    pending = list(referenced_segments(rule))
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if segment_id is not None and current == segment_id:
            raise InvalidRule(
                f"rule refers back to segment {segment_id} (a cycle)", detail={"path": "rule"}
            )
        if current in seen:
            continue
        seen.add(current)
        other = session.get(Segment, current)
        if other is None or other.project_id != project_id:
            raise InvalidRule(f"rule refers to unknown segment {current}", detail={"path": "rule"})
        if other.mode == "dynamic" and other.rule is not None:
            pending.extend(referenced_segments(parse(other.rule)))


def create_segment(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment_in: SegmentIn,
    actor: str,
    now: datetime,
) -> SegmentOut:
    """Create a segment. A static segment gets its members now (rule snapshot or the given
    ``user_ids``); a dynamic one on its first refresh. :class:`InvalidRule` for a bad rule."""
    rule: RuleGroup | None = None
    if segment_in.source in {"rule", "tags"}:
        if segment_in.rule is None:
            raise InvalidRule("rule: a rule is required for this source", detail={"path": "rule"})
        rule = parse(segment_in.rule)
        _check_references(session, project_id, None, rule)
        # Compile once so schema problems (contain on a number …) surface at creation.
        _compile(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            rule=rule,
            now=now,
            output="count",
        )
    elif segment_in.source == "analysis" and segment_in.user_ids is None:
        raise InvalidInput("user_ids: an analysis segment needs the user ids")
    elif segment_in.source == "upload":
        raise InvalidInput("source: upload files through POST /api/v1/segments/upload")
    mode = segment_in.mode if rule is not None else "static"
    segment = Segment(
        project_id=project_id,
        name=segment_in.name,
        description=segment_in.description,
        source=segment_in.source,
        mode=mode,
        rule=None if rule is None else _dump(rule),
        schedule=segment_in.schedule if mode == "dynamic" else "manual",
        created_by=actor,
        created_at=utc_naive(now),
        updated_at=utc_naive(now),
    )
    session.add(segment)
    session.flush()
    if rule is not None:
        tags.set_lineage(
            session=session,
            project_id=project_id,
            source_kind="segment",
            source_id=segment.id,
            rules=[rule],
        )
    if mode == "static":
        if rule is not None:
            compiled = _compile(
                session=session,
                warehouse=warehouse,
                project_id=project_id,
                rule=rule,
                now=now,
                output="user_ids",
            )
            sql, params = compiled.bound("duckdb")
            ids = _arrow(warehouse, sql, params).column(0)
        else:
            ids = pa.array(sorted(set(segment_in.user_ids or [])), pa.int64())
        _replace_static(session, warehouse, segment, ids, now)
    log.info("segment_created", segment_id=segment.id, source=segment.source, mode=mode)
    return SegmentOut.model_validate(segment)


def _dump(rule: RuleGroup) -> dict[str, Any]:
    from flywheel.rules.schema import dump

    return dump(rule)


def create_from_upload(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    name: str,
    content: bytes,
    actor: str,
    now: datetime,
) -> SegmentOut:
    """A static segment from a CSV file whose first column is ``user_id`` (header required).

    :class:`InvalidInput` names the first bad line.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the file is not UTF-8 text") from exc
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0].strip().lower() != "user_id":
        raise InvalidInput("line 1: the first column must be user_id")
    ids: set[int] = set()
    for line, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        try:
            ids.add(int(row[0].strip()))
        except ValueError:
            raise InvalidInput(f"line {line}: user_id {row[0]!r} is not a number") from None
        if len(ids) > MAX_EXPORT_ROWS:
            raise InvalidInput(f"more than {MAX_EXPORT_ROWS} customers")
    segment = Segment(
        project_id=project_id,
        name=name,
        description="",
        source="upload",
        mode="static",
        rule=None,
        schedule="manual",
        created_by=actor,
        created_at=utc_naive(now),
        updated_at=utc_naive(now),
    )
    session.add(segment)
    session.flush()
    _replace_static(session, warehouse, segment, pa.array(sorted(ids), pa.int64()), now)
    log.info("segment_uploaded", segment_id=segment.id, size=len(ids))
    return SegmentOut.model_validate(segment)


def _replace_static(
    session: Session, warehouse: Warehouse, segment: Segment, ids: Any, now: datetime
) -> None:
    table = quote_ident(Tables.for_project(segment.project_id).segment_members)
    warehouse.ensure_project(segment.project_id)
    batch = pa.table({"user_id": pa.array(ids, pa.int64())})
    cur = warehouse.cursor()
    cur.register("_fw_static", batch)
    try:
        cur.execute("BEGIN")
        cur.execute(f"DELETE FROM {table} WHERE segment_id = $sid", {"sid": segment.id})
        cur.execute(
            f"INSERT INTO {table} SELECT $sid, user_id, $now FROM _fw_static",
            {"sid": segment.id, "now": utc_naive(now)},
        )
        cur.execute("COMMIT")
    finally:
        cur.unregister("_fw_static")
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    _mirror_insert(session, segment.id, batch.column(0).to_pylist(), now)
    segment.size = batch.num_rows
    segment.refreshed_at = utc_naive(now)
    session.flush()


def _mirror_insert(session: Session, segment_id: int, user_ids: list[int], now: datetime) -> None:
    # A refresh inserts only the ids its diff against this table (under _lock_for_refresh)
    # found missing; ignoring a row already there keeps a static replace equally forgiving.
    # Driver-level bulk rows (COPY on PostgreSQL): no per-value processing for a million rows.
    connection = session.connection()
    at = bulk.db_datetime(connection, now)
    bulk.insert(
        connection,
        SegmentMember.__tablename__,
        ("segment_id", "user_id", "entered_at"),
        [(segment_id, uid, at) for uid in user_ids],
        skip_conflicts_on="segment_id, user_id",
    )


def _mirror_delete(session: Session, segment_id: int, user_ids: list[int]) -> None:
    for i in range(0, len(user_ids), _MIRROR_CHUNK):
        chunk = user_ids[i : i + _MIRROR_CHUNK]
        session.execute(
            delete(SegmentMember).where(
                SegmentMember.segment_id == segment_id, SegmentMember.user_id.in_(chunk)
            )
        )


# -- CRUD -----------------------------------------------------------------------------------


def list_segments(*, session: Session, project_id: int) -> list[SegmentOut]:
    """Every segment of the project, newest first."""
    rows = session.scalars(
        select(Segment).where(Segment.project_id == project_id).order_by(Segment.id.desc())
    )
    return [SegmentOut.model_validate(s) for s in rows]


def get_segment(*, session: Session, project_id: int, segment_id: int) -> SegmentOut:
    """One segment; :class:`NotFound` when it is not in the project."""
    return SegmentOut.model_validate(_get(session, project_id, segment_id))


def update_segment(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment_id: int,
    update: SegmentUpdate,
    now: datetime,
) -> SegmentOut:
    """Rename, re-describe, reschedule or change the rule of a dynamic segment."""
    segment = _get(session, project_id, segment_id)
    if update.rule is not None:
        if segment.mode != "dynamic":
            raise Conflict("the rule of a static segment cannot change; create a new one")
        rule = parse(update.rule)
        _check_references(session, project_id, segment.id, rule)
        _compile(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            rule=rule,
            now=now,
            output="count",
        )
        segment.rule = _dump(rule)
        tags.set_lineage(
            session=session,
            project_id=project_id,
            source_kind="segment",
            source_id=segment.id,
            rules=[rule],
        )
    if update.name is not None:
        segment.name = update.name
    if update.description is not None:
        segment.description = update.description
    if update.schedule is not None and segment.mode == "dynamic":
        segment.schedule = update.schedule
    segment.updated_at = utc_naive(now)
    session.flush()
    return SegmentOut.model_validate(segment)


def delete_segment(
    *, session: Session, warehouse: Warehouse, project_id: int, segment_id: int
) -> None:
    """Delete a segment and its members. :class:`Conflict` while another rule reads it.

    Takes the refresh lock first, as a refresh does (segment row, then members): the opposite
    order deadlocked against a running refresh on PostgreSQL."""
    segment = _lock_for_refresh(session, project_id, segment_id)
    readers = tags.lineage(
        session=session,
        project_id=project_id,
        kind="segment",
        key=str(segment.id),
        source_id=segment.id,
    ).used_by
    if readers:
        names = ", ".join(f"{r['kind']} {r['ref']}" for r in readers)
        raise Conflict(f"segment {segment.id} is used by {names}")
    tags.set_lineage(
        session=session,
        project_id=project_id,
        source_kind="segment",
        source_id=segment.id,
        rules=[],
    )
    session.execute(delete(SegmentMember).where(SegmentMember.segment_id == segment.id))
    session.delete(segment)
    session.flush()
    table = quote_ident(Tables.for_project(project_id).segment_members)
    warehouse.cursor().execute(f"DELETE FROM {table} WHERE segment_id = $sid", {"sid": segment_id})


def runs(
    *, session: Session, project_id: int, segment_id: int, limit: int = 50
) -> list[SegmentRunOut]:
    """The latest refreshes of a segment, newest first."""
    _get(session, project_id, segment_id)
    rows = session.scalars(
        select(SegmentRun)
        .where(SegmentRun.segment_id == segment_id)
        .order_by(SegmentRun.id.desc())
        .limit(limit)
    )
    return [SegmentRunOut.model_validate(r) for r in rows]


# -- refresh --------------------------------------------------------------------------------


def refresh_segment(
    *, session: Session, warehouse: Warehouse, project_id: int, segment_id: int, now: datetime
) -> RefreshOut:
    """Recompute a dynamic segment and record who entered and who left.

    The operational membership (``segment_members``) is what has been announced: the fresh
    members are diffed against it, and the new membership, a :class:`SegmentRun`, the live-feed
    rows and one ``$SegmentEnter`` / ``$SegmentLeave`` event per changed customer (staged in the
    warehouse outbox, deterministic ids) are written in the caller's unit of work. They commit
    or vanish together: the changes of a refresh that fails or dies before its commit are
    announced by the next one. The warehouse membership is a derived copy, reconciled to the
    fresh members on every refresh. A static segment is refused with :class:`Conflict`.

    Refreshes of one segment are serialised (:func:`_lock_for_refresh`): one that overlaps
    another waits for the other's commit, then diffs against its result, so each change is
    announced once. The lock is held until the caller's unit of work ends.
    """
    started = monotonic.perf_counter()
    segment = _lock_for_refresh(session, project_id, segment_id)
    if segment.mode != "dynamic" or segment.rule is None:
        raise Conflict(f"segment {segment_id} is static; its members do not change")
    compiled = _compile(
        session=session,
        warehouse=warehouse,
        project_id=project_id,
        rule=parse(segment.rule),
        now=now,
        output="user_ids",
    )
    sql, params = compiled.bound("duckdb")
    fresh = _arrow(warehouse, sql, params).rename_columns(["user_id"])
    announced = _announced_members(session, segment.id)
    entered, left = _diff_members(warehouse, fresh, announced)
    run = SegmentRun(
        project_id=project_id,
        segment_id=segment.id,
        at=utc_naive(now),
        size=fresh.num_rows,
        entered=entered.num_rows,
        left=left.num_rows,
        seconds=0.0,
    )
    session.add(run)
    session.flush()
    entered_ids = [int(v) for v in entered.column(0).to_pylist()]
    left_ids = [int(v) for v in left.column(0).to_pylist()]
    _stage_change_events(session, warehouse, project_id, segment, run.id, entered, left, now)
    _feed_changes(session, project_id, segment, run.id, entered_ids, left_ids, now)
    _mirror_delete(session, segment.id, left_ids)
    _mirror_insert(session, segment.id, entered_ids, now)
    segment.size = fresh.num_rows
    segment.refreshed_at = utc_naive(now)
    session.flush()
    # Last, once every operational write went through: the warehouse copy is committed before
    # the caller's unit of work, and is reconciled again by the next refresh if that fails.
    _reconcile_warehouse_members(warehouse, project_id, segment.id, fresh, now)
    run.seconds = monotonic.perf_counter() - started
    session.flush()
    log.info(
        "segment_refreshed",
        segment_id=segment.id,
        size=fresh.num_rows,
        entered=len(entered_ids),
        left=len(left_ids),
        seconds=round(run.seconds, 3),
    )
    return RefreshOut(
        segment_id=segment.id,
        size=fresh.num_rows,
        entered=len(entered_ids),
        left=len(left_ids),
        seconds=run.seconds,
    )


def _lock_for_refresh(session: Session, project_id: int, segment_id: int) -> Segment:
    """The segment, locked against other refreshes until the caller's transaction ends.

    A refresh diffs the fresh members against the operational membership and writes the new
    one in the caller's transaction. Two overlapping refreshes would both diff against the old
    membership and announce the same changes twice; so the lock is taken before the rule is
    read and the diff computed, and held to the end of the transaction (which covers the
    warehouse copy's reconciliation as well).

    PostgreSQL: the segment's row ``FOR NO KEY UPDATE`` — the row lock the refresh's update
    of ``size`` / ``refreshed_at`` takes anyway, only taken first. Chosen over an advisory lock
    because it needs no key space shared with other advisory locks (ingest keys its own), it
    also orders a refresh after a concurrent rule edit or delete of the segment, and ``NO KEY``
    leaves inserts that reference the segment (runs, members) unblocked. Read committed then
    reads the row as committed by the refresh that was waited for.

    SQLite: a no-op ``UPDATE`` of the row takes the database's single write lock (the driver
    begins the transaction at the first write, so the reads before it hold no stale snapshot;
    a transaction that wrote already holds the lock); other writers wait for the commit (busy
    timeout), which serialises the whole read-diff-write sequence across threads and
    processes (an in-process lock would cover neither other processes nor the commit, which
    the caller's unit of work makes after this service returns).
    """
    session.flush()  # a pending change of the segment in this session must not be overwritten
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Segment)
            .where(Segment.id == segment_id, Segment.project_id == project_id)
            .values(refreshed_at=Segment.refreshed_at)
            .execution_options(synchronize_session=False)
        )
    segment = session.get(
        Segment, segment_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if segment is None or segment.project_id != project_id:
        raise NotFound(f"unknown segment {segment_id}")
    return segment


def _announced_members(session: Session, segment_id: int) -> pa.Table:
    """The operational membership of a segment — what has been announced — as Arrow: one
    ``SELECT`` of the ids in the refresh's locked transaction.

    Read on the session's DBAPI cursor: SQLAlchemy's result rows cost three to six times the
    query itself on a million members (SQLite and psycopg alike).
    """
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    cursor = connection.connection.cursor()
    try:
        cursor.execute(
            f"SELECT user_id FROM {_MEMBERS_TABLE.name} WHERE segment_id = {marker}",
            (segment_id,),
        )
        user_ids = [row[0] for row in cursor.fetchall()]
    finally:
        cursor.close()
    return pa.table({"user_id": pa.array(user_ids, pa.int64())})


def _diff_members(
    warehouse: Warehouse, fresh: pa.Table, announced: pa.Table
) -> tuple[pa.Table, pa.Table]:
    """(entered, left): ``fresh`` against the ``announced`` membership, in DuckDB."""
    cur = warehouse.cursor()
    cur.register("_fw_seg_new", fresh)
    cur.register("_fw_seg_old", announced)
    try:
        entered = _arrow(
            warehouse,
            "SELECT user_id FROM _fw_seg_new EXCEPT SELECT user_id FROM _fw_seg_old",
            {},
        )
        left = _arrow(
            warehouse,
            "SELECT user_id FROM _fw_seg_old EXCEPT SELECT user_id FROM _fw_seg_new",
            {},
        )
    finally:
        for name in ("_fw_seg_new", "_fw_seg_old"):
            with contextlib.suppress(duckdb.Error):
                cur.unregister(name)
    return entered, left


def _reconcile_warehouse_members(
    warehouse: Warehouse, project_id: int, segment_id: int, fresh: pa.Table, now: datetime
) -> None:
    """Make the warehouse membership of a segment equal ``fresh`` in one DuckDB transaction:
    drop who is not in it, add who is missing (``since`` now), keep the others' ``since``.

    Computed against the warehouse table itself, not the announced diff, so it also repairs a
    copy that drifted either way (an operational transaction that failed after this commit).
    """
    table = quote_ident(Tables.for_project(project_id).segment_members)
    cur = warehouse.cursor()
    cur.register("_fw_seg_fresh", fresh)
    try:
        cur.execute("BEGIN")
        try:
            cur.execute(
                f"DELETE FROM {table} WHERE segment_id = $sid AND user_id IN ("
                f"SELECT user_id FROM {table} WHERE segment_id = $sid "
                "EXCEPT SELECT user_id FROM _fw_seg_fresh)",
                {"sid": segment_id},
            )
            cur.execute(
                f"INSERT INTO {table} SELECT $sid, user_id, $now FROM ("
                f"SELECT user_id FROM _fw_seg_fresh "
                f"EXCEPT SELECT user_id FROM {table} WHERE segment_id = $sid)",
                {"sid": segment_id, "now": utc_naive(now)},
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.unregister("_fw_seg_fresh")


def _stage_change_events(
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment: Segment,
    run_id: int,
    entered: pa.Table,
    left: pa.Table,
    now: datetime,
) -> None:
    """One ``$SegmentEnter`` / ``$SegmentLeave`` warehouse event per change, staged in the
    refresh's transaction (the warehouse outbox, drained like ingested events). Ids name the
    run, which commits with them, so a replayed outbox row adds nothing."""
    n = entered.num_rows + left.num_rows
    if n == 0:
        return
    # Declared now, as the drain would: rules may read the columns before it runs.
    warehouse.ensure_columns(
        project_id,
        TableKind.EVENTS,
        {"segment_id": PropertyType.NUMBER, "segment_name": PropertyType.STRING},
    )
    parts = [(ENTER_EVENT, "enter", entered), (LEAVE_EVENT, "leave", left)]
    users = pa.concat_arrays([c for _, _, t in parts for c in t.column(0).chunks])
    ids = pa.concat_arrays(
        [
            c
            for _, tag, t in parts
            for c in pc.binary_join_element_wise(
                f"seg{segment.id}-r{run_id}-{tag}-", pc.cast(t.column(0), pa.string()), ""
            ).chunks
        ]
    )
    events = pa.concat_arrays([pa.repeat(pa.scalar(name), t.num_rows) for name, _, t in parts])
    at = pa.scalar(utc_naive(now), BASE_ARROW["time"])
    batch = pa.table(
        {
            "id": ids.cast(BASE_ARROW["id"]),
            "user_id": users.cast(BASE_ARROW["user_id"]),
            "distinct_id": pc.cast(users, BASE_ARROW["distinct_id"]),
            "event": events.cast(BASE_ARROW["event"]),
            "time": pa.repeat(at, n),
            "$receive_time": pa.repeat(at, n),
            "segment_id": pa.repeat(pa.scalar(float(segment.id), pa.float64()), n),
            "segment_name": pa.repeat(pa.scalar(segment.name, pa.string()), n),
        }
    )
    mirror.enqueue(
        session=session,
        project_id=project_id,
        batch=mirror.WarehouseBatch(events=batch),
        now=now,
    )


def _feed_changes(
    session: Session,
    project_id: int,
    segment: Segment,
    run_id: int,
    entered: list[int],
    left: list[int],
    now: datetime,
) -> None:
    """Membership changes for live consumers (journeys entered on segment change); only the
    kinds someone watches are built, since a first refresh may change a million members."""
    watched = feed.watchers(session=session, project_id=project_id)
    props = {"segment_id": segment.id, "segment_name": segment.name}
    changes = [(ENTER_EVENT, "enter", entered), (LEAVE_EVENT, "leave", left)]
    feed.publish(
        session=session,
        project_id=project_id,
        events=[
            feed.LiveEvent(
                event_id=f"seg{segment.id}-r{run_id}-{tag}-{uid}",
                user_id=uid,
                event=name,
                time=now,
                properties=props,
            )
            for name, tag, user_ids in changes
            if name in watched
            for uid in user_ids
        ],
    )


def is_due(segment: Segment, now: datetime) -> bool:
    """Whether a dynamic segment should be recomputed: daily once per Shanghai day, hourly once
    an hour."""
    if segment.mode != "dynamic" or segment.schedule == "manual":
        return False
    if segment.refreshed_at is None:
        return True
    if segment.schedule == "daily":
        return tags.sh_today(segment.refreshed_at) != tags.sh_today(now)
    return segment.refreshed_at < utc_naive(now).replace(minute=0, second=0, microsecond=0)


def refresh_due(*, session: Session, warehouse: Warehouse, now: datetime) -> list[RefreshOut]:
    """Refresh every dynamic segment that is due (all projects).

    Segments are locked in id order, so two schedulers never wait on each other in a cycle; a
    segment that another scheduler refreshed while this one waited for its lock is skipped.
    Each segment is refreshed in its own savepoint: one that fails (a rule that no longer
    compiles, a segment deleted meanwhile) is logged and skipped, and the others' runs, members
    and announcements still commit.
    """
    done: list[RefreshOut] = []
    candidates = session.scalars(
        select(Segment).where(Segment.mode == "dynamic").order_by(Segment.id)
    ).all()
    due = [(c.project_id, c.id) for c in candidates if is_due(c, now)]
    for project_id, segment_id in due:
        try:
            with session.begin_nested():
                segment = _lock_for_refresh(session, project_id, segment_id)
                if is_due(segment, now):
                    done.append(
                        refresh_segment(
                            session=session,
                            warehouse=warehouse,
                            project_id=project_id,
                            segment_id=segment_id,
                            now=now,
                        )
                    )
        except (FlywheelError, duckdb.Error) as exc:
            log.warning("segment_refresh_failed", segment_id=segment_id, error=str(exc))
    return done


# -- reading members ------------------------------------------------------------------------


def count_segment(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment_id: int,
    now: datetime,
    principal: Principal | None = None,
    live: bool = False,
) -> CountOut:
    """Members in the principal's scope: stored membership, or recomputed now with ``live``
    (dynamic segments only)."""
    segment = _get(session, project_id, segment_id)
    if live and segment.mode == "dynamic" and segment.rule is not None:
        count = count_rule(
            session=session,
            warehouse=warehouse,
            project_id=project_id,
            rule=segment.rule,
            now=now,
            principal=principal,
        )
        return CountOut(segment_id=segment.id, count=count)
    sql, params = _members_sql(warehouse, project_id, segment.id, principal)
    row = warehouse.cursor().execute(f"SELECT COUNT(*) FROM ({sql}) m", params).fetchone()
    return CountOut(segment_id=segment.id, count=int(row[0]) if row else 0)


def _members_sql(
    warehouse: Warehouse, project_id: int, segment_id: int, principal: Principal | None
) -> tuple[str, dict[str, Any]]:
    tables = Tables.for_project(project_id)
    warehouse.ensure_project(project_id)
    params: dict[str, Any] = {"sid": segment_id}
    scope = _scope(principal, warehouse, project_id)
    if scope is None:
        return (
            f"SELECT sm.user_id FROM {quote_ident(tables.segment_members)} sm "
            "WHERE sm.segment_id = $sid",
            params,
        )
    predicate, values = scope
    for index, value in enumerate(values):
        predicate = predicate.replace("?", f"$scope{index}", 1)
        params[f"scope{index}"] = value
    return (
        f"SELECT sm.user_id FROM {quote_ident(tables.segment_members)} sm "
        f"JOIN {quote_ident(tables.users)} u ON u.user_id = sm.user_id "
        f"WHERE sm.segment_id = $sid AND {predicate}",
        params,
    )


def members(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment_id: int,
    principal: Principal | None = None,
    offset: int = 0,
    limit: int = 100,
) -> MembersOut:
    """A page of member ids (ascending) in the principal's scope."""
    segment = _get(session, project_id, segment_id)
    sql, params = _members_sql(warehouse, project_id, segment.id, principal)
    cur = warehouse.cursor()
    total_row = cur.execute(f"SELECT COUNT(*) FROM ({sql}) m", params).fetchone()
    rows = cur.execute(
        f"SELECT user_id FROM ({sql}) m ORDER BY user_id LIMIT $lim OFFSET $off",
        {**params, "lim": int(limit), "off": int(offset)},
    ).fetchall()
    return MembersOut(
        total=int(total_row[0]) if total_row else 0,
        offset=offset,
        user_ids=[int(r[0]) for r in rows],
    )


def export_csv(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    segment_id: int,
    principal: Principal,
    now: datetime,
    columns: list[str] | None = None,
    reveal: bool = False,
) -> Iterator[str]:
    """CSV of a segment's members in scope with chosen profile columns, audited.

    Personal data is masked unless ``reveal`` (which needs ``pii:view``; :class:`Forbidden`
    otherwise). The audit entry (``segment.export``: rows, columns, masked) is written in the
    caller's unit of work before any row is produced. Returns the CSV text in chunks.
    """
    segment = _get(session, project_id, segment_id)
    reveal = authorize_reveal(principal, reveal=reveal)
    available = warehouse.columns(project_id, TableKind.USERS)
    wanted = list(dict.fromkeys(columns or DEFAULT_EXPORT_COLUMNS))
    unknown = [c for c in wanted if c not in available and c != "user_id"]
    if columns is not None and unknown:
        raise InvalidInput(f"columns: unknown profile properties {', '.join(unknown)}")
    chosen = [c for c in wanted if c in available and c != "user_id"]
    sql, params = _members_sql(warehouse, project_id, segment.id, principal)
    total_row = warehouse.cursor().execute(f"SELECT COUNT(*) FROM ({sql}) m", params).fetchone()
    total = min(int(total_row[0]) if total_row else 0, MAX_EXPORT_ROWS)
    audit.record(
        session=session,
        actor=principal.actor,
        action="segment.export",
        target=f"segment:{segment.id}",
        detail={"rows": total, "columns": ["user_id", *chosen], "masked": not reveal},
        project_id=project_id,
        now=now,
    )
    log.info("segment_exported", segment_id=segment.id, rows=total, masked=not reveal)
    users = quote_ident(Tables.for_project(project_id).users)
    select_cols = ", ".join(f"u.{quote_ident(c)}" for c in chosen)
    query = (
        f"SELECT m.user_id{', ' + select_cols if select_cols else ''} FROM ({sql}) m "
        f"LEFT JOIN {users} u ON u.user_id = m.user_id ORDER BY m.user_id LIMIT {MAX_EXPORT_ROWS}"
    )

    def chunks() -> Iterator[str]:
        # A cursor of its own: the stream may be read on another thread and may stop early.
        stream = warehouse.cursor().cursor()
        try:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(["user_id", *chosen])
            reader: pa.RecordBatchReader = stream.sql(query, params=params).to_arrow_reader(10_000)
            for batch in reader:
                for row in batch.to_pylist():
                    shown = mask_properties({c: row[c] for c in chosen}, reveal=reveal)
                    writer.writerow([row["user_id"], *(_cell(shown[c]) for c in chosen)])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            if buffer.tell():
                yield buffer.getvalue()
        finally:
            stream.close()

    return chunks()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def memberships(*, session: Session, project_id: int, user_id: int) -> list[int]:
    """Ids of the project's segments the customer is a member of now (one indexed query)."""
    return list(
        session.scalars(
            select(SegmentMember.segment_id)
            .join(Segment, Segment.id == SegmentMember.segment_id)
            .where(Segment.project_id == project_id, SegmentMember.user_id == user_id)
        )
    )


def matching_users(
    *,
    session: Session,
    warehouse: Warehouse,
    project_id: int,
    rule: RuleGroup,
    user_ids: Sequence[int],
    now: datetime,
) -> set[int]:
    """Which of ``user_ids`` match ``rule`` now (one query for the whole batch; e.g. a
    journey's condition node)."""
    if not user_ids:
        return set()
    compiled = _compile(
        session=session,
        warehouse=warehouse,
        project_id=project_id,
        rule=rule,
        now=now,
        output="user_ids",
    )
    sql, params = compiled.bound("duckdb")
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT q.user_id FROM ({sql}) q WHERE q.user_id IN (SELECT unnest($fw_batch_ids))",
            {**params, "fw_batch_ids": list(user_ids)},
        )
        .fetchall()
    )
    return {int(r[0]) for r in rows}


def member_ids_after(
    *, warehouse: Warehouse, project_id: int, segment_id: int, after: int, limit: int
) -> list[int]:
    """Members of a segment with user id above ``after``, ascending, at most ``limit`` (for
    resumable bulk work such as a journey's segment entry)."""
    tables = Tables.for_project(project_id)
    warehouse.ensure_project(project_id)
    rows = (
        warehouse.cursor()
        .execute(
            f"SELECT user_id FROM {quote_ident(tables.segment_members)} WHERE segment_id = $sid "
            "AND user_id > $after ORDER BY user_id LIMIT $lim",
            {"sid": segment_id, "after": after, "lim": limit},
        )
        .fetchall()
    )
    return [int(r[0]) for r in rows]
