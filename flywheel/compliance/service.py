"""Compliance: settings, consents, opt-outs, black/white lists and the send-time gate.

The gate (:func:`evaluate`) is set-oriented: the dispatcher hands it every claimed message of
a batch and it loads settings, profiles, opt-outs, consents, list entries and recent contacts
for the whole batch in a handful of queries. Rules, in the order they are applied:

1. opt-out (channel or ``*``, purpose or ``*``) → block ``opted_out`` — wins over everything;
2. blacklist (user id or identity value, channel or ``*``) → block ``blacklisted``;
3. ``whitelist_only`` and not whitelisted → block ``not_whitelisted``;
4. marketing on a ``consent_required`` channel without a granted consent → ``no_consent``;
5. suitability (shared rule of :mod:`flywheel.recommend.suitability`) over the spec's product
   and every recommended item → ``no_assessment`` / ``assessment_expired`` /
   ``unsuitable_product``;
6. marketing inside quiet hours → defer to the end of the window (never dropped);
7. marketing over a per-channel or the global cap → block ``frequency_cap``; when several
   messages of one customer in the batch compete, higher priority (then older) wins.

Service notices (``purpose == "service"``) and internal channels skip 4, 6 and 7.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth import scope
from flywheel.auth.schemas import Principal
from flywheel.compliance.models import ComplianceSettings, Consent, ListEntry, OptOut
from flywheel.compliance.schemas import (
    ALLOW,
    Candidate,
    ComplianceSettingsIn,
    ComplianceSettingsOut,
    ConsentIn,
    ConsentOut,
    Contact,
    CustomerCompliance,
    Decision,
    ListEntryIn,
    ListEntryOut,
    OptOutIn,
    OptOutOut,
    Reason,
    Verdict,
)
from flywheel.core.clock import to_utc, utc_naive
from flywheel.core.errors import Conflict, NotFound
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.recommend import suitability

#: Loads the contacts (messages counting against caps) of these customers since a moment.
RecentContacts = Callable[[Sequence[int], datetime], Iterable[Contact]]

MARKETING = "marketing"
SERVICE = "service"
ANY = "*"
_CHUNK = 900
#: A per-customer (channel, purpose) rule row: a consent or an opt-out.
_Row = TypeVar("_Row", Consent, OptOut)


# -- settings ---------------------------------------------------------------------------------
def get_settings(*, session: Session, project_id: int) -> ComplianceSettingsOut:
    """The project's effective settings (the defaults until someone saves them)."""
    row = session.get(ComplianceSettings, project_id)
    if row is None:
        return ComplianceSettingsOut()
    return ComplianceSettingsOut(
        **ComplianceSettingsIn.model_validate(row.values).model_dump(),
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def put_settings(
    *,
    session: Session,
    project_id: int,
    settings_in: ComplianceSettingsIn,
    actor: str,
    now: datetime,
) -> ComplianceSettingsOut:
    """Replace the project's settings; audited with the old and new values.

    A body without ``journey_publish_review`` keeps the current value: a settings file saved
    before four-eyes publishing existed must not switch it off unnoticed."""
    before = get_settings(session=session, project_id=project_id)
    values = settings_in.model_dump(mode="json")
    if "journey_publish_review" not in settings_in.model_fields_set:
        values["journey_publish_review"] = before.journey_publish_review
    row = session.get(ComplianceSettings, project_id)
    if row is None:
        row = ComplianceSettings(project_id=project_id, values=values)
        session.add(row)
    row.values = values
    row.updated_by = actor
    row.updated_at = utc_naive(now)
    audit.record(
        session=session,
        actor=actor,
        action="compliance.settings_updated",
        target=f"project:{project_id}",
        detail={
            "before": ComplianceSettingsIn(
                **before.model_dump(exclude={"updated_by", "updated_at"})
            ).model_dump(mode="json"),
            "after": values,
        },
        project_id=project_id,
        now=now,
    )
    session.flush()
    return get_settings(session=session, project_id=project_id)


# -- consents and opt-outs --------------------------------------------------------------------
def _check_scope(session: Session, project_id: int, user_id: int, principal: Principal) -> None:
    if scope.is_unrestricted(principal):
        return
    profile = profiles.get_profile(session=session, project_id=project_id, user_id=user_id) or {}
    if not scope.in_scope(principal, profile):
        raise NotFound(f"customer {user_id} not found")


def _consent_out(row: Consent) -> ConsentOut:
    return ConsentOut(
        user_id=row.user_id,
        channel=row.channel,
        purpose=row.purpose,
        granted=row.granted,
        source=row.source,
        at=row.at,
        recorded_by=row.recorded_by,
    )


def _opt_out_out(row: OptOut) -> OptOutOut:
    return OptOutOut(
        user_id=row.user_id,
        channel=row.channel,
        purpose=row.purpose,
        source=row.source,
        at=row.at,
        recorded_by=row.recorded_by,
    )


def customer_compliance(
    *, session: Session, project_id: int, user_id: int, principal: Principal
) -> CustomerCompliance:
    """A customer's consents and opt-outs (:class:`NotFound` outside the principal's scope)."""
    _check_scope(session, project_id, user_id, principal)
    consents = session.scalars(
        select(Consent)
        .where(Consent.project_id == project_id, Consent.user_id == user_id)
        .order_by(Consent.channel, Consent.purpose)
    ).all()
    opt_outs = session.scalars(
        select(OptOut)
        .where(OptOut.project_id == project_id, OptOut.user_id == user_id)
        .order_by(OptOut.channel, OptOut.purpose)
    ).all()
    return CustomerCompliance(
        user_id=user_id,
        consents=[_consent_out(c) for c in consents],
        opt_outs=[_opt_out_out(o) for o in opt_outs],
    )


def _require_customer(session: Session, project_id: int, user_id: int) -> None:
    if not identity.user_exists(session=session, project_id=project_id, user_id=user_id):
        raise NotFound(f"customer {user_id} not found")


def set_consent(
    *,
    session: Session,
    project_id: int,
    user_id: int,
    consent_in: ConsentIn,
    actor: str,
    now: datetime,
    principal: Principal | None = None,
) -> ConsentOut:
    """Record (or replace) the customer's consent for (channel, purpose); audited."""
    row = _customer_row(
        session, Consent, project_id, user_id, consent_in.channel, consent_in.purpose, principal
    )
    row.granted = consent_in.granted
    row.source = consent_in.source
    row.at = utc_naive(consent_in.at or now)
    row.recorded_by = actor
    audit.record(
        session=session,
        actor=actor,
        action="compliance.consent_recorded",
        target=f"user_id:{user_id}",
        detail=consent_in.model_dump(mode="json"),
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _consent_out(row)


def _customer_row(
    session: Session,
    model: type[_Row],
    project_id: int,
    user_id: int,
    channel: str,
    purpose: str,
    principal: Principal | None,
) -> _Row:
    """The customer's consent or opt-out row for (channel, purpose), new (added, no id yet)
    when there is none; the customer must exist and be in the principal's scope."""
    _require_customer(session, project_id, user_id)
    if principal is not None:
        _check_scope(session, project_id, user_id, principal)
    row = session.scalar(
        select(model).where(
            model.project_id == project_id,
            model.user_id == user_id,
            model.channel == channel,
            model.purpose == purpose,
        )
    )
    if row is None:
        row = model(project_id=project_id, user_id=user_id, channel=channel, purpose=purpose)
        session.add(row)
    return row


def grant_consents(
    *,
    session: Session,
    project_id: int,
    user_ids: Sequence[int],
    channel: str,
    purpose: str,
    source: str,
    now: datetime,
) -> int:
    """Bulk consent import (e.g. from the account-opening system): skip existing rows."""
    at = utc_naive(now)
    existing: set[int] = set()
    ids = sorted(set(user_ids))
    for start in range(0, len(ids), _CHUNK):
        existing.update(
            int(u)
            for u in session.scalars(
                select(Consent.user_id).where(
                    Consent.project_id == project_id,
                    Consent.channel == channel,
                    Consent.purpose == purpose,
                    Consent.user_id.in_(ids[start : start + _CHUNK]),
                )
            )
        )
    rows = [
        {
            "project_id": project_id,
            "user_id": u,
            "channel": channel,
            "purpose": purpose,
            "granted": True,
            "source": source,
            "at": at,
            "recorded_by": "import",
        }
        for u in ids
        if u not in existing
    ]
    if rows:
        session.execute(insert(Consent), rows)
    return len(rows)


def opt_out(
    *,
    session: Session,
    project_id: int,
    user_id: int,
    opt_out_in: OptOutIn,
    actor: str,
    now: datetime,
    principal: Principal | None = None,
) -> OptOutOut:
    """Record that the customer opted out of (channel, purpose); audited. Idempotent: the
    first opt-out's source and time are kept."""
    row = _customer_row(
        session, OptOut, project_id, user_id, opt_out_in.channel, opt_out_in.purpose, principal
    )
    if row.id is None:
        row.source = opt_out_in.source
        row.at = utc_naive(opt_out_in.at or now)
        row.recorded_by = actor
    audit.record(
        session=session,
        actor=actor,
        action="compliance.opted_out",
        target=f"user_id:{user_id}",
        detail=opt_out_in.model_dump(mode="json"),
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _opt_out_out(row)


def opt_out_identity(
    *,
    session: Session,
    project_id: int,
    key: str,
    value: str,
    opt_out_in: OptOutIn,
    actor: str,
    now: datetime,
) -> OptOutOut:
    """Opt-out of the customer holding identity (key, value), e.g. an SMS "R" reply from a
    mobile number. :class:`NotFound` when nobody holds it."""
    user_id = identity.find_user_id(session=session, project_id=project_id, key=key, value=value)
    if user_id is None:
        raise NotFound(f"no customer with identity {key}")
    return opt_out(
        session=session,
        project_id=project_id,
        user_id=user_id,
        opt_out_in=opt_out_in,
        actor=actor,
        now=now,
    )


def remove_opt_out(
    *,
    session: Session,
    project_id: int,
    user_id: int,
    channel: str,
    purpose: str,
    actor: str,
    now: datetime,
    principal: Principal | None = None,
) -> None:
    """The customer subscribes again; audited. :class:`NotFound` when there is no such opt-out."""
    if principal is not None:
        _check_scope(session, project_id, user_id, principal)
    result = session.execute(
        delete(OptOut).where(
            OptOut.project_id == project_id,
            OptOut.user_id == user_id,
            OptOut.channel == channel,
            OptOut.purpose == purpose,
        )
    )
    if not getattr(result, "rowcount", 0):
        raise NotFound(f"no opt-out of customer {user_id} for {channel}/{purpose}")
    audit.record(
        session=session,
        actor=actor,
        action="compliance.opt_out_removed",
        target=f"user_id:{user_id}",
        detail={"channel": channel, "purpose": purpose},
        project_id=project_id,
        now=now,
    )
    session.flush()


# -- black and white lists ---------------------------------------------------------------------
def _entry_out(row: ListEntry) -> ListEntryOut:
    return ListEntryOut(
        id=row.id,
        kind=row.kind,
        key=row.key,
        value=row.value,
        channel=row.channel,
        note=row.note,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def list_entries(
    *,
    session: Session,
    project_id: int,
    kind: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[ListEntryOut]:
    """Black/white list entries, newest first."""
    stmt = select(ListEntry).where(ListEntry.project_id == project_id)
    if kind is not None:
        stmt = stmt.where(ListEntry.kind == kind)
    rows = session.scalars(stmt.order_by(ListEntry.id.desc()).limit(limit).offset(offset)).all()
    return [_entry_out(r) for r in rows]


def add_entry(
    *, session: Session, project_id: int, entry_in: ListEntryIn, actor: str, now: datetime
) -> ListEntryOut:
    """Add a list entry; :class:`Conflict` when the same entry exists. Audited."""
    exists = session.scalar(
        select(ListEntry.id).where(
            ListEntry.project_id == project_id,
            ListEntry.kind == entry_in.kind,
            ListEntry.key == entry_in.key,
            ListEntry.value == entry_in.value,
            ListEntry.channel == entry_in.channel,
        )
    )
    if exists is not None:
        raise Conflict(f"this {entry_in.kind}list entry exists already (id {exists})")
    row = ListEntry(
        project_id=project_id,
        kind=entry_in.kind,
        key=entry_in.key,
        value=entry_in.value,
        channel=entry_in.channel,
        note=entry_in.note,
        created_by=actor,
        created_at=utc_naive(now),
    )
    session.add(row)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="compliance.list_entry_added",
        target=f"list_entry:{row.id}",
        detail={"kind": row.kind, "key": row.key, "channel": row.channel},
        project_id=project_id,
        now=now,
    )
    session.flush()
    return _entry_out(row)


def delete_entry(
    *, session: Session, project_id: int, entry_id: int, actor: str, now: datetime
) -> None:
    """Remove a list entry (:class:`NotFound` when absent). Audited."""
    row = session.get(ListEntry, entry_id)
    if row is None or row.project_id != project_id:
        raise NotFound(f"list entry {entry_id} not found")
    detail = {"kind": row.kind, "key": row.key, "channel": row.channel}
    session.delete(row)
    audit.record(
        session=session,
        actor=actor,
        action="compliance.list_entry_deleted",
        target=f"list_entry:{entry_id}",
        detail=detail,
        project_id=project_id,
        now=now,
    )
    session.flush()


# -- the gate -----------------------------------------------------------------------------------
def _parse_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet_until(settings: ComplianceSettingsIn, now: datetime) -> datetime | None:
    """The end of the quiet window ``now`` falls in (aware UTC), or None outside quiet hours."""
    quiet = settings.quiet_hours
    if not quiet.enabled or quiet.start == quiet.end:
        return None
    zone = ZoneInfo(quiet.timezone)
    local = to_utc(now).astimezone(zone)
    start, end, moment = _parse_time(quiet.start), _parse_time(quiet.end), local.time()
    if start < end:
        inside = start <= moment < end
        day = local.date()
    else:  # spans midnight, e.g. 21:00–08:00
        inside = moment >= start or moment < end
        day = local.date() + timedelta(days=1) if moment >= start else local.date()
    if not inside:
        return None
    return to_utc(datetime.combine(day, end, tzinfo=zone))


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _matches(channel_rule: str, purpose_rule: str, c: Candidate) -> bool:
    return (channel_rule == ANY or channel_rule in c.channels) and purpose_rule in (
        ANY,
        c.purpose,
    )


def _needs_consent(c: Candidate, needs_consent: set[str]) -> bool:
    return (
        c.customer_facing
        and c.purpose == MARKETING
        and any(name in needs_consent for name in c.channels)
    )


def _product_level(value: int | str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, int):
        return value if 1 <= value <= 5 else suitability.UNRATED
    return suitability.risk_level("product", value)


def _suitability(candidate: Candidate, profile: Mapping[str, Any], today: Any) -> Reason | None:
    levels: list[int] = []
    product = _product_level(candidate.product_risk_level)
    if product is not None:
        levels.append(product)
    for item in candidate.recommendations:
        levels.append(
            suitability.risk_level(str(item.get("item_type") or ""), item.get("risk_level"))
        )
    risky = [lvl for lvl in levels if lvl != suitability.NO_RISK]
    if not risky:
        return None
    tolerance = profile.get("risk_tolerance")
    expiry = profile.get("risk_assessment_expiry")
    max_level = suitability.tolerance_level(tolerance, expiry, today=today)
    if all(suitability.allowed(lvl, max_level) for lvl in risky):
        return None
    if max_level == suitability.UNASSESSED_MAX:
        assessed = suitability.tolerance_level(tolerance, None, today=today)
        if assessed != suitability.UNASSESSED_MAX:
            return Reason.ASSESSMENT_EXPIRED
        return Reason.NO_ASSESSMENT
    return Reason.UNSUITABLE_PRODUCT


def _load_opt_outs(
    session: Session, project_id: int, users: Sequence[int]
) -> dict[int, list[tuple[str, str]]]:
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for chunk in _chunks(users):
        for user_id, channel, purpose in session.execute(
            select(OptOut.user_id, OptOut.channel, OptOut.purpose).where(
                OptOut.project_id == project_id, OptOut.user_id.in_(chunk)
            )
        ):
            found[int(user_id)].append((channel, purpose))
    return found


def _load_consents(
    session: Session, project_id: int, users: Sequence[int]
) -> dict[int, list[tuple[str, str, bool]]]:
    """user → [(channel, purpose, granted)]: withdrawals too (a specific withdrawal beats a
    broader grant, see :func:`_consented`)."""
    found: dict[int, list[tuple[str, str, bool]]] = defaultdict(list)
    for chunk in _chunks(users):
        for user_id, channel, purpose, granted in session.execute(
            select(Consent.user_id, Consent.channel, Consent.purpose, Consent.granted).where(
                Consent.project_id == project_id, Consent.user_id.in_(chunk)
            )
        ):
            found[int(user_id)].append((channel, purpose, bool(granted)))
    return found


def _consented(c: Candidate, rows: Iterable[tuple[str, str, bool]]) -> bool:
    """Whether the most specific consent row matching ``c`` grants: the channel itself before
    its family before ``*``, the purpose itself before ``*``. A customer who granted "all
    WeChat" but withdrew template messages gets no template message."""
    best: tuple[tuple[int, int], bool] | None = None
    for channel, purpose, granted in rows:
        if not _matches(channel, purpose, c):
            continue
        rank = (
            0 if channel == c.channel else (2 if channel == ANY else 1),
            0 if purpose == c.purpose else 1,
        )
        if best is None or rank < best[0]:
            best = (rank, granted)
    return best is not None and best[1]


def _load_lists(
    session: Session, project_id: int, users: Sequence[int]
) -> dict[int, list[tuple[str, str]]]:
    """user → [(kind, channel)] of the list entries matching the customer."""
    found: dict[int, list[tuple[str, str]]] = defaultdict(list)
    any_entry = session.scalar(
        select(ListEntry.id).where(ListEntry.project_id == project_id).limit(1)
    )
    if any_entry is None:
        return found
    for chunk in _chunks(users):
        for kind, value, channel in session.execute(
            select(ListEntry.kind, ListEntry.value, ListEntry.channel).where(
                ListEntry.project_id == project_id,
                ListEntry.key == "user_id",
                ListEntry.value.in_([str(u) for u in chunk]),
            )
        ):
            found[int(value)].append((kind, channel))
    keyed = session.scalar(
        select(ListEntry.id)
        .where(ListEntry.project_id == project_id, ListEntry.key != "user_id")
        .limit(1)
    )
    if keyed is None:
        return found
    holders: dict[tuple[str, str], list[int]] = defaultdict(list)
    for user_id, held in identity.identities_of(
        session=session, project_id=project_id, user_ids=users
    ).items():
        for key, value, _ in held:
            holders[(key, value)].append(user_id)
    pairs = list(holders)
    for chunk in _chunks(pairs):
        for kind, key, value, channel in session.execute(
            select(ListEntry.kind, ListEntry.key, ListEntry.value, ListEntry.channel).where(
                ListEntry.project_id == project_id,
                tuple_(ListEntry.key, ListEntry.value).in_(list(chunk)),
            )
        ):
            for user_id in holders[(key, value)]:
                found[user_id].append((kind, channel))
    return found


def evaluate(
    *,
    session: Session,
    project_id: int,
    candidates: Sequence[Candidate],
    now: datetime,
    recent_contacts: RecentContacts | None = None,
    settings: ComplianceSettingsIn | None = None,
    profiles_by_user: Mapping[int, Mapping[str, Any]] | None = None,
) -> list[Decision]:
    """One :class:`Decision` per candidate, in order (see the module doc for the rules).

    ``recent_contacts`` loads the messages already counting against caps (the dispatcher
    passes a query over its outbox); without it only the batch itself is counted.
    ``settings`` and ``profiles_by_user`` may be passed when the caller has them already.
    Reads only; never writes.
    """
    if not candidates:
        return []
    config = settings or get_settings(session=session, project_id=project_id)
    users = sorted({c.user_id for c in candidates})
    if profiles_by_user is None:
        profiles_by_user = profiles.load_profiles(
            session=session, project_id=project_id, user_ids=users
        )
    opt_outs = _load_opt_outs(session, project_id, users)
    lists = _load_lists(session, project_id, users)
    needs_consent = set(config.consent_required)
    consent_users = sorted({c.user_id for c in candidates if _needs_consent(c, needs_consent)})
    consents = _load_consents(session, project_id, consent_users) if consent_users else {}
    today = suitability.business_date(now)
    quiet_end = quiet_until(config, now)

    decisions: list[Decision | None] = []
    capped: list[int] = []
    for index, c in enumerate(candidates):
        decision = _rules(
            c, opt_outs, lists, consents, config, needs_consent, profiles_by_user, today
        )
        if decision is None and c.customer_facing and c.purpose == MARKETING:
            if quiet_end is not None:
                decision = Decision(Verdict.DEFER, Reason.QUIET_HOURS, quiet_end)
            else:
                capped.append(index)
        decisions.append(decision)
    if capped:
        _apply_caps(candidates, capped, decisions, config, now, recent_contacts)
    return [d if d is not None else ALLOW for d in decisions]


def _rules(
    c: Candidate,
    opt_outs: Mapping[int, list[tuple[str, str]]],
    lists: Mapping[int, list[tuple[str, str]]],
    consents: Mapping[int, list[tuple[str, str, bool]]],
    config: ComplianceSettingsIn,
    needs_consent: set[str],
    profiles_by_user: Mapping[int, Mapping[str, Any]],
    today: Any,
) -> Decision | None:
    if any(_matches(ch, pu, c) for ch, pu in opt_outs.get(c.user_id, ())):
        return Decision(Verdict.BLOCK, Reason.OPTED_OUT)
    entries = [kind for kind, ch in lists.get(c.user_id, ()) if ch == ANY or ch in c.channels]
    if "black" in entries:
        return Decision(Verdict.BLOCK, Reason.BLACKLISTED)
    if config.whitelist_only and "white" not in entries:
        return Decision(Verdict.BLOCK, Reason.NOT_WHITELISTED)
    if _needs_consent(c, needs_consent) and not _consented(c, consents.get(c.user_id, ())):
        return Decision(Verdict.BLOCK, Reason.NO_CONSENT)
    unsuitable = _suitability(c, profiles_by_user.get(c.user_id, {}), today)
    if unsuitable is not None:
        return Decision(Verdict.BLOCK, unsuitable)
    return None


def _apply_caps(
    candidates: Sequence[Candidate],
    capped: list[int],
    decisions: list[Decision | None],
    config: ComplianceSettingsIn,
    now: datetime,
    recent_contacts: RecentContacts | None,
) -> None:
    caps = config.channel_caps
    global_cap = config.global_cap
    windows = [cap.days for cap in caps.values()] + ([global_cap.days] if global_cap else [])
    if not windows:
        return
    at = to_utc(now)
    since = at - timedelta(days=max(windows))
    batch_refs = {candidates[i].ref for i in capped}
    users = sorted({candidates[i].user_id for i in capped})
    contacts: dict[int, list[Contact]] = defaultdict(list)
    if recent_contacts is not None:
        for contact in recent_contacts(users, since):
            if contact.purpose == MARKETING and contact.ref not in batch_refs:
                contacts[contact.user_id].append(contact)

    def used(user_id: int, name: str | None, days: int) -> int:
        """Contacts in the last ``days`` on channel or family ``name`` (None: any)."""
        start = at - timedelta(days=days)
        return sum(
            1
            for k in contacts.get(user_id, ())
            if (name is None or name in (k.channel, k.family)) and to_utc(k.at) >= start
        )

    order = sorted(capped, key=lambda i: (-candidates[i].priority, candidates[i].ref))
    for index in order:
        c = candidates[index]
        # A cap may name the channel and another its family: each one counts.
        over = any(
            used(c.user_id, name, cap.days) >= cap.max
            for name in c.channels
            if (cap := caps.get(name)) is not None
        )
        over = over or (
            global_cap is not None and used(c.user_id, None, global_cap.days) >= global_cap.max
        )
        if over:
            decisions[index] = Decision(Verdict.BLOCK, Reason.FREQUENCY_CAP)
        else:
            contacts[c.user_id].append(
                Contact(c.ref, c.user_id, c.channel, MARKETING, at, c.family)
            )
