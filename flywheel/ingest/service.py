"""Ingest service: the durable inbox, rejections and project-scoped ingest keys.

The module other domains import. Every function takes the session keyword-only and only
flushes; the caller (route, task, CLI) owns the unit of work, so a record is in the inbox
exactly when the caller's transaction commits.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import orjson
import structlog
from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth import pii
from flywheel.core.clock import utc_naive
from flywheel.core.errors import (
    Conflict,
    FlywheelError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
)
from flywheel.core.ids import new_secret, sha256_hex
from flywheel.ingest import segment
from flywheel.ingest.models import InboxRecord, IngestKey, Rejection
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.schemas import IngestAnswer, IngestKeyCreated, IngestKeyOut, RejectionOut
from flywheel.ingest.sensors import SensorsPayload
from flywheel.ingest.validation import RecordRejected, validate_record
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectOut

log = structlog.get_logger(__name__)

# Core INSERT (executemany) of the inbox table: the ORM bulk path costs ~40% more per request.
_INBOX = cast(Table, InboxRecord.__table__)

#: ``raw`` of a rejection is kept up to this many characters.
MAX_RAW_CHARS = 64 * 1024
KEY_PREFIX = "fwk"
#: Characters of a key kept in clear to tell keys apart (``fwk_`` + 8).
SHOWN_PREFIX_CHARS = 12
#: Reasons listed in an answer (all are kept in ``ingest_rejections``).
MAX_ANSWER_ERRORS = 100


@dataclass
class CheckedBatch:
    """The outcome of checking one request: accepted records (encoded, per project) and
    rejected ones with their reasons. Nothing is written until :func:`store_batch`."""

    project_id: int
    source: str
    received_at: datetime
    accepted: dict[int, list[bytes]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def accept(self, project_id: int, record: IngestRecord) -> None:
        self.accepted.setdefault(project_id, []).append(record.to_json())

    def reject(self, reason: str, raw: Any) -> None:
        self.rejected.append((reason, _raw_text(raw)))

    def answer(self) -> IngestAnswer:
        """What the endpoint answers: accepted/rejected counts and the first reasons."""
        return IngestAnswer(
            accepted=sum(len(v) for v in self.accepted.values()),
            rejected=len(self.rejected),
            errors=[reason for reason, _ in self.rejected[:MAX_ANSWER_ERRORS]],
        )


def store_batch(*, session: Session, batch: CheckedBatch) -> IngestAnswer:
    """Write a checked batch: one bulk INSERT into the inbox per project, the rejections.

    The caller commits; the answer is true (``accepted`` are durable) once it has.
    """
    for target, encoded in batch.accepted.items():
        enqueue_encoded(
            session=session,
            project_id=target,
            encoded=encoded,
            source=batch.source,
            received_at=batch.received_at,
        )
    record_rejections(
        session=session,
        project_id=batch.project_id,
        source=batch.source,
        rejections=batch.rejected,
        rejected_at=batch.received_at,
    )
    if batch.rejected:
        log.info(
            "ingest_records_rejected",
            source=batch.source,
            project_id=batch.project_id,
            rejected=len(batch.rejected),
        )
    return batch.answer()


def check_sensors(
    *,
    session: Session,
    payload: SensorsPayload,
    now: datetime,
    max_records: int,
    source: str = "sensors",
) -> CheckedBatch:
    """Validate the records of one Sensors request (reads only; see :func:`store_batch`).

    The request's project is ``payload.project`` (else ``default``): unknown → :class:`NotFound`.
    A record naming another project goes there (an unknown one rejects that record). When a
    project has ``require_token``, each record needs a valid key of that project in ``token`` /
    ``$token`` (or the request's ``token``). A request-level ``token`` that is unknown or revoked
    fails the whole request (401 / 403), as does one of another project (403). More than
    ``max_records`` records → :class:`PayloadTooLarge`. Each bad record is rejected alone.
    """
    if len(payload.records) > max_records:
        raise PayloadTooLarge(
            f"{len(payload.records)} records in one request; at most {max_records} are accepted"
        )
    request_project = projects.get_by_name(session=session, name=payload.project or "default")
    key_projects: dict[str, int] = {}
    if payload.token is not None:
        key_project = verify_key(session=session, key=payload.token)
        if key_project != request_project.id:
            raise Forbidden(f"ingest key does not belong to project {request_project.name!r}")
        key_projects[payload.token] = key_project
    known: dict[str, ProjectOut | None] = {request_project.name: request_project}
    batch = CheckedBatch(project_id=request_project.id, source=source, received_at=now)
    for raw in payload.records:
        try:
            checked = validate_record(raw, project=request_project.name, now=now)
            project = _record_project(session, checked.record.project, known)
            if project.require_token:
                _check_token(
                    session, checked.token or payload.token, project, key_projects=key_projects
                )
        except RecordRejected as exc:
            batch.reject(exc.message, raw)
            continue
        batch.accept(project.id, checked.record)
    return batch


def check_segment(
    *,
    session: Session,
    write_key: str,
    kind: str,
    body: bytes,
    now: datetime,
    max_records: int,
) -> CheckedBatch:
    """Map the messages of one Segment request (reads only; see :func:`store_batch`).

    ``write_key`` must be a valid, unrevoked ingest key (401 / 403); it decides the project.
    ``kind`` is the endpoint (``track`` … ``batch``). A bad message is rejected alone; a body
    that is not JSON of the expected shape fails the request (400).
    """
    project_id = verify_key(session=session, key=write_key)
    project = projects.get(session=session, project_id=project_id)
    messages, context = segment.decode_body(body, kind=kind)
    if len(messages) > max_records:
        raise PayloadTooLarge(
            f"{len(messages)} messages in one request; at most {max_records} are accepted"
        )
    batch = CheckedBatch(project_id=project.id, source="segment", received_at=now)
    for message in messages:
        try:
            records = segment.map_message(
                message,
                kind=None if kind == "batch" else kind,
                project=project.name,
                now=now,
                context=context,
            )
        except RecordRejected as exc:
            batch.reject(exc.message, message)
            continue
        for record in records:
            batch.accept(project.id, record)
    return batch


def accept_sensors(
    *, session: Session, payload: SensorsPayload, now: datetime, max_records: int
) -> IngestAnswer:
    """:func:`check_sensors` then :func:`store_batch` in the caller's unit of work."""
    batch = check_sensors(session=session, payload=payload, now=now, max_records=max_records)
    return store_batch(session=session, batch=batch)


def enqueue(
    *,
    session: Session,
    project_id: int,
    records: Sequence[IngestRecord],
    source: str,
    received_at: datetime | None = None,
) -> int:
    """Insert ``records`` into the inbox for the processor, in one bulk INSERT.

    Returns how many rows were written. Nothing is committed here: the records become
    visible to the processor (and the ingest is acknowledged) when the caller commits.
    """
    if not records:
        return 0
    rows: list[dict[str, object]] = [
        {"project_id": project_id, "record": record.to_json(), "source": source}
        for record in records
    ]
    if received_at is not None:
        when = utc_naive(received_at)
        for row in rows:
            row["received_at"] = when
    session.execute(_INBOX.insert(), rows)
    return len(rows)


def enqueue_encoded(
    *,
    session: Session,
    project_id: int,
    encoded: Sequence[bytes],
    source: str,
    received_at: datetime,
) -> int:
    """Like :func:`enqueue` for records already serialised with ``IngestRecord.to_json()``."""
    if not encoded:
        return 0
    when = utc_naive(received_at)
    session.execute(
        _INBOX.insert(),
        [
            {"project_id": project_id, "record": blob, "source": source, "received_at": when}
            for blob in encoded
        ],
    )
    return len(encoded)


def record_rejections(
    *,
    session: Session,
    project_id: int | None,
    source: str,
    rejections: Sequence[tuple[str, str]],
    rejected_at: datetime | None = None,
) -> int:
    """Keep each refused record with its reason, so nothing is silently dropped.

    ``rejections`` are ``(reason, raw)`` pairs; ``raw`` (the record as received) is truncated
    to 64 KiB. ``project_id`` may be None when the project itself could not be resolved.
    Returns how many rows were written; the caller commits.
    """
    if not rejections:
        return 0
    rows: list[dict[str, object]] = [
        {
            "project_id": project_id,
            "source": source[:32],
            "reason": reason,
            "raw": raw[:MAX_RAW_CHARS],
        }
        for reason, raw in rejections
    ]
    if rejected_at is not None:
        when = utc_naive(rejected_at)
        for row in rows:
            row["rejected_at"] = when
    session.execute(insert(Rejection), rows)
    return len(rows)


def list_rejections(
    *,
    session: Session,
    project_id: int,
    limit: int = 100,
    source: str | None = None,
    reveal: bool = False,
) -> list[RejectionOut]:
    """Rejections of one project, newest first (at most ``limit``).

    Personal data in ``raw`` (PII properties, traits and identities; mobile numbers and
    e-mail addresses anywhere in text that is not JSON) is masked unless ``reveal`` — the
    caller checks ``pii:view`` and audits the reveal.
    """
    query = select(Rejection).where(Rejection.project_id == project_id)
    if source is not None:
        query = query.where(Rejection.source == source)
    query = query.order_by(Rejection.rejected_at.desc(), Rejection.id.desc()).limit(limit)
    rows = [RejectionOut.model_validate(row) for row in session.scalars(query)]
    if not reveal:
        for row in rows:
            row.raw = mask_raw(row.raw)
    return rows


_PII_KEYS = pii.PII_PROPERTIES | pii.PII_IDENTITY_KEYS | {"phone"}
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(\+?86)?1\d{10}(?!\d)")
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")


def mask_raw(raw: str) -> str:
    """A rejected record's raw text with personal data masked (see :func:`list_rejections`)."""
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = _MOBILE_IN_TEXT.sub(lambda m: pii.mask_value("mobile", m.group(0)), raw)
        return _EMAIL_IN_TEXT.sub(lambda m: pii.mask_value("email", m.group(0)), text)
    return orjson.dumps(_mask(parsed)).decode()


def _mask(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _mask(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(item, key) for item in value]
    if isinstance(value, str):
        if key in _PII_KEYS:
            return pii.mask_value(key, value)
        if _MOBILE_IN_TEXT.fullmatch(value) or _EMAIL_IN_TEXT.fullmatch(value):
            return pii.mask_value(key, value)
    return value


def create_key(
    *,
    session: Session,
    project_id: int,
    label: str = "",
    now: datetime | None = None,
    actor: str = "system",
) -> IngestKeyCreated:
    """Create an ingest key for a project; the clear key is in the answer and nowhere else.

    Only its SHA-256 is stored; the creation is audited (``ingest_key.create`` by ``actor``).
    :class:`NotFound` when the project does not exist.
    """
    project = projects.get(session=session, project_id=project_id)
    clear = new_secret(KEY_PREFIX)
    key = IngestKey(
        project_id=project.id,
        key_hash=sha256_hex(clear),
        prefix=clear[:SHOWN_PREFIX_CHARS],
        label=label,
    )
    if now is not None:
        key.created_at = utc_naive(now)
    session.add(key)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="ingest_key.create",
        target=f"ingest_key:{key.id}",
        detail={"prefix": key.prefix, "label": label},
        project_id=project.id,
        now=key.created_at,
    )
    return IngestKeyCreated(**_key_out(key, project.name).model_dump(), key=clear)


def list_keys(*, session: Session, project_id: int | None = None) -> list[IngestKeyOut]:
    """Ingest keys (never their hashes), of one project or of all, oldest first."""
    names = {p.id: p.name for p in projects.list_projects(session=session)}
    query = select(IngestKey).order_by(IngestKey.id)
    if project_id is not None:
        query = query.where(IngestKey.project_id == project_id)
    return [_key_out(key, names.get(key.project_id, "")) for key in session.scalars(query)]


def revoke_key(
    *, session: Session, prefix: str, now: datetime, actor: str = "system"
) -> IngestKeyOut:
    """Revoke the one key whose shown prefix starts with ``prefix`` (or the full clear key).

    Revoking twice is harmless; the revocation is audited (``ingest_key.revoke``).
    :class:`NotFound` when no key matches, :class:`Conflict` when several do (give more
    characters).
    """
    if not prefix:
        raise NotFound("no ingest key matches an empty prefix")
    if len(prefix) > SHOWN_PREFIX_CHARS:
        query = select(IngestKey).where(IngestKey.key_hash == sha256_hex(prefix))
    else:
        query = select(IngestKey).where(IngestKey.prefix.startswith(prefix, autoescape=True))
    matches = list(session.scalars(query))
    if not matches:
        raise NotFound(f"no ingest key starts with {prefix!r}")
    if len(matches) > 1:
        raise Conflict(f"{len(matches)} ingest keys start with {prefix!r}; give more characters")
    key = matches[0]
    if key.revoked_at is None:
        key.revoked_at = utc_naive(now)
        session.flush()
        audit.record(
            session=session,
            actor=actor,
            action="ingest_key.revoke",
            target=f"ingest_key:{key.id}",
            detail={"prefix": key.prefix},
            project_id=key.project_id,
            now=now,
        )
    project = projects.get(session=session, project_id=key.project_id)
    return _key_out(key, project.name)


def verify_key(*, session: Session, key: str) -> int:
    """The project id an ingest key belongs to.

    :class:`Unauthenticated` (401) when the key is empty or unknown, :class:`Forbidden` (403)
    when it has been revoked.
    """
    if not key:
        raise Unauthenticated("an ingest key is required")
    row = session.execute(
        select(IngestKey.project_id, IngestKey.revoked_at).where(
            IngestKey.key_hash == sha256_hex(key)
        )
    ).first()
    if row is None:
        raise Unauthenticated("unknown ingest key")
    if row.revoked_at is not None:
        raise Forbidden("ingest key has been revoked")
    return int(row.project_id)


def _record_project(session: Session, name: str, known: dict[str, ProjectOut | None]) -> ProjectOut:
    """The project a record names (cached per request); :class:`RecordRejected` if unknown."""
    if name not in known:
        try:
            known[name] = projects.get_by_name(session=session, name=name)
        except NotFound:
            known[name] = None
    project = known[name]
    if project is None:
        raise RecordRejected(f"unknown project {name!r}")
    return project


def _check_token(
    session: Session, token: str | None, project: ProjectOut, *, key_projects: dict[str, int]
) -> None:
    """Raise :class:`RecordRejected` unless ``token`` is a valid key of ``project``."""
    if not token:
        raise RecordRejected(f"project {project.name!r} requires a token ($token or token)")
    if token not in key_projects:
        try:
            key_projects[token] = verify_key(session=session, key=token)
        except FlywheelError as exc:
            raise RecordRejected(f"token refused: {exc.message}") from None
    if key_projects[token] != project.id:
        raise RecordRejected(f"token is not a key of project {project.name!r}")


def _raw_text(raw: Any) -> str:
    try:
        text = orjson.dumps(raw).decode()
    except TypeError:
        text = repr(raw)
    return text[:MAX_RAW_CHARS]


def _key_out(key: IngestKey, project: str) -> IngestKeyOut:
    return IngestKeyOut(
        id=key.id,
        project_id=key.project_id,
        project=project,
        prefix=key.prefix,
        label=key.label,
        created_at=key.created_at,
        revoked_at=key.revoked_at,
    )
