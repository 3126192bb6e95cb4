"""Personal data: which properties are PII and how they are masked in API answers.

Masked by default; a caller with ``pii:view`` may ask for clear values (and that is audited).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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
