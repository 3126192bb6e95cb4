"""ID-Mapping (Sensors IDM 3.0 style): one customer behind many ids.

The graph is the ``identities`` table: ``(project_id, key, value) → user_id``, unique, so a
lookup by any id is one indexed query; a bounded in-process LRU sits in front of it. Only
committed bindings enter the cache (staged on the session, applied after commit), so a rolled
back batch never leaves phantom users behind in memory.

Rules per key (``identity_keys``, defaults in :data:`DEFAULT_RULES`): priority (lower wins),
one or many values per user, a limit with an overflow policy, enabled. A bind that would break
a rule is refused, the event is kept (attributed to the user of its strongest identity) and the
refusal is kept in ``identity_conflicts``.

User ids are stable: anonymous → login merges bind the login id to the anonymous user, so
events sent before login already carry the right ``user_id`` and history is never rewritten.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Table, delete, event, func, insert, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flywheel.auth.pii import mask_identities
from flywheel.core.clock import system_clock, utc_naive
from flywheel.core.errors import InvalidInput, NotFound
from flywheel.identity.models import Identity, IdentityConflict, IdentityKeyRule, IdentityUser
from flywheel.identity.schemas import ConflictOut, KeyRule

log = structlog.get_logger(__name__)

LOGIN_KEY = "$identity_login_id"
ANONYMOUS_KEY = "$identity_anonymous_id"
MAX_VALUE_LENGTH = 255
_CHUNK = 500

#: Keys every project starts with. Accounts (资金账号 ``fund_account``, 两融 ``margin_account``,
#: 普通/现金 ``cash_account``) and 客户号 ``cust_no`` are identities of one person.
DEFAULT_RULES: tuple[KeyRule, ...] = (
    KeyRule(key=LOGIN_KEY, priority=10, label="login id / 客户号 login"),
    KeyRule(key="cust_no", priority=20, label="客户号"),
    KeyRule(key="fund_account", priority=30, label="资金账号"),
    KeyRule(key="margin_account", priority=40, label="两融账户"),
    KeyRule(key="cash_account", priority=50, multi=True, value_limit=5, label="cash accounts"),
    KeyRule(key="$identity_wechat_unionid", priority=60, label="WeChat unionid"),
    KeyRule(
        key="$identity_mobile",
        priority=70,
        multi=True,
        value_limit=3,
        overflow="replace_oldest",
        label="mobile",
    ),
    KeyRule(
        key="$identity_email",
        priority=80,
        multi=True,
        value_limit=5,
        overflow="replace_oldest",
        label="email",
    ),
    KeyRule(
        key="$identity_wechat_openid",
        priority=90,
        multi=True,
        value_limit=10,
        overflow="replace_oldest",
        label="WeChat openid",
    ),
    KeyRule(
        key=ANONYMOUS_KEY,
        priority=100,
        multi=True,
        value_limit=100,
        overflow="replace_oldest",
        label="device / anonymous id",
    ),
    # device ids the Sensors IDM 3 app and web SDKs send under their own keys
    *(
        KeyRule(
            key=key,
            priority=110,
            multi=True,
            value_limit=100,
            overflow="replace_oldest",
            label=label,
        )
        for key, label in (
            ("$identity_android_id", "Android id"),
            ("$identity_android_uuid", "Android UUID"),
            ("$identity_idfv", "iOS IDFV"),
            ("$identity_cookie_id", "web cookie"),
        )
    ),
)

#: A key the project has not configured behaves like this (weakest, many values).
CUSTOM_KEY_DEFAULT = KeyRule(
    key="custom", priority=1000, multi=True, value_limit=50, overflow="refuse"
)


# -- cache ---------------------------------------------------------------------------------------
class IdentityCache:
    """A bounded, thread-safe LRU of committed ``(project, key, value) → user_id``."""

    def __init__(self, maxsize: int = 500_000) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[int, str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, project_id: int, key: str, value: str) -> int | None:
        # Lock-free read: single OrderedDict operations are atomic under the GIL; a hit may
        # race an eviction, which only costs the LRU refresh.
        ident = (project_id, key, value)
        user_id = self._data.get(ident)
        if user_id is not None:
            with contextlib.suppress(KeyError):
                self._data.move_to_end(ident)
        return user_id

    def put_many(self, entries: Mapping[tuple[int, str, str], int]) -> None:
        with self._lock:
            # new keys land at the end; refreshed keys keep their place (an approximate LRU
            # that avoids a move per entry on large batches)
            self._data.update(entries)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def drop_many(self, idents: Iterable[tuple[int, str, str]]) -> None:
        with self._lock:
            for ident in idents:
                self._data.pop(ident, None)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)


#: One cache per database (engine): several runtimes in one process (tests) never mix.
_caches: weakref.WeakKeyDictionary[Engine, IdentityCache] = weakref.WeakKeyDictionary()
_caches_guard = threading.Lock()


def cache_for(session: Session) -> IdentityCache:
    """The identity cache of the database behind ``session``."""
    return cache_for_engine(session.get_bind().engine)


def cache_for_engine(engine: Engine) -> IdentityCache:
    """The identity cache of the database behind ``engine``."""
    with _caches_guard:
        cache = _caches.get(engine)
        if cache is None:
            cache = _caches[engine] = IdentityCache()
        return cache


@dataclass
class _Staged:
    cache: IdentityCache
    put: dict[tuple[int, str, str], int] = field(default_factory=dict)
    drop: set[tuple[int, str, str]] = field(default_factory=set)


def _staged(session: Session) -> _Staged:
    staged = session.info.get("identity_cache")
    if staged is None:
        staged = session.info["identity_cache"] = _Staged(cache_for(session))
    assert isinstance(staged, _Staged)
    return staged


@event.listens_for(Session, "after_commit")
def _apply_staged(session: Session) -> None:
    staged = session.info.pop("identity_cache", None)
    if isinstance(staged, _Staged):
        staged.cache.drop_many(staged.drop)
        staged.cache.put_many({k: v for k, v in staged.put.items() if k not in staged.drop})


@event.listens_for(Session, "after_rollback")
def _discard_staged(session: Session) -> None:
    staged = session.info.pop("identity_cache", None)
    if isinstance(staged, _Staged):
        # Unbinds that did not commit are still valid bindings; dropping them is harmless.
        staged.cache.drop_many(staged.drop)


def _insert(session: Session, model: Any) -> Any:
    """The dialect's INSERT (for ON CONFLICT), SQLite or PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- key rules -----------------------------------------------------------------------------------
def key_rules(*, session: Session, project_id: int) -> dict[str, KeyRule]:
    """The project's identity key rules (the defaults until the project sets its own)."""
    rows = session.scalars(
        select(IdentityKeyRule)
        .where(IdentityKeyRule.project_id == project_id)
        .order_by(IdentityKeyRule.priority, IdentityKeyRule.key)
    ).all()
    if not rows:
        return {rule.key: rule for rule in DEFAULT_RULES}
    return {row.key: KeyRule.model_validate(row) for row in rows}


def rule_for(rules: Mapping[str, KeyRule], key: str) -> KeyRule:
    """The rule of ``key``; an unconfigured key gets :data:`CUSTOM_KEY_DEFAULT`."""
    return rules.get(key) or CUSTOM_KEY_DEFAULT.model_copy(update={"key": key})


def set_key_rules(*, session: Session, project_id: int, rules: Sequence[KeyRule]) -> list[KeyRule]:
    """Replace the project's key rules. Existing bindings stay; new rules apply to new binds.

    :class:`InvalidInput` when a key appears twice or the login key is missing.
    """
    keys = [rule.key for rule in rules]
    if len(set(keys)) != len(keys):
        raise InvalidInput("each identity key may appear once")
    if LOGIN_KEY not in keys:
        raise InvalidInput(f"{LOGIN_KEY} must stay configured (it may be disabled)")
    session.execute(delete(IdentityKeyRule).where(IdentityKeyRule.project_id == project_id))
    session.add_all(IdentityKeyRule(project_id=project_id, **rule.model_dump()) for rule in rules)
    session.flush()
    log.info("identity_keys_changed", project_id=project_id, keys=len(rules))
    return sorted(rules, key=lambda r: (r.priority, r.key))


# -- lookups -------------------------------------------------------------------------------------
def find_user_id(*, session: Session, project_id: int, key: str, value: str) -> int | None:
    """The user holding identity ``key=value``, or None. Cache first, then one indexed query."""
    ident = (project_id, key, value)
    staged = session.info.get("identity_cache")
    if isinstance(staged, _Staged):
        if ident in staged.drop:
            return None
        if ident in staged.put:
            return staged.put[ident]
    cached = cache_for(session).get(*ident)
    if cached is not None:
        return cached
    user_id = session.scalar(
        select(Identity.user_id).where(
            Identity.project_id == project_id, Identity.key == key, Identity.value == value
        )
    )
    if user_id is not None:
        _staged(session).put[ident] = int(user_id)
        return int(user_id)
    return None


def lookup_many(
    *, session: Session, project_id: int, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], int]:
    """Map many ``(key, value)`` identities to user ids (unknown ones are absent).

    Served from the cache where possible, the rest with ``IN`` queries of 500 values per key.
    """
    staged = session.info.get("identity_cache")
    found: dict[tuple[str, str], int] = {}
    missing: dict[str, list[str]] = {}
    cache = cache_for(session)
    for key, value in set(pairs):
        ident = (project_id, key, value)
        if isinstance(staged, _Staged):
            if ident in staged.drop:
                continue
            if ident in staged.put:
                found[(key, value)] = staged.put[ident]
                continue
        cached = cache.get(*ident)
        if cached is not None:
            found[(key, value)] = cached
        else:
            missing.setdefault(key, []).append(value)
    if not missing:
        return found
    stage = _staged(session)
    for key, values in missing.items():
        for chunk in _chunks(values):
            rows = session.execute(
                select(Identity.value, Identity.user_id).where(
                    Identity.project_id == project_id,
                    Identity.key == key,
                    Identity.value.in_(chunk),
                )
            ).all()
            for value, user_id in rows:
                found[(key, value)] = int(user_id)
                stage.put[(project_id, key, value)] = int(user_id)
    return found


def create_users(*, session: Session, project_id: int, count: int, now: datetime) -> list[int]:
    """Create ``count`` customers in one bulk INSERT … RETURNING and return their ids."""
    if count <= 0:
        return []
    created = utc_naive(now)
    table: Table = IdentityUser.__table__  # type: ignore[assignment]
    result = session.connection().execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True),
        [{"project_id": project_id, "created_at": created}] * count,
    )
    return [int(row[0]) for row in result]


def resolve_many(
    *,
    session: Session,
    project_id: int,
    key: str,
    values: Sequence[str],
    create: bool = True,
    now: datetime | None = None,
) -> dict[str, int]:
    """Map many values of one identity key to user ids, creating a user per unknown value.

    Bulk: cache, then ``SELECT … IN`` chunks, then one bulk insert of users and one of
    identities (``ON CONFLICT DO NOTHING``; values a concurrent writer bound first are read back).
    With ``create=False`` unknown values are absent from the answer. :class:`InvalidInput` for a
    disabled key or a value longer than 255 characters.
    """
    rule = rule_for(key_rules(session=session, project_id=project_id), key)
    if not rule.enabled:
        raise InvalidInput(f"identity key {key} is disabled in this project")
    unique = list(dict.fromkeys(v for v in values if v))
    too_long = next((v for v in unique if len(v) > MAX_VALUE_LENGTH), None)
    if too_long is not None:
        raise InvalidInput(f"identity value of {key} longer than {MAX_VALUE_LENGTH} characters")
    pairs = lookup_many(session=session, project_id=project_id, pairs=((key, v) for v in unique))
    answer = {value: pairs[(key, value)] for value in unique if (key, value) in pairs}
    new_values = [v for v in unique if v not in answer]
    if not create or not new_values:
        return answer
    moment = utc_naive(now if now is not None else system_clock())
    user_ids = create_users(
        session=session, project_id=project_id, count=len(new_values), now=moment
    )
    created = list(zip(new_values, user_ids, strict=True))
    inserted = _insert_identities(
        session,
        [
            {"project_id": project_id, "key": key, "value": v, "user_id": u, "bound_at": moment}
            for v, u in created
        ],
    )
    stage = _staged(session)
    lost: list[str] = []
    for value, user_id in created:
        if (key, value) in inserted:
            answer[value] = user_id
            stage.put[(project_id, key, value)] = user_id
        else:
            lost.append(value)
    if lost:  # a concurrent writer bound them first: theirs wins
        answer.update(
            {
                v: u
                for (_, v), u in lookup_many(
                    session=session, project_id=project_id, pairs=((key, v) for v in lost)
                ).items()
            }
        )
    return answer


def _insert_identities(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Bulk insert identities, skipping bound ones; returns the ``(key, value)`` inserted."""
    inserted: set[tuple[str, str]] = set()
    table = Identity.__table__
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=["project_id", "key", "value"])
        .returning(table.c.key, table.c.value)
    )
    connection = session.connection()
    for chunk in _chunks(rows, 2000):
        inserted.update((k, v) for k, v in connection.execute(stmt, list(chunk)))
    return inserted


def identities_of(
    *, session: Session, project_id: int, user_ids: Sequence[int]
) -> dict[int, list[tuple[str, str, datetime]]]:
    """Every identity of each user: ``user_id → [(key, value, bound_at)]`` oldest first."""
    holdings: dict[int, list[tuple[str, str, datetime]]] = {u: [] for u in user_ids}
    for chunk in _chunks(list(user_ids)):
        rows = session.execute(
            select(Identity.user_id, Identity.key, Identity.value, Identity.bound_at)
            .where(Identity.project_id == project_id, Identity.user_id.in_(chunk))
            .order_by(Identity.bound_at, Identity.id)
        ).all()
        for user_id, key, value, bound_at in rows:
            holdings[int(user_id)].append((key, value, bound_at))
    return holdings


def user_identities(*, session: Session, project_id: int, user_id: int) -> dict[str, list[str]]:
    """The customer's identities as ``key → [values]`` (oldest first)."""
    grouped: dict[str, list[str]] = {}
    for key, value, _ in identities_of(session=session, project_id=project_id, user_ids=[user_id])[
        user_id
    ]:
        grouped.setdefault(key, []).append(value)
    return grouped


def user_exists(*, session: Session, project_id: int, user_id: int) -> bool:
    return (
        session.scalar(
            select(IdentityUser.id).where(
                IdentityUser.id == user_id, IdentityUser.project_id == project_id
            )
        )
        is not None
    )


# -- the graph of one batch ----------------------------------------------------------------------
@dataclass
class Conflict:
    key: str
    value: str
    user_id: int
    other_user_id: int | None
    reason: str
    event_id: str | None


class IdentityGraph:
    """The identity graph as one batch sees it: resolve in memory, write once with :meth:`flush`.

    New users get negative placeholder ids until :meth:`flush` creates them and returns the
    placeholder → real id mapping; callers remap what they produced.
    """

    def __init__(
        self, *, session: Session, project_id: int, rules: Mapping[str, KeyRule], now: datetime
    ) -> None:
        self.session = session
        self.project_id = project_id
        self.rules = dict(rules)
        self.now = utc_naive(now)
        self.owner: dict[tuple[str, str], int] = {}
        self._holdings: dict[int, dict[str, list[tuple[str, datetime]]]] = {}
        #: key → priority (-1 when disabled), memoised
        self._rank: dict[str, int] = {}
        #: Identities already looked up (found or not): never queried twice in one batch.
        self._looked_up: set[tuple[str, str]] = set()
        self._next_placeholder = -1
        self._new_bindings: dict[tuple[str, str], int] = {}
        self._removed: set[tuple[str, str]] = set()
        self._conflicts: dict[tuple[str, str, int], Conflict] = {}
        self._conflict_counts: dict[tuple[str, str, int], int] = {}

    # -- identities of a record --------------------------------------------------------------
    def usable(self, identities: Mapping[str, str]) -> list[tuple[str, str]]:
        """Enabled identities of a record, strongest first (values trimmed to non-empty)."""
        ranked: list[tuple[int, str, str]] = []
        for key, value in identities.items():
            if not value:
                continue
            rank = self._rank.get(key)
            if rank is None:
                rule = rule_for(self.rules, key)
                rank = self._rank[key] = rule.priority if rule.enabled else -1
            if rank >= 0:
                ranked.append((rank, key, value))
        if len(ranked) > 1:
            ranked.sort()
        return [(key, value) for _, key, value in ranked]

    def prefetch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Load the owners of many identities at once (cache, then ``IN`` queries)."""
        wanted = [p for p in set(pairs) if p not in self._looked_up]
        if wanted:
            self._looked_up.update(wanted)
            found = lookup_many(session=self.session, project_id=self.project_id, pairs=wanted)
            for pair, user_id in found.items():
                if pair not in self._removed:
                    self.owner.setdefault(pair, user_id)

    def preload_holdings(self, records: Iterable[Sequence[tuple[str, str]]]) -> None:
        """Bulk-load the holdings of users that may receive a new identity in this batch.

        Those are the owners of a record's known identities when the same record also carries
        an unknown one (a login on a known device, a new device of a known login …).
        """
        wanted: set[int] = set()
        for identities in records:
            owners = [self.owner.get(pair) for pair in identities]
            if None in owners and len(owners) > 1:
                wanted.update(u for u in owners if u is not None and u > 0)
        wanted -= set(self._holdings)
        if wanted:
            self._load_holdings(wanted)

    def _load_holdings(self, user_ids: Iterable[int]) -> None:
        loaded = identities_of(
            session=self.session, project_id=self.project_id, user_ids=sorted(user_ids)
        )
        for uid, rows in loaded.items():
            holding: dict[str, list[tuple[str, datetime]]] = {}
            for key, value, bound_at in rows:
                if (key, value) not in self._removed:
                    holding.setdefault(key, []).append((value, bound_at))
            self._holdings[uid] = holding

    # -- resolution ---------------------------------------------------------------------------
    def resolve(self, identities: Sequence[tuple[str, str]], *, event_id: str | None) -> int:
        """The user of a record carrying ``identities`` (strongest first), binding the rest.

        The strongest identity decides: its user if bound; else the user of the strongest bound
        identity if the strongest one may join it; else a new user. Every other identity is
        bound to that user when the key rules allow it, otherwise a conflict is recorded.
        """
        self.prefetch(identities)
        found = [(k, v, self.owner.get((k, v))) for k, v in identities]
        top_key, top_value, owner = found[0]
        if owner is None:
            candidate = next((uid for _, _, uid in found[1:] if uid is not None), None)
            if candidate is not None and self._refusal(candidate, top_key, top_value) is None:
                owner = candidate
            else:
                owner = self.new_user()
        for key, value, uid in found:
            if uid == owner:
                continue
            if uid is not None:
                self._conflict(
                    key,
                    value,
                    owner,
                    uid,
                    f"{key} is already bound to user {{other}}; not bound to user {{user}}",
                    event_id,
                )
                continue
            refusal = self._refusal(owner, key, value)
            if refusal is not None:
                self._conflict(key, value, owner, None, refusal, event_id)
                continue
            self._bind(owner, key, value)
        return owner

    def unbind(self, key: str, value: str) -> int | None:
        """Remove the binding of ``key=value``; returns the user who held it (None if unbound)."""
        self.prefetch([(key, value)])
        uid = self.owner.pop((key, value), None)
        if uid is None:
            return None
        self._forget(uid, key, value)
        return uid

    def new_user(self) -> int:
        """A placeholder for a user created by this batch (real id after :meth:`flush`)."""
        uid = self._next_placeholder
        self._next_placeholder -= 1
        self._holdings[uid] = {}
        return uid

    def holdings(self, user_id: int) -> dict[str, list[tuple[str, datetime]]]:
        """The identities ``user_id`` holds as this batch sees them (key → [(value, bound_at)]).

        Usually preloaded in bulk (:meth:`preload_holdings`); a miss costs one query.
        """
        if user_id not in self._holdings:
            self._load_holdings([user_id])
        return self._holdings[user_id]

    def _refusal(self, user_id: int, key: str, value: str) -> str | None:
        """Why ``key=value`` may not join ``user_id`` (None when it may).

        The reason is a template: ``{user}`` becomes the user id once new users exist.
        """
        rule = rule_for(self.rules, key)
        held = self.holdings(user_id).get(key, [])
        if any(v == value for v, _ in held):
            return None
        if not rule.multi and held:
            return f"user {{user}} already has a {key} (one value per user)"
        if len(held) >= rule.value_limit and rule.overflow == "refuse":
            return f"user {{user}} already has {rule.value_limit} values of {key} (limit reached)"
        return None

    def _bind(self, user_id: int, key: str, value: str) -> None:
        rule = rule_for(self.rules, key)
        held = self.holdings(user_id).setdefault(key, [])
        while len(held) >= rule.value_limit:  # overflow == replace_oldest (refusals checked)
            oldest, _ = held[0]
            self.owner.pop((key, oldest), None)
            self._forget(user_id, key, oldest)
        held.append((value, self.now))
        self.owner[(key, value)] = user_id
        # If it was unbound earlier in this batch it stays in _removed: flush deletes the old
        # row before inserting the new one.
        self._new_bindings[(key, value)] = user_id

    def _forget(self, user_id: int, key: str, value: str) -> None:
        held = self.holdings(user_id).get(key, [])
        held[:] = [(v, t) for v, t in held if v != value]
        if self._new_bindings.pop((key, value), None) is None:
            self._removed.add((key, value))

    def _conflict(
        self,
        key: str,
        value: str,
        user_id: int,
        other: int | None,
        reason: str,
        event_id: str | None,
    ) -> None:
        ident = (key, value, user_id)
        self._conflict_counts[ident] = self._conflict_counts.get(ident, 0) + 1
        self._conflicts[ident] = Conflict(key, value, user_id, other, reason, event_id)

    @property
    def conflicts(self) -> list[Conflict]:
        return list(self._conflicts.values())

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def _finished(conflict: Conflict, mapping: Mapping[int, int]) -> Conflict:
        user = mapping.get(conflict.user_id, conflict.user_id)
        other = (
            mapping.get(conflict.other_user_id, conflict.other_user_id)
            if conflict.other_user_id is not None
            else None
        )
        return Conflict(
            conflict.key,
            conflict.value,
            user,
            other,
            conflict.reason.format(user=user, other=other),
            conflict.event_id,
        )

    def conflict_reasons(self) -> list[str]:
        """Reasons of the conflicts not yet flushed (user ids of new users still unknown)."""
        return [
            c.reason.format(user="(new)", other=c.other_user_id) for c in self._conflicts.values()
        ]

    def flush(self) -> dict[int, int]:
        """Write new users, bindings, unbinds and conflicts; return placeholder → user id."""
        placeholders = sorted(
            {u for u in self._holdings if u < 0}
            | {u for u in self._new_bindings.values() if u < 0}
            | {c.user_id for c in self._conflicts.values() if c.user_id < 0},
            reverse=True,
        )
        real = create_users(
            session=self.session, project_id=self.project_id, count=len(placeholders), now=self.now
        )
        mapping = dict(zip(placeholders, real, strict=True))
        stage = _staged(self.session)
        pid = self.project_id
        if self._removed:
            removed = list(self._removed)
            for chunk in _chunks(removed):
                self.session.execute(
                    delete(Identity).where(
                        Identity.project_id == pid,
                        tuple_(Identity.key, Identity.value).in_(list(chunk)),
                    )
                )
            stage.drop.update((pid, k, v) for k, v in removed)
            for k, v in removed:
                stage.put.pop((pid, k, v), None)
        if self._new_bindings:
            bindings = [((k, v), mapping.get(u, u)) for (k, v), u in self._new_bindings.items()]
            inserted = _insert_identities(
                self.session,
                [
                    {"project_id": pid, "key": k, "value": v, "user_id": u, "bound_at": self.now}
                    for (k, v), u in bindings
                ],
            )
            for (k, v), u in bindings:
                if (k, v) in inserted:
                    stage.put[(pid, k, v)] = u
                    stage.drop.discard((pid, k, v))
        if self._conflicts:
            record_conflicts(
                session=self.session,
                project_id=pid,
                conflicts=[self._finished(c, mapping) for c in self._conflicts.values()],
                counts={
                    (k, v, mapping.get(u, u)): n for (k, v, u), n in self._conflict_counts.items()
                },
                now=self.now,
            )
            log.info("identity_conflicts_recorded", project_id=pid, count=len(self._conflicts))
        # Owners now refer to real ids; the graph may keep serving lookups after a flush.
        self.owner = {p: mapping.get(u, u) for p, u in self.owner.items()}
        self._holdings = {mapping.get(u, u): h for u, h in self._holdings.items()}
        self._new_bindings.clear()
        self._removed.clear()
        self._conflicts.clear()
        self._conflict_counts.clear()
        return mapping


def record_conflicts(
    *,
    session: Session,
    project_id: int,
    conflicts: Sequence[Conflict],
    counts: Mapping[tuple[str, str, int], int],
    now: datetime,
) -> None:
    """Upsert refused binds: one row per (identity, user), repeats bump ``occurrences``."""
    moment = utc_naive(now)
    table = IdentityConflict.__table__
    for conflict in conflicts:
        n = counts.get((conflict.key, conflict.value, conflict.user_id), 1)
        stmt = _insert(session, IdentityConflict).values(
            project_id=project_id,
            key=conflict.key,
            value=conflict.value,
            user_id=conflict.user_id,
            other_user_id=conflict.other_user_id,
            reason=conflict.reason,
            last_event_id=(conflict.event_id or "")[:128] or None,
            occurrences=n,
            first_seen_at=moment,
            last_seen_at=moment,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "key", "value", "user_id"],
            set_={
                "occurrences": table.c.occurrences + n,
                "last_seen_at": moment,
                "last_event_id": (conflict.event_id or "")[:128] or None,
                "reason": conflict.reason,
                "other_user_id": conflict.other_user_id,
            },
        )
        session.execute(stmt)


# -- API-level operations ------------------------------------------------------------------------
@dataclass(frozen=True)
class BindResult:
    user_id: int
    bound: list[str]
    conflicts: list[str]


def bind(
    *, session: Session, project_id: int, identities: Mapping[str, str], now: datetime
) -> BindResult:
    """Tie identities to one customer (``track_id_bind`` semantics), refusing rule breaks.

    :class:`InvalidInput` when no enabled identity is given or a value is too long.
    """
    rules = key_rules(session=session, project_id=project_id)
    graph = IdentityGraph(session=session, project_id=project_id, rules=rules, now=now)
    for value in identities.values():
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidInput(f"identity values are at most {MAX_VALUE_LENGTH} characters")
    usable = graph.usable(identities)
    if not usable:
        raise InvalidInput("no enabled identity key among the identities given")
    owner = graph.resolve(usable, event_id=None)
    pending = graph.conflicts
    mapping = graph.flush()
    conflicts = [IdentityGraph._finished(c, mapping).reason for c in pending]
    user_id = mapping.get(owner, owner)
    bound = [k for k, v in usable if graph.owner.get((k, v)) == user_id]
    session.flush()
    log.info("identities_bound", project_id=project_id, user_id=user_id, conflicts=len(conflicts))
    return BindResult(user_id=user_id, bound=bound, conflicts=conflicts)


def unbind(*, session: Session, project_id: int, key: str, value: str) -> int:
    """Detach ``key=value`` from its customer; returns that user id. :class:`NotFound` if unbound.

    Later data carrying this id alone starts a new customer (Sensors ``track_id_unbind``).
    """
    user_id = find_user_id(session=session, project_id=project_id, key=key, value=value)
    if user_id is None:
        raise NotFound(f"no customer holds {key} with that value")
    session.execute(
        delete(Identity).where(
            Identity.project_id == project_id, Identity.key == key, Identity.value == value
        )
    )
    staged = _staged(session)
    staged.put.pop((project_id, key, value), None)
    staged.drop.add((project_id, key, value))
    staged.cache.drop_many([(project_id, key, value)])
    session.flush()
    log.info("identity_unbound", project_id=project_id, user_id=user_id, key=key)
    return user_id


def list_conflicts(
    *, session: Session, project_id: int, limit: int = 100, offset: int = 0
) -> tuple[list[ConflictOut], int]:
    """Refused binds, most recent first, and how many there are.

    Values of personal-data keys (mobile, email) are masked.
    """
    total = session.scalar(
        select(func.count())
        .select_from(IdentityConflict)
        .where(IdentityConflict.project_id == project_id)
    )
    rows = session.scalars(
        select(IdentityConflict)
        .where(IdentityConflict.project_id == project_id)
        .order_by(IdentityConflict.last_seen_at.desc(), IdentityConflict.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    out = [ConflictOut.model_validate(r) for r in rows]
    masked = [
        c.model_copy(update={"value": mask_identities({c.key: c.value}, reveal=False)[c.key]})
        for c in out
    ]
    return masked, int(total or 0)
