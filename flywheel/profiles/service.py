"""Profiles, items and the property schema registry: the module other domains import.

* **Schema registry**: a property's Sensors type is fixed by the first value seen (per project
  and table kind); a later value of another type is refused with a reason
  (``property amount is NUMBER; got STRING 'abc'``).
* **Profiles** (source of truth: ``profiles`` table, JSON): Sensors operations
  ``profile_set`` (overwrite), ``profile_set_once`` (only absent properties),
  ``profile_increment`` (numbers, absent = 0), ``profile_append`` (LIST: values added at the
  end, a value already in the list is not added twice), ``profile_unset`` (remove the named
  properties), ``profile_delete`` (remove the whole profile; identities and events stay).
* **Items** (products …): ``item_set`` replaces the item's properties, ``item_delete`` marks it
  deleted.

Value forms in the operational JSON: NUMBER int/float, STRING, BOOL, LIST ``[str]``, DATE
``'YYYY-MM-DD'``, DATETIME ``'YYYY-MM-DDTHH:MM:SS.ffffffZ'`` (UTC). Sensors sends DATETIME as
``'YYYY-MM-DD HH:MM:SS(.fff)'`` in the sender's local time, taken as Asia/Shanghai.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from flywheel.core.clock import SHANGHAI, utc_naive
from flywheel.core.errors import InvalidInput
from flywheel.profiles.models import Item, Profile, SchemaEventProperty, SchemaProperty
from flywheel.profiles.schemas import EventSchemaOut, PropertyOut, SchemaOut
from flywheel.warehouse.engine import PropertyType, TableKind

_CHUNK = 500
DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,6})?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_UTC = "%Y-%m-%dT%H:%M:%S.%fZ"

PROFILE_OPERATIONS = frozenset(
    {
        "profile_set",
        "profile_set_once",
        "profile_increment",
        "profile_append",
        "profile_unset",
        "profile_delete",
    }
)


class TypeMismatch(InvalidInput):
    """A value does not fit its property's registered type."""


# -- types ---------------------------------------------------------------------------------------
def infer_type(value: Any) -> PropertyType:
    """The Sensors type of a first-seen value.

    bool → BOOL, int/float → NUMBER, list → LIST, ``'YYYY-MM-DD HH:MM:SS(.fff)'`` → DATETIME,
    ``'YYYY-MM-DD'`` → DATE, other strings → STRING; datetime/date objects (bulk files) → DATETIME
    / DATE. :class:`TypeMismatch` for anything else (objects, None).
    """
    if isinstance(value, bool):
        return PropertyType.BOOL
    if isinstance(value, int | float):
        return PropertyType.NUMBER
    if isinstance(value, list | tuple):
        return PropertyType.LIST
    if isinstance(value, datetime):
        return PropertyType.DATETIME
    if isinstance(value, date):
        return PropertyType.DATE
    if isinstance(value, str):
        if DATETIME_RE.match(value):
            return PropertyType.DATETIME
        if DATE_RE.match(value):
            return PropertyType.DATE
        return PropertyType.STRING
    raise TypeMismatch(f"unsupported value type {type(value).__name__}")


def _describe(value: Any) -> str:
    try:
        kind = infer_type(value).value
    except TypeMismatch:
        kind = type(value).__name__.upper()
    shown = repr(value)
    return f"{kind} {shown[:60]}{'…' if len(shown) > 60 else ''}"


def normalize(name: str, ptype: PropertyType, value: Any) -> Any:
    """``value`` in its stored JSON form for a property of type ``ptype``.

    :class:`TypeMismatch` with a reason when the value does not fit.
    """

    def mismatch() -> TypeMismatch:
        return TypeMismatch(f"property {name} is {ptype.value}; got {_describe(value)}")

    if ptype is PropertyType.NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise mismatch()
        if isinstance(value, float) and not math.isfinite(value):
            raise mismatch()
        return value
    if ptype is PropertyType.STRING:
        if not isinstance(value, str):
            raise mismatch()
        return value
    if ptype is PropertyType.BOOL:
        if not isinstance(value, bool):
            raise mismatch()
        return value
    if ptype is PropertyType.LIST:
        if not isinstance(value, list | tuple) or any(
            isinstance(v, dict | list | tuple) for v in value
        ):
            raise mismatch()
        return [v if isinstance(v, str) else str(v) for v in value]
    if ptype is PropertyType.DATE:
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, str) and (DATE_RE.match(value) or DATETIME_RE.match(value)):
            try:
                return date.fromisoformat(value[:10]).isoformat()
            except ValueError:
                raise mismatch() from None
        raise mismatch()
    # DATETIME
    moment = _parse_datetime(value)
    if moment is None:
        raise mismatch()
    return moment.strftime(_ISO_UTC)


def _parse_datetime(value: Any) -> datetime | None:
    """Aware UTC from a Sensors string (Asia/Shanghai), an ISO string, or a datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=SHANGHAI)
    return moment.astimezone(UTC)


def to_warehouse(ptype: PropertyType, value: Any) -> Any:
    """A stored JSON value as the Python value of its warehouse column (Arrow-ready)."""
    if value is None:
        return None
    if ptype is PropertyType.NUMBER:
        return float(value)
    if ptype is PropertyType.DATETIME:
        return datetime.strptime(value, _ISO_UTC) if isinstance(value, str) else value
    if ptype is PropertyType.DATE:
        return date.fromisoformat(value) if isinstance(value, str) else value
    return value


# -- schema registry -----------------------------------------------------------------------------
def _insert(session: Session, model: Any) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def load_schema(*, session: Session, project_id: int) -> dict[TableKind, dict[str, PropertyType]]:
    """Every registered property of the project: kind → name → type."""
    schema: dict[TableKind, dict[str, PropertyType]] = {kind: {} for kind in TableKind}
    rows = session.execute(
        select(SchemaProperty.kind, SchemaProperty.name, SchemaProperty.type).where(
            SchemaProperty.project_id == project_id
        )
    ).all()
    for kind, name, ptype in rows:
        schema[TableKind(kind)][name] = PropertyType(ptype)
    return schema


def register_properties(
    *,
    session: Session,
    project_id: int,
    kind: TableKind,
    properties: dict[str, PropertyType],
) -> list[str]:
    """Register first-seen properties; return a reason for each that conflicts.

    A property already registered with another type is not changed and yields
    ``"property X is NUMBER; got STRING"``.
    """
    if not properties:
        return []
    registered = load_schema(session=session, project_id=project_id)[kind]
    reasons = [
        f"property {name} is {registered[name].value}; got {ptype.value}"
        for name, ptype in properties.items()
        if name in registered and registered[name] is not ptype
    ]
    new = {n: t for n, t in properties.items() if n not in registered}
    _insert_properties(session=session, project_id=project_id, kind=kind, properties=new)
    return reasons


def _insert_properties(
    *, session: Session, project_id: int, kind: TableKind, properties: Mapping[str, PropertyType]
) -> None:
    if not properties:
        return
    stmt = _insert(session, SchemaProperty).on_conflict_do_nothing(
        index_elements=["project_id", "kind", "name"]
    )
    session.execute(
        stmt,
        [
            {"project_id": project_id, "kind": kind.value, "name": n, "type": t.value}
            for n, t in properties.items()
        ],
    )


def register_event_properties(
    *, session: Session, project_id: int, pairs: Iterable[tuple[str, str]]
) -> None:
    """Remember which properties each event name carries (``(event, '')`` for the name)."""
    rows = [{"project_id": project_id, "event": e, "property": p} for e, p in set(pairs)]
    if not rows:
        return
    stmt = _insert(session, SchemaEventProperty).on_conflict_do_nothing(
        index_elements=["project_id", "event", "property"]
    )
    for start in range(0, len(rows), 2000):
        session.execute(stmt, rows[start : start + 2000])


def known_event_properties(*, session: Session, project_id: int) -> set[tuple[str, str]]:
    return {
        (e, p)
        for e, p in session.execute(
            select(SchemaEventProperty.event, SchemaEventProperty.property).where(
                SchemaEventProperty.project_id == project_id
            )
        )
    }


def list_schema(*, session: Session, project_id: int) -> SchemaOut:
    """The project's schema: event names with their properties, profile and item properties."""
    schema = load_schema(session=session, project_id=project_id)
    event_types = schema[TableKind.EVENTS]
    by_event: dict[str, list[PropertyOut]] = {}
    for event_name, prop in sorted(known_event_properties(session=session, project_id=project_id)):
        props = by_event.setdefault(event_name, [])
        if prop and prop in event_types:
            props.append(PropertyOut(name=prop, type=event_types[prop].value))

    def listed(kind: TableKind) -> list[PropertyOut]:
        return [PropertyOut(name=n, type=t.value) for n, t in sorted(schema[kind].items())]

    return SchemaOut(
        events=[EventSchemaOut(name=e, properties=p) for e, p in by_event.items()],
        event_properties=listed(TableKind.EVENTS),
        profile_properties=listed(TableKind.USERS),
        item_properties=listed(TableKind.ITEMS),
    )


#: (type, Python type) pairs whose values are stored as they come.
_AS_IS: frozenset[tuple[PropertyType, type]] = frozenset(
    {
        (PropertyType.STRING, str),
        (PropertyType.NUMBER, int),
        (PropertyType.NUMBER, float),
        (PropertyType.BOOL, bool),
    }
)


class PropertyChecker:
    """Checks and normalises record properties against the registry as one batch sees it.

    New properties are typed on first sight and held until :meth:`flush`.
    """

    def __init__(self, schema: Mapping[TableKind, Mapping[str, PropertyType]]) -> None:
        self.types: dict[TableKind, dict[str, PropertyType]] = {
            kind: dict(schema.get(kind, {})) for kind in TableKind
        }
        self.new: dict[TableKind, dict[str, PropertyType]] = {kind: {} for kind in TableKind}

    def check(
        self,
        kind: TableKind,
        properties: Mapping[str, Any],
        *,
        expect: PropertyType | None = None,
    ) -> dict[str, Any]:
        """Normalised properties (None values dropped); :class:`TypeMismatch` on the first misfit.

        ``expect`` forces a type (NUMBER for increments, LIST for appends). Nothing is
        registered unless every property fits.
        """
        types = self.types[kind]
        first_seen: dict[str, PropertyType] = {}
        out: dict[str, Any] = {}
        for name, value in properties.items():
            if value is None:
                continue
            ptype = types.get(name) or first_seen.get(name)
            if ptype is None:
                ptype = infer_type(value) if expect is None else expect
                if expect is not None and infer_type(value) is not expect:
                    raise TypeMismatch(
                        f"property {name} must be {expect.value}; got {_describe(value)}"
                    )
                first_seen[name] = ptype
            elif expect is not None and ptype is not expect:
                raise TypeMismatch(f"property {name} is {ptype.value}; {expect.value} required")
            kind_of_value = type(value)
            if (ptype, kind_of_value) in _AS_IS and (
                kind_of_value is not float or math.isfinite(value)
            ):
                out[name] = value  # the common case, already in stored form
            else:
                out[name] = normalize(name, ptype, value)
        types.update(first_seen)
        self.new[kind].update(first_seen)
        return out

    def flush(self, *, session: Session, project_id: int) -> None:
        for kind, props in self.new.items():
            _insert_properties(session=session, project_id=project_id, kind=kind, properties=props)
            props.clear()


# -- profiles ------------------------------------------------------------------------------------
def apply_profile_operation(
    current: Mapping[str, Any] | None, operation: str, properties: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The profile after one Sensors operation (pure; values already normalised).

    ``current`` None means no profile. Returns None after ``profile_delete``.
    """
    profile = dict(current or {})
    if operation == "profile_set":
        profile.update(properties)
    elif operation == "profile_set_once":
        for name, value in properties.items():
            profile.setdefault(name, value)
    elif operation == "profile_increment":
        for name, value in properties.items():
            profile[name] = (profile.get(name) or 0) + value
    elif operation == "profile_append":
        for name, values in properties.items():
            merged = list(profile.get(name) or [])
            seen = set(merged)
            for value in values:
                if value not in seen:
                    merged.append(value)
                    seen.add(value)
            profile[name] = merged
    elif operation == "profile_unset":
        for name in properties:
            profile.pop(name, None)
    elif operation == "profile_delete":
        return None
    else:
        raise InvalidInput(f"unknown profile operation {operation!r}")
    return profile


def load_profiles(
    *, session: Session, project_id: int, user_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """Profiles of many users in ``IN`` chunks (users without a profile are absent)."""
    ids = sorted(set(user_ids))
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        rows = session.execute(
            select(Profile.user_id, Profile.properties).where(
                Profile.project_id == project_id, Profile.user_id.in_(ids[start : start + _CHUNK])
            )
        ).all()
        found.update({int(u): dict(p) for u, p in rows})
    return found


def get_profile(*, session: Session, project_id: int, user_id: int) -> dict[str, Any] | None:
    """The customer's profile properties (``{"branch": "BR001", …}``), None when there is none.

    DATE values are ``'YYYY-MM-DD'`` strings, DATETIME ``'YYYY-MM-DDTHH:MM:SS.ffffffZ'`` (UTC).
    """
    return load_profiles(session=session, project_id=project_id, user_ids=[user_id]).get(user_id)


def get_profiles(
    *, session: Session, project_id: int, user_ids: Sequence[int]
) -> dict[int, dict[str, Any]]:
    """Profiles of many customers at once: ``user_id → properties`` (absent when none)."""
    return load_profiles(session=session, project_id=project_id, user_ids=user_ids)


def save_profiles(
    *,
    session: Session,
    project_id: int,
    profiles: Mapping[int, Mapping[str, Any] | None],
    now: datetime,
) -> None:
    """Upsert the given profiles (None = delete) in bulk."""
    moment = utc_naive(now)
    gone = [u for u, p in profiles.items() if p is None]
    rows = [
        {"project_id": project_id, "user_id": u, "properties": dict(p), "updated_at": moment}
        for u, p in profiles.items()
        if p is not None
    ]
    for start in range(0, len(gone), _CHUNK):
        session.execute(
            delete(Profile).where(
                Profile.project_id == project_id, Profile.user_id.in_(gone[start : start + _CHUNK])
            )
        )
    if rows:
        stmt = _insert(session, Profile)
        stmt = stmt.on_conflict_do_update(
            index_elements=["project_id", "user_id"],
            set_={"properties": stmt.excluded.properties, "updated_at": stmt.excluded.updated_at},
        )
        for start in range(0, len(rows), 1000):
            session.execute(stmt, rows[start : start + 1000])


# -- items ---------------------------------------------------------------------------------------
def load_items(
    *, session: Session, project_id: int, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """Live (not deleted) items by ``(item_type, item_id)``."""
    wanted = sorted(set(keys))
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = session.execute(
            select(Item.item_type, Item.item_id, Item.properties).where(
                Item.project_id == project_id,
                Item.is_deleted.is_(False),
                tuple_(Item.item_type, Item.item_id).in_(wanted[start : start + _CHUNK]),
            )
        ).all()
        found.update({(t, i): dict(p) for t, i, p in rows})
    return found


def get_item(
    *, session: Session, project_id: int, item_type: str, item_id: str
) -> dict[str, Any] | None:
    """An item's properties (``{"risk_level": "R3", …}``); None when unknown or deleted."""
    return load_items(session=session, project_id=project_id, keys=[(item_type, item_id)]).get(
        (item_type, item_id)
    )


def list_items(
    *, session: Session, project_id: int, item_type: str, limit: int = 1000, offset: int = 0
) -> list[tuple[str, dict[str, Any]]]:
    """Live items of one type as ``(item_id, properties)``, by id."""
    rows = session.execute(
        select(Item.item_id, Item.properties)
        .where(
            Item.project_id == project_id,
            Item.item_type == item_type,
            Item.is_deleted.is_(False),
        )
        .order_by(Item.item_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [(i, dict(p)) for i, p in rows]


def save_items(
    *,
    session: Session,
    project_id: int,
    items: Mapping[tuple[str, str], Mapping[str, Any] | None],
    now: datetime,
) -> None:
    """Upsert items (None = deleted: ``is_deleted`` set, properties cleared)."""
    moment = utc_naive(now)
    rows = [
        {
            "project_id": project_id,
            "item_type": t,
            "item_id": i,
            "properties": dict(p or {}),
            "is_deleted": p is None,
            "updated_at": moment,
        }
        for (t, i), p in items.items()
    ]
    if not rows:
        return
    stmt = _insert(session, Item)
    stmt = stmt.on_conflict_do_update(
        index_elements=["project_id", "item_type", "item_id"],
        set_={
            "properties": stmt.excluded.properties,
            "is_deleted": stmt.excluded.is_deleted,
            "updated_at": stmt.excluded.updated_at,
        },
    )
    for start in range(0, len(rows), 1000):
        session.execute(stmt, rows[start : start + 1000])
