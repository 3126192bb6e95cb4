"""Customer lookup for the console and advisors: identities, profile, tags, recent events.

Data scope is applied here (a customer outside the caller's branches or advisor book is
answered exactly like an unknown one: 404), and personal data is masked unless the caller has
``pii:view`` and asks for it, in which case the reveal is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from flywheel.auth import pii
from flywheel.auth.schemas import Principal
from flywheel.auth.scope import in_scope
from flywheel.core.clock import to_utc
from flywheel.core.errors import NotFound
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.profiles.schemas import CustomerEventOut, CustomerEventsOut, CustomerOut
from flywheel.warehouse import Warehouse
from flywheel.warehouse.engine import TableKind, table_name

_EVENT_BASE = ("id", "user_id", "distinct_id", "event", "time", "$receive_time")
MAX_EVENTS = 1000


def _visible_profile(
    *, session: Session, principal: Principal, project_id: int, user_id: int
) -> dict[str, Any]:
    """The customer's profile if the principal may see them; :class:`NotFound` otherwise."""
    if not identity.user_exists(session=session, project_id=project_id, user_id=user_id):
        raise NotFound(f"no customer {user_id} in this project")
    profile = profiles.get_profile(session=session, project_id=project_id, user_id=user_id) or {}
    if not in_scope(principal, profile):
        raise NotFound(f"no customer {user_id} in this project")
    return profile


def lookup_customer(
    *,
    session: Session,
    warehouse: Warehouse,
    principal: Principal,
    project_id: int,
    key: str,
    value: str,
    reveal: bool,
    now: datetime,
) -> CustomerOut:
    """The customer holding identity ``key=value``, as the principal may see them.

    :class:`NotFound` when unknown or outside the caller's data scope; :class:`Forbidden` when
    ``reveal`` is asked without ``pii:view``. A reveal is written to the audit log.
    """
    reveal = pii.authorize_reveal(principal, reveal=reveal)
    user_id = identity.find_user_id(session=session, project_id=project_id, key=key, value=value)
    if user_id is None:
        raise NotFound(f"no customer with that {key}")
    try:
        return get_customer(
            session=session,
            warehouse=warehouse,
            principal=principal,
            project_id=project_id,
            user_id=user_id,
            reveal=reveal,
            now=now,
        )
    except NotFound:
        raise NotFound(f"no customer with that {key}") from None


def get_customer(
    *,
    session: Session,
    warehouse: Warehouse,
    principal: Principal,
    project_id: int,
    user_id: int,
    reveal: bool,
    now: datetime,
) -> CustomerOut:
    """One customer by user id (same scope, masking and audit rules as :func:`lookup_customer`)."""
    reveal = pii.authorize_reveal(principal, reveal=reveal)
    profile = _visible_profile(
        session=session, principal=principal, project_id=project_id, user_id=user_id
    )
    identities = identity.user_identities(session=session, project_id=project_id, user_id=user_id)
    if reveal:
        shown = [p for p in profile if p in pii.PII_PROPERTIES] + [
            k for k in identities if k in pii.PII_IDENTITY_KEYS
        ]
        pii.audit_reveal(
            session=session,
            principal=principal,
            customer=f"user_id:{user_id}",
            fields=shown,
            now=now,
            project_id=project_id,
        )
    return CustomerOut(
        user_id=user_id,
        identities=pii.mask_identities(identities, reveal=reveal),
        properties=pii.mask_properties(profile, reveal=reveal),
        tags=warehouse.latest_tag_values(project_id, user_id),
    )


def customer_events(
    *,
    session: Session,
    warehouse: Warehouse,
    principal: Principal,
    project_id: int,
    user_id: int,
    limit: int,
    reveal: bool,
    now: datetime,
) -> CustomerEventsOut:
    """The customer's events, newest first (at most ``limit``, capped at 1000).

    Same scope, masking and audit rules as :func:`lookup_customer`.
    """
    reveal = pii.authorize_reveal(principal, reveal=reveal)
    _visible_profile(session=session, principal=principal, project_id=project_id, user_id=user_id)
    warehouse.ensure_project(project_id)
    rows = warehouse.fetch_dicts(
        f'SELECT * FROM "{table_name(project_id, TableKind.EVENTS)}" '
        "WHERE user_id = ? ORDER BY time DESC, id DESC LIMIT ?",
        [user_id, max(1, min(limit, MAX_EVENTS))],
    )
    events: list[CustomerEventOut] = []
    shown: set[str] = set()
    for row in rows:
        properties = {k: v for k, v in row.items() if k not in _EVENT_BASE and v is not None}
        shown.update(p for p in properties if p in pii.PII_PROPERTIES)
        events.append(
            CustomerEventOut(
                id=row["id"],
                event=row["event"],
                time=to_utc(row["time"]),
                distinct_id=row["distinct_id"],
                receive_time=to_utc(row["$receive_time"]) if row["$receive_time"] else None,
                properties=pii.mask_properties(properties, reveal=reveal),
            )
        )
    if reveal and shown:
        pii.audit_reveal(
            session=session,
            principal=principal,
            customer=f"user_id:{user_id}",
            fields=shown,
            now=now,
            project_id=project_id,
        )
    return CustomerEventsOut(user_id=user_id, events=events)
