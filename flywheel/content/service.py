"""Content: materials, versions under review, the compliance phrase list, rendering.

Lifecycle of a version: ``draft`` → ``submitted`` → ``approved`` | ``rejected``. Editing an item
whose latest version is approved or rejected creates a new draft; the approved version stays the
sendable one until a newer version is approved. The checker runs on save, on submit and again on
approve; any finding blocks approval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import String, cast, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth import pii, scope
from flywheel.auth.schemas import Principal
from flywheel.auth.service import ensure_not_author
from flywheel.content import checker, templates
from flywheel.content.models import ContentItem, ContentPhrase, ContentReviewEvent, ContentVersion
from flywheel.content.schemas import (
    ContentEdit,
    ContentIn,
    ContentOut,
    ExportedContent,
    FindingOut,
    ImportRejection,
    ImportReport,
    PhraseIn,
    PhraseOut,
    RenderedMessage,
    ReviewEventOut,
    SmsOut,
    VersionOut,
)
from flywheel.content.storage import MediaStore
from flywheel.core.clock import utc_naive
from flywheel.core.errors import Conflict, FlywheelError, Forbidden, InvalidInput, NotFound
from flywheel.profiles import service as profiles
from flywheel.recommend import service as recommend_service
from flywheel.tags import service as tag_service
from flywheel.warehouse import Warehouse

log = structlog.get_logger(__name__)

SMS_SIGNATURE_DEFAULT = ""
SMS_OPT_OUT_DEFAULT = "拒收请回复R"


class NotApproved(FlywheelError):
    """The content has no approved version, so nothing can be sent (HTTP 409)."""

    status = 409
    code = "content_not_approved"


class DraftRejected(templates.TemplateRejected):
    """Unsaved fields sent to preview do not render (HTTP 422; ``detail.field``/``line``)."""

    status = 422


class BlockingFindings(Conflict):
    """Compliance findings block the approval (HTTP 409; ``detail.findings``)."""

    code = "compliance_findings"


# -- phrase list ------------------------------------------------------------------------------
def _seed(session: Session, project_id: int, now: datetime) -> None:
    present = session.scalar(
        select(func.count())
        .select_from(ContentPhrase)
        .where(ContentPhrase.project_id == project_id)
    )
    if present:
        return
    lists = (
        ("prohibited_claim", checker.DEFAULT_PROHIBITED),
        ("risk_warning", checker.DEFAULT_WARNINGS),
        ("promotion_trigger", checker.DEFAULT_TRIGGERS),
        ("suitability_note", checker.DEFAULT_SUITABILITY),
    )
    rows = [
        {
            "project_id": project_id,
            "rule": rule,
            "phrase": phrase,
            "updated_by": "system",
            "updated_at": utc_naive(now),
        }
        for rule, phrases in lists
        for phrase in phrases
    ]
    # Two sessions may seed a fresh project at once (e.g. two dispatchers): the second
    # one's rows are already there.
    dialect = session.get_bind().dialect.name
    insert_ = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert_(ContentPhrase).on_conflict_do_nothing(
            index_elements=["project_id", "rule", "phrase"]
        ),
        rows,
    )
    session.flush()


def _phrase_out(row: ContentPhrase) -> PhraseOut:
    return PhraseOut(
        id=row.id,
        phrase=row.phrase,
        rule=row.rule,
        note=row.note,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def list_phrases(*, session: Session, project_id: int, now: datetime) -> list[PhraseOut]:
    """The active phrase list of a project (seeded with the built-in lists on first use)."""
    _seed(session, project_id, now)
    rows = session.scalars(
        select(ContentPhrase)
        .where(ContentPhrase.project_id == project_id, ContentPhrase.active.is_(True))
        .order_by(ContentPhrase.rule, ContentPhrase.id)
    )
    return [_phrase_out(row) for row in rows]


def phrase_book(*, session: Session, project_id: int, now: datetime) -> checker.PhraseBook:
    """The project's phrase list as a :class:`checker.PhraseBook`."""
    return checker.PhraseBook.from_rows(
        (p.rule, p.phrase) for p in list_phrases(session=session, project_id=project_id, now=now)
    )


def add_phrase(
    *, session: Session, project_id: int, phrase_in: PhraseIn, actor: str, now: datetime
) -> PhraseOut:
    """Add (or re-activate) a phrase; audited as ``content.phrase_added``.

    :class:`InvalidInput` when the phrase is empty after normalisation.
    """
    if not checker.normalize_phrase(phrase_in.phrase):
        raise InvalidInput("phrase is empty once spaces and punctuation are removed")
    _seed(session, project_id, now)
    row = session.scalar(
        select(ContentPhrase).where(
            ContentPhrase.project_id == project_id,
            ContentPhrase.rule == phrase_in.rule,
            ContentPhrase.phrase == phrase_in.phrase,
        )
    )
    if row is None:
        row = ContentPhrase(project_id=project_id, rule=phrase_in.rule, phrase=phrase_in.phrase)
        session.add(row)
    row.active, row.note, row.updated_by, row.updated_at = (
        True,
        phrase_in.note,
        actor,
        utc_naive(now),
    )
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="content.phrase_added",
        target=f"content_phrase:{row.id}",
        detail={"rule": row.rule, "phrase": row.phrase},
        project_id=project_id,
        now=now,
    )
    return _phrase_out(row)


def delete_phrase(
    *, session: Session, project_id: int, phrase_id: int, actor: str, now: datetime
) -> None:
    """Deactivate a phrase (kept for history); :class:`NotFound` when unknown."""
    row = session.get(ContentPhrase, phrase_id)
    if row is None or row.project_id != project_id or not row.active:
        raise NotFound(f"phrase {phrase_id} not found")
    row.active, row.updated_by, row.updated_at = False, actor, utc_naive(now)
    audit.record(
        session=session,
        actor=actor,
        action="content.phrase_removed",
        target=f"content_phrase:{row.id}",
        detail={"rule": row.rule, "phrase": row.phrase},
        project_id=project_id,
        now=now,
    )
    session.flush()


def check_text(
    *,
    session: Session,
    project_id: int,
    text: str,
    now: datetime,
    product_card: bool = False,
    risk_level: str | None = None,
) -> list[FindingOut]:
    """Run the checker with the project's phrase list; positions are in ``text``."""
    book = phrase_book(session=session, project_id=project_id, now=now)
    found = checker.check(text, book=book, product_card=product_card, risk_level=risk_level)
    return [FindingOut(phrase=f.phrase, start=f.start, end=f.end, rule=f.rule) for f in found]


# -- items and versions ----------------------------------------------------------------------
def _item(session: Session, project_id: int, content_id: int) -> ContentItem:
    item = session.get(ContentItem, content_id)
    if item is None or item.project_id != project_id:
        raise NotFound(f"content {content_id} not found")
    return item


def _latest(session: Session, item: ContentItem) -> ContentVersion:
    version = session.scalar(
        select(ContentVersion)
        .where(ContentVersion.item_id == item.id)
        .order_by(ContentVersion.number.desc())
        .limit(1)
    )
    assert version is not None  # every item is created with version 1
    return version


def _version_text(version: ContentVersion) -> str:
    extra = [str(v) for v in version.fields.values() if isinstance(v, str | int | float)]
    return "\n".join([version.subject, version.body, *extra])


def _run_checks(
    session: Session, item: ContentItem, version: ContentVersion, now: datetime
) -> None:
    sources = [version.subject, version.body]
    sources += [value for value in version.fields.values() if isinstance(value, str)]
    for source in sources:
        templates.validate(source)
    risk = version.fields.get("risk_level")
    findings = check_text(
        session=session,
        project_id=item.project_id,
        text=_version_text(version),
        now=now,
        product_card=item.kind == "product_card",
        risk_level=str(risk) if risk else None,
    )
    version.findings = [f.model_dump() for f in findings]


def _version_out(version: ContentVersion) -> VersionOut:
    return VersionOut(
        id=version.id,
        item_id=version.item_id,
        number=version.number,
        status=version.status,
        subject=version.subject,
        body=version.body,
        fields=version.fields,
        fallbacks=version.fallbacks,
        findings=[FindingOut(**f) for f in version.findings],
        author=version.author,
        created_at=version.created_at,
        decided_by=version.decided_by,
        decided_at=version.decided_at,
        decision_comment=version.decision_comment,
    )


def _out(session: Session, item: ContentItem) -> ContentOut:
    return ContentOut(
        id=item.id,
        name=item.name,
        kind=item.kind,
        channel=item.channel,
        tags=item.tags,
        created_by=item.created_by,
        approved_version_id=item.approved_version_id,
        latest=_version_out(_latest(session, item)),
    )


def create_content(
    *, session: Session, project_id: int, content_in: ContentIn, principal: Principal, now: datetime
) -> ContentOut:
    """Create an item with draft version 1, checked on save.

    :class:`Conflict` for a duplicate name; :class:`templates.TemplateRejected` for an unsafe
    or invalid template.
    """
    item = _create(session, project_id, content_in, principal.actor, principal.user_id, now)
    return _out(session, item)


def _create(
    session: Session,
    project_id: int,
    content_in: ContentIn,
    actor: str,
    author_user_id: int | None,
    now: datetime,
) -> ContentItem:
    exists = session.scalar(
        select(ContentItem.id).where(
            ContentItem.project_id == project_id, ContentItem.name == content_in.name
        )
    )
    if exists is not None:
        raise Conflict(f"content named {content_in.name!r} already exists")
    moment = utc_naive(now)
    item = ContentItem(
        project_id=project_id,
        name=content_in.name,
        kind=content_in.kind,
        channel=content_in.channel,
        tags=sorted(set(content_in.tags)),
        author_user_id=author_user_id,
        created_by=actor,
        created_at=moment,
        updated_at=moment,
    )
    session.add(item)
    session.flush()
    version = ContentVersion(
        project_id=project_id,
        item_id=item.id,
        number=1,
        status="draft",
        subject=content_in.subject,
        body=content_in.body,
        fields=content_in.fields,
        fallbacks=content_in.fallbacks,
        author_user_id=author_user_id,
        author=actor,
        created_at=moment,
        updated_at=moment,
    )
    _run_checks(session, item, version, now)
    session.add(version)
    session.flush()
    log.info("content_created", content_id=item.id, project_id=project_id)
    return item


def edit_content(
    *,
    session: Session,
    project_id: int,
    content_id: int,
    edit: ContentEdit,
    principal: Principal,
    now: datetime,
) -> ContentOut:
    """Edit the latest draft, or start a new draft after an approved/rejected version.

    :class:`Conflict` while the latest version is submitted (decide it first).
    """
    item = _item(session, project_id, content_id)
    _edit(session, item, edit, principal.actor, principal.user_id, now)
    return _out(session, item)


def _edit(
    session: Session,
    item: ContentItem,
    edit: ContentEdit,
    actor: str,
    author_user_id: int | None,
    now: datetime,
) -> None:
    project_id = item.project_id
    latest = _latest(session, item)
    moment = utc_naive(now)
    if latest.status == "submitted":
        raise Conflict("the latest version is under review; approve or reject it first")
    if latest.status == "draft":
        version = latest
    else:
        version = ContentVersion(
            project_id=project_id,
            item_id=item.id,
            number=latest.number + 1,
            status="draft",
            subject=latest.subject,
            body=latest.body,
            fields=dict(latest.fields),
            fallbacks=dict(latest.fallbacks),
            created_at=moment,
        )
        session.add(version)
    if edit.subject is not None:
        version.subject = edit.subject
    if edit.body is not None:
        version.body = edit.body
    if edit.fields is not None:
        version.fields = edit.fields
    if edit.fallbacks is not None:
        version.fallbacks = edit.fallbacks
    if edit.tags is not None:
        item.tags = sorted(set(edit.tags))
    version.author_user_id, version.author, version.updated_at = author_user_id, actor, moment
    item.updated_at = moment
    _run_checks(session, item, version, now)
    session.flush()


def get_content(*, session: Session, project_id: int, content_id: int) -> ContentOut:
    """One item with its latest version; :class:`NotFound` when unknown."""
    return _out(session, _item(session, project_id, content_id))


def list_content(
    *, session: Session, project_id: int, q: str | None = None, tag: str | None = None
) -> list[ContentOut]:
    """Items of a project, optionally filtered by a name/body search and a tag."""
    query = select(ContentItem).where(ContentItem.project_id == project_id)
    if q:
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        bodies = select(ContentVersion.item_id).where(
            ContentVersion.project_id == project_id,
            ContentVersion.body.like(pattern, escape="\\"),
        )
        query = query.where(
            ContentItem.name.like(pattern, escape="\\") | ContentItem.id.in_(bodies)
        )
    items = [i for i in session.scalars(query.order_by(ContentItem.id)) if not tag or tag in i.tags]
    return [_out(session, item) for item in items]


def _event(
    session: Session, version: ContentVersion, action: str, actor: str, comment: str, now: datetime
) -> None:
    session.add(
        ContentReviewEvent(
            project_id=version.project_id,
            version_id=version.id,
            action=action,
            actor=actor,
            comment=comment,
            at=utc_naive(now),
        )
    )
    audit.record(
        session=session,
        actor=actor,
        action=f"content.{action}",
        target=f"content_version:{version.id}",
        detail={"item_id": version.item_id, "number": version.number, "comment": comment},
        project_id=version.project_id,
        now=now,
    )


def submit(
    *, session: Session, project_id: int, content_id: int, principal: Principal, now: datetime
) -> ContentOut:
    """Submit the latest draft for review (checker runs again); :class:`Conflict` if not a draft."""
    item = _item(session, project_id, content_id)
    version = _latest(session, item)
    if version.status != "draft":
        raise Conflict(f"only a draft can be submitted (latest is {version.status})")
    _run_checks(session, item, version, now)
    version.status = "submitted"
    _event(session, version, "submitted", principal.actor, "", now)
    session.flush()
    return _out(session, item)


def decide(
    *,
    session: Session,
    project_id: int,
    content_id: int,
    principal: Principal,
    approve: bool,
    comment: str,
    now: datetime,
) -> ContentOut:
    """Approve or reject the submitted version.

    :class:`SeparationOfDuties` (403) when the caller wrote the version; :class:`Conflict` when
    nothing is submitted; :class:`BlockingFindings` when approving a version with findings.
    """
    item = _item(session, project_id, content_id)
    version = _latest(session, item)
    if version.status != "submitted":
        raise Conflict(f"nothing to review (latest version is {version.status})")
    ensure_not_author(principal, version.author_user_id)
    if approve:
        _run_checks(session, item, version, now)
        if version.findings:
            raise BlockingFindings(
                "compliance findings block approval", detail={"findings": version.findings}
            )
        item.approved_version_id = version.id
    version.status = "approved" if approve else "rejected"
    version.decided_by, version.decided_at = principal.actor, utc_naive(now)
    version.decision_comment = comment
    _event(session, version, version.status, principal.actor, comment, now)
    session.flush()
    log.info("content_reviewed", content_id=item.id, status=version.status)
    return _out(session, item)


def review_queue(*, session: Session, project_id: int, status: str) -> list[VersionOut]:
    """Versions in a review state (``submitted`` for compliance staff), oldest first."""
    rows = session.scalars(
        select(ContentVersion)
        .where(ContentVersion.project_id == project_id, ContentVersion.status == status)
        .order_by(ContentVersion.updated_at, ContentVersion.id)
    )
    return [_version_out(v) for v in rows]


def history(*, session: Session, project_id: int, content_id: int) -> list[ReviewEventOut]:
    """The approval history of an item (every submit/approve/reject, oldest first)."""
    item = _item(session, project_id, content_id)
    rows = session.execute(
        select(ContentReviewEvent)
        .join(ContentVersion, ContentVersion.id == ContentReviewEvent.version_id)
        .where(ContentVersion.item_id == item.id)
        .order_by(ContentReviewEvent.id)
    ).scalars()
    return [
        ReviewEventOut(
            version_id=e.version_id, action=e.action, actor=e.actor, comment=e.comment, at=e.at
        )
        for e in rows
    ]


# -- sync: import / export ------------------------------------------------------------------
def import_content(
    *,
    session: Session,
    project_id: int,
    items: Sequence[ContentIn],
    actor: str,
    author_user_id: int | None,
    now: datetime,
) -> ImportReport:
    """Create new items and add a draft version to existing ones (matched by name).

    Each item is applied in its own SAVEPOINT: a refused item (unsafe template, under review)
    is reported in ``rejected`` with the reason and does not undo the others. Audited as
    ``content.imported``.
    """
    report = ImportReport()
    for content_in in items:
        try:
            with session.begin_nested():
                existing = session.scalar(
                    select(ContentItem).where(
                        ContentItem.project_id == project_id, ContentItem.name == content_in.name
                    )
                )
                if existing is None:
                    _create(session, project_id, content_in, actor, author_user_id, now)
                    report.created.append(content_in.name)
                else:
                    edit = ContentEdit(
                        tags=content_in.tags,
                        subject=content_in.subject,
                        body=content_in.body,
                        fields=content_in.fields,
                        fallbacks=content_in.fallbacks,
                    )
                    _edit(session, existing, edit, actor, author_user_id, now)
                    report.updated.append(content_in.name)
        except FlywheelError as exc:
            report.rejected.append(ImportRejection(name=content_in.name, error=exc.message))
    audit.record(
        session=session,
        actor=actor,
        action="content.imported",
        target=f"project:{project_id}",
        detail={
            "created": len(report.created),
            "updated": len(report.updated),
            "rejected": len(report.rejected),
        },
        project_id=project_id,
        now=now,
    )
    session.flush()
    return report


def delete_media(
    *, session: Session, store: MediaStore, project_id: int, name: str, actor: str, now: datetime
) -> None:
    """Delete a stored image (audited ``content.media_deleted``).

    :class:`Conflict` while any version of the project's content references it (in
    ``fields``); :class:`NotFound` when the store has no such image.
    """
    used = session.scalar(
        select(ContentVersion.item_id)
        .where(
            ContentVersion.project_id == project_id,
            cast(ContentVersion.fields, String).contains(name, autoescape=True),
        )
        .limit(1)
    )
    if used is not None:
        raise Conflict(f"image {name} is used by content {used}; edit that content first")
    store.delete(project_id=project_id, name=name)
    audit.record(
        session=session,
        actor=actor,
        action="content.media_deleted",
        target=f"media:{name}",
        detail={},
        project_id=project_id,
        now=now,
    )


def export_content(
    *, session: Session, project_id: int, actor: str, now: datetime
) -> list[ExportedContent]:
    """Every item with its latest version and its approved version (if any); audited."""
    exported: list[ExportedContent] = []
    for item in session.scalars(
        select(ContentItem).where(ContentItem.project_id == project_id).order_by(ContentItem.id)
    ):
        latest = _latest(session, item)
        approved = (
            session.get(ContentVersion, item.approved_version_id)
            if item.approved_version_id
            else None
        )
        exported.append(
            ExportedContent(
                name=item.name,
                kind=item.kind,
                channel=item.channel,
                tags=item.tags,
                subject=latest.subject,
                body=latest.body,
                fields=latest.fields,
                fallbacks=latest.fallbacks,
                status=latest.status,
                approved=_version_out(approved) if approved else None,
            )
        )
    audit.record(
        session=session,
        actor=actor,
        action="content.exported",
        target=f"project:{project_id}",
        detail={"items": len(exported)},
        project_id=project_id,
        now=now,
    )
    session.flush()
    return exported


# -- rendering ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """What a message is rendered from: a saved version, or one with unsaved edits laid over."""

    subject: str
    body: str
    fields: Mapping[str, Any]
    fallbacks: Mapping[str, str]


def _source(version: ContentVersion, draft: ContentEdit | None = None) -> _Source:
    edit = draft or ContentEdit()
    return _Source(
        subject=version.subject if edit.subject is None else edit.subject,
        body=version.body if edit.body is None else edit.body,
        fields=version.fields if edit.fields is None else edit.fields,
        fallbacks=version.fallbacks if edit.fallbacks is None else edit.fallbacks,
    )


def _render_field(
    name: str, source: str, context: Mapping[str, Any], fallbacks: Mapping[str, str], html: bool
) -> str:
    # Name the field in the error: "body: template syntax error on line 2: …".
    try:
        return templates.render_text(source, context, fallbacks=fallbacks, html=html)
    except templates.TemplateRejected as exc:
        raise templates.TemplateRejected(
            f"{name}: {exc.message}", detail={**exc.detail, "field": name}
        ) from exc


def _render(
    item: ContentItem,
    version_id: int,
    source: _Source,
    context: Mapping[str, Any],
    *,
    sms_signature: str,
    sms_opt_out: str,
    draft: bool = False,
) -> RenderedMessage:
    fallbacks = source.fallbacks
    subject = _render_field("subject", source.subject, context, fallbacks, False)
    body = _render_field("body", source.body, context, fallbacks, False)
    html = None
    if item.channel == "email":
        html = _render_field("body", source.body, context, fallbacks, True)
    fields = {
        key: _render_field(f"fields.{key}", str(value), context, fallbacks, False)
        for key, value in source.fields.items()
        if isinstance(value, str)
    }
    sms = None
    if item.channel == "sms":
        body = templates.apply_sms_rules(body, signature=sms_signature, opt_out=sms_opt_out)
        count = templates.sms_count(body)
        sms = SmsOut(
            encoding=count.encoding,
            length=count.length,
            segments=count.segments,
            per_segment=count.per_segment,
        )
    return RenderedMessage(
        content_id=item.id,
        version_id=version_id,
        channel=item.channel,
        subject=subject,
        body=body,
        html=html,
        fields=fields,
        sms=sms,
        draft=draft,
    )


def render_for_customer(
    *,
    session: Session,
    project_id: int,
    content_id: int,
    user_id: int,
    now: datetime,
    warehouse: Warehouse | None = None,
    tags: Mapping[str, Any] | None = None,
    recommendations: list[Any] | None = None,
    models_root: Path | None = None,
    recommend_scene: str | None = None,
    recommend_n: int = 3,
    sms_signature: str = SMS_SIGNATURE_DEFAULT,
    sms_opt_out: str = SMS_OPT_OUT_DEFAULT,
) -> RenderedMessage:
    """Render the APPROVED version of an item for one customer (the journey engine's call).

    Context: ``user`` (profile properties), ``tags``, ``recommendations``, ``product`` (the
    version's fields). ``tags`` and ``recommendations`` may be passed in; otherwise, with a
    ``warehouse``, tags are read with ``tags.service.user_tags`` and, with ``models_root`` and
    ``recommend_scene``, the top ``recommend_n`` items come from ``recommend.service.recommend``
    (each as a dict). :class:`NotApproved` (409) when no version is approved;
    :class:`NotFound` for an unknown item.
    """
    item = _item(session, project_id, content_id)
    if item.approved_version_id is None:
        raise NotApproved(f"content {content_id} has no approved version; it cannot be sent")
    version = session.get(ContentVersion, item.approved_version_id)
    assert version is not None
    profile = profiles.get_profile(session=session, project_id=project_id, user_id=user_id) or {}
    if tags is None and warehouse is not None:
        tags = tag_service.user_tags(warehouse=warehouse, project_id=project_id, user_id=user_id)
    if (
        recommendations is None
        and warehouse is not None
        and models_root is not None
        and recommend_scene is not None
    ):
        recommended = recommend_service.recommend(
            session=session,
            warehouse=warehouse,
            models_root=models_root,
            project_id=project_id,
            scene=recommend_scene,
            user_id=user_id,
            now=now,
            n=recommend_n,
        )
        recommendations = [r.model_dump(mode="json") for r in recommended.items]
    context = {
        "user": profile,
        "tags": dict(tags or {}),
        "recommendations": list(recommendations or []),
        "product": version.fields,
    }
    return _render(
        item,
        version.id,
        _source(version),
        context,
        sms_signature=sms_signature,
        sms_opt_out=sms_opt_out,
    )


def preview(
    *,
    session: Session,
    project_id: int,
    content_id: int,
    principal: Principal,
    user_id: int | None,
    reveal: bool,
    now: datetime,
    draft: ContentEdit | None = None,
) -> RenderedMessage:
    """Render the LATEST version (any status) for a chosen customer, PII masked unless revealed.

    With ``draft`` (the unsaved editor fields, as ``PATCH`` carries them) those fields are
    rendered over the latest version's, through the same sandbox and masking, and nothing is
    stored: the editor sees a change before saving it starts a new version and resets review.
    A draft needs ``content:write`` (:class:`Forbidden`) since it runs text nobody saved
    against a customer's profile; a draft template that does not render is
    :class:`DraftRejected` (422, naming the field and line).

    A customer outside the principal's data scope is :class:`NotFound`. Reveal requires
    ``pii:view`` (:func:`flywheel.auth.pii.authorize_reveal`) and is audited.
    """
    if draft is not None and not principal.can("content:write"):
        raise Forbidden("permission 'content:write' required to preview unsaved changes")
    item = _item(session, project_id, content_id)
    version = _latest(session, item)
    source = _source(version, draft)
    show = pii.authorize_reveal(principal, reveal=reveal)
    profile: dict[str, Any] = {}
    if user_id is not None:
        found = profiles.get_profile(session=session, project_id=project_id, user_id=user_id)
        profile = found or {}
        if not scope.is_unrestricted(principal) and not scope.in_scope(principal, profile):
            raise NotFound(f"customer {user_id} not found")
        if show:
            pii.audit_reveal(
                session=session,
                principal=principal,
                customer=f"user_id:{user_id}",
                fields=sorted(profile),
                project_id=project_id,
                now=now,
            )
    context = {
        "user": pii.mask_properties(profile, reveal=show),
        "tags": {},
        "recommendations": [],
        "product": source.fields,
    }
    try:
        return _render(
            item,
            version.id,
            source,
            context,
            sms_signature=SMS_SIGNATURE_DEFAULT,
            sms_opt_out=SMS_OPT_OUT_DEFAULT,
            draft=draft is not None,
        )
    except templates.TemplateRejected as exc:
        if draft is None:
            raise
        raise DraftRejected(exc.message, detail=exc.detail) from exc
