"""Identifier helpers."""

from __future__ import annotations

import hashlib
import secrets
import uuid


def new_uuid() -> str:
    """A random UUID4 as a 32-char hex string."""
    return uuid.uuid4().hex


def new_secret(prefix: str, nbytes: int = 24) -> str:
    """A URL-safe random secret with a readable prefix (e.g. ``fwk_…`` for ingest keys)."""
    return f"{prefix}_{secrets.token_urlsafe(nbytes)}"


def sha256_hex(value: str) -> str:
    """Hex SHA-256, used to keep secrets (keys, tokens) hashed at rest."""
    return hashlib.sha256(value.encode()).hexdigest()
