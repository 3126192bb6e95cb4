"""The audit trail: an append-only, hash-chained log of every sensitive act.

Other domains call :func:`record` inside their own unit of work, so the audit row commits (or
rolls back) together with the act it describes. ``detail`` must never hold personal data:
refer to customers by id, to fields by name.

Chain: row ``n`` stores ``prev_hash`` (row ``n-1``'s hash, :data:`GENESIS` for the first) and
``hash = sha256(canonical JSON of its fields + prev_hash)``. :func:`verify` walks the chain and
names the first row that was edited or deleted, even when the database triggers that refuse
UPDATE/DELETE were dropped first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from flywheel.audit.models import AuditEntry, AuditHead
from flywheel.audit.schemas import AuditEntryOut, AuditFilter, AuditPage, VerifyReport
from flywheel.core.clock import utc_naive
from flywheel.core.errors import InvalidInput

log = structlog.get_logger(__name__)

GENESIS = "0" * 64
HEAD_ID = 1
_VERIFY_BATCH = 5000


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: one text per value, the input of the hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _at_text(at: datetime) -> str:
    return utc_naive(at).isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    project_id: int | None,
    detail: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) of one row's fields and the previous row's hash."""
    payload = canonical_json(
        {
            "seq": seq,
            "at": _at_text(at),
            "actor": actor,
            "action": action,
            "target": target,
            "project_id": project_id,
            "detail": detail,
            "prev_hash": prev_hash,
        }
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def record(
    *,
    session: Session,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    project_id: int | None = None,
    now: datetime,
) -> int:
    """Append one entry to the audit log and return its sequence number.

    ``actor`` is who acted (``user:alice``, ``system``), ``action`` a dotted verb
    (``auth.login``, ``segment.export``, ``pii.reveal``), ``target`` what was acted on
    (``user:12``, ``journey:3``). Only flushes: the caller's unit of work commits it with the
    act itself. Appends are serialised by updating the head row first (row lock on PostgreSQL,
    write lock on SQLite), so concurrent writers can never fork the chain.
    :class:`InvalidInput` when a field is too long or ``detail`` is not JSON.
    """
    if not actor or len(actor) > 128 or not action or len(action) > 64 or len(target) > 256:
        raise InvalidInput("audit actor/action/target missing or too long")
    try:
        detail_text = canonical_json(detail)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"audit detail is not JSON: {exc}") from exc
    at = utc_naive(now)
    head = session.execute(
        update(AuditHead)
        .where(AuditHead.id == HEAD_ID)
        .values(seq=AuditHead.seq + 1)
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).first()
    if head is None:  # the migration creates the head; this covers a hand-made schema
        session.execute(insert(AuditHead).values(id=HEAD_ID, seq=1, last_hash=GENESIS))
        seq, prev_hash = 1, GENESIS
    else:
        seq, prev_hash = int(head[0]), str(head[1])
    digest = entry_hash(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        project_id=project_id,
        detail=detail_text,
        prev_hash=prev_hash,
    )
    session.execute(
        insert(AuditEntry).values(
            seq=seq,
            at=at,
            actor=actor,
            action=action,
            target=target,
            project_id=project_id,
            detail=detail_text,
            prev_hash=prev_hash,
            hash=digest,
        )
    )
    session.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(last_hash=digest))
    return seq


def _out(row: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        project_id=row.project_id,
        detail=json.loads(row.detail),
        hash=row.hash,
    )


def search(*, session: Session, filters: AuditFilter) -> AuditPage:
    """Entries matching every given filter, newest first, one page of ``filters.limit``."""
    query = select(AuditEntry)
    if filters.actor is not None:
        query = query.where(AuditEntry.actor == filters.actor)
    if filters.action is not None:
        query = query.where(AuditEntry.action == filters.action)
    if filters.target is not None:
        query = query.where(AuditEntry.target.startswith(filters.target, autoescape=True))
    if filters.project_id is not None:
        query = query.where(AuditEntry.project_id == filters.project_id)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= utc_naive(filters.since))
    if filters.until is not None:
        query = query.where(AuditEntry.at < utc_naive(filters.until))
    if filters.before_seq is not None:
        query = query.where(AuditEntry.seq < filters.before_seq)
    rows = list(session.scalars(query.order_by(AuditEntry.seq.desc()).limit(filters.limit + 1)))
    more = len(rows) > filters.limit
    rows = rows[: filters.limit]
    return AuditPage(
        entries=[_out(r) for r in rows], next_before_seq=rows[-1].seq if more and rows else None
    )


_CHAIN_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.at,
    AuditEntry.actor,
    AuditEntry.action,
    AuditEntry.target,
    AuditEntry.project_id,
    AuditEntry.detail,
    AuditEntry.prev_hash,
    AuditEntry.hash,
)


def verify(*, session: Session) -> VerifyReport:
    """Walk the whole chain and report the first row that was edited, deleted or reordered.

    Checks, row by row: sequence numbers have no gap, ``prev_hash`` equals the hash of the row
    before, the stored hash equals the recomputed one; and finally that the head row agrees
    with the last row (rows deleted at the end). Reads in batches; memory stays flat.
    """
    head = session.execute(
        select(AuditHead.seq, AuditHead.last_hash).where(AuditHead.id == HEAD_ID)
    ).first()
    head_seq = int(head.seq) if head is not None else 0
    expected, prev, checked = 1, GENESIS, 0

    def bad(seq: int, problem: str) -> VerifyReport:
        log.warning("audit_verify_failed", seq=seq)
        return VerifyReport(
            ok=False, checked=checked, head_seq=head_seq, bad_seq=seq, problem=problem
        )

    while True:
        rows = session.execute(
            select(*_CHAIN_COLUMNS)
            .where(AuditEntry.seq >= expected)
            .order_by(AuditEntry.seq)
            .limit(_VERIFY_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected:
                return bad(expected, f"row {expected} is missing (deleted)")
            if row.prev_hash != prev:
                return bad(row.seq, f"row {row.seq}: prev_hash does not match row {expected - 1}")
            recomputed = entry_hash(
                seq=row.seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                target=row.target,
                project_id=row.project_id,
                detail=row.detail,
                prev_hash=row.prev_hash,
            )
            if recomputed != row.hash:
                return bad(row.seq, f"row {row.seq} was edited (hash mismatch)")
            prev, expected, checked = row.hash, expected + 1, checked + 1
    if head_seq != checked:
        return bad(
            checked + 1, f"head says {head_seq} rows but the chain ends at row {checked} (deleted)"
        )
    if head is not None and head.last_hash != prev:
        return bad(checked, f"row {checked} does not match the head hash")
    return VerifyReport(ok=True, checked=checked, head_seq=head_seq)
