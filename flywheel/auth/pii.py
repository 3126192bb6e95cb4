"""Personal data: which properties are PII and how they are masked in API answers.

Masked by default; a caller with ``pii:view`` may ask for clear values (and that is audited).
A route serving personal data does::

    reveal = pii.authorize_reveal(principal, reveal=reveal_query_flag)   # 403 without pii:view
    ...
    if reveal:
        pii.audit_reveal(session=session, principal=principal, customer=f"user_id:{uid}",
                         fields=shown_fields, now=runtime.clock(), project_id=project_id)
    return mask_properties(properties, reveal=reveal)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from flywheel.audit import service as audit
from flywheel.auth.schemas import Principal
from flywheel.core.errors import Forbidden

#: Profile properties that hold personal data.
PII_PROPERTIES: frozenset[str] = frozenset({"name", "mobile", "email", "id_number", "address"})
#: Identity keys whose values are personal data.
PII_IDENTITY_KEYS: frozenset[str] = frozenset({"$identity_mobile", "$identity_email"})

_MOBILE = re.compile(r"^(\+?86)?1\d{10}$")


def mask_value(name: str, value: Any) -> Any:
    """Mask one PII value by its kind: ``138****1234``, ``z***@example.com``, ``张*``."""
    if value is None or not isinstance(value, str) or value == "":
        return value
    if name in {"mobile", "$identity_mobile"} or _MOBILE.match(value):
        return value[:-8] + "****" + value[-4:] if len(value) >= 8 else "****"
    if name in {"email", "$identity_email"} or "@" in value:
        local, _, domain = value.partition("@")
        return (local[:1] + "***@" + domain) if domain else "***"
    if name == "id_number":
        return value[:3] + "*" * max(len(value) - 7, 1) + value[-4:] if len(value) > 7 else "****"
    if name == "name":
        return value[:1] + "*" * max(len(value) - 1, 1)
    return value[:1] + "***"


def mask_properties(properties: Mapping[str, Any], *, reveal: bool) -> dict[str, Any]:
    """Profile properties with every PII property masked unless ``reveal``."""
    if reveal:
        return dict(properties)
    return {
        key: mask_value(key, value) if key in PII_PROPERTIES else value
        for key, value in properties.items()
    }


def mask_identities(identities: Mapping[str, Any], *, reveal: bool) -> dict[str, Any]:
    """Identity key → value(s), PII keys masked unless ``reveal``."""
    if reveal:
        return dict(identities)
    masked: dict[str, Any] = {}
    for key, value in identities.items():
        if key in PII_IDENTITY_KEYS:
            masked[key] = (
                [mask_value(key, v) for v in value]
                if isinstance(value, list)
                else mask_value(key, value)
            )
        else:
            masked[key] = value
    return masked


def authorize_reveal(principal: Principal, *, reveal: bool) -> bool:
    """Whether to show clear values: ``reveal`` asked and allowed.

    :class:`Forbidden` when ``reveal`` is asked without ``pii:view`` (never silently masked, so
    the caller knows). Call :func:`audit_reveal` once the customer is known.
    """
    if reveal and not principal.can("pii:view"):
        raise Forbidden("permission 'pii:view' required to reveal personal data")
    return reveal


def audit_reveal(
    *,
    session: Session,
    principal: Principal,
    customer: str,
    fields: Iterable[str],
    now: datetime,
    project_id: int | None = None,
    purpose: str = "",
) -> int:
    """Record that ``principal`` saw clear personal data of one customer (``pii.reveal``).

    ``customer`` names the customer without PII (``user_id:42``); ``fields`` the property or
    identity-key names shown in clear (never their values). Runs in the caller's unit of work,
    so a failed request leaves no trace and a shown value always has one. Returns the audit
    sequence number. :class:`Forbidden` without ``pii:view``.
    """
    authorize_reveal(principal, reveal=True)
    return audit.record(
        session=session,
        actor=principal.actor,
        action="pii.reveal",
        target=f"customer:{customer}",
        detail={"fields": sorted(set(fields)), "purpose": purpose},
        project_id=project_id,
        now=now,
    )
