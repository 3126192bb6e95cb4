"""Encryption at rest for sensitive columns (phone numbers, ID numbers, names, emails).

Keys are Fernet keys (AES-128-CBC + HMAC-SHA256) in ``settings.encryption_keys``, newest
first; when empty one key is derived from ``settings.secret_key``. Encryption always uses the
newest key; decryption tries each, so old rows stay readable during a rotation.

A domain marks a column sensitive with :class:`EncryptedText`::

    mobile: Mapped[str | None] = mapped_column(EncryptedText(), nullable=True)

The entry point installs the keys once (:func:`install_keys`, done by ``create_app`` and
``open_keyring``); :func:`rotate_encrypted_columns` re-encrypts every such column with the
newest key (procedure in ``docs/security.md``).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

import orjson
import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import MetaData, Text, bindparam, select, type_coerce, update
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session
from sqlalchemy.types import TypeDecorator

from flywheel.audit import service as audit
from flywheel.core.errors import InvalidInput

log = structlog.get_logger(__name__)

_keyring: MultiFernet | None = None


def derive_key(secret_key: str) -> bytes:
    """A Fernet key derived from the application secret (used when no key is configured)."""
    digest = hashlib.sha256(b"flywheel-pii-v1|" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest)


def build_keyring(secret_key: str, encryption_keys: str = "") -> MultiFernet:
    """A MultiFernet from comma-separated keys (newest first) or, if none, the derived key.

    :class:`InvalidInput` when a configured key is not a valid Fernet key.
    """
    raw = [k.strip() for k in encryption_keys.split(",") if k.strip()]
    try:
        fernets = [Fernet(k.encode()) for k in raw] or [Fernet(derive_key(secret_key))]
    except ValueError as exc:
        raise InvalidInput(
            "FLYWHEEL_ENCRYPTION_KEYS must be comma-separated Fernet keys "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc
    return MultiFernet(fernets)


def install_keys(secret_key: str, encryption_keys: str = "") -> MultiFernet:
    """Make these keys the process's keyring (used by :class:`EncryptedText`)."""
    global _keyring
    _keyring = build_keyring(secret_key, encryption_keys)
    return _keyring


def keyring() -> MultiFernet:
    """The installed keyring; installed from the environment's settings on first use."""
    if _keyring is None:
        from flywheel.config import Settings

        settings = Settings()
        return install_keys(settings.secret_key, settings.encryption_keys)
    return _keyring


def encrypt_text(value: str, *, keys: MultiFernet | None = None) -> str:
    """Ciphertext (URL-safe base64 text) of ``value`` under the newest key."""
    return (keys or keyring()).encrypt(value.encode()).decode()


def decrypt_text(token: str, *, keys: MultiFernet | None = None) -> str:
    """Clear text of a ciphertext made by any key of the ring.

    :class:`InvalidInput` when no key opens it (wrong keys configured, or tampered data).
    """
    try:
        return (keys or keyring()).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise InvalidInput("encrypted value cannot be decrypted with the configured keys") from exc


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted; reads and writes clear ``str`` in Python.

    Encrypted values cannot be searched or indexed by value: keep a separate keyed hash
    column (e.g. ``sha256_hex``) when lookups by value are needed.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else encrypt_text(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else decrypt_text(str(value))


class EncryptedJSON(TypeDecorator[Any]):
    """A JSON value (dict, list, …) stored as one encrypted text, e.g. a profile's PII subset."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any | None, dialect: Dialect) -> str | None:  # noqa: ARG002
        return None if value is None else encrypt_text(orjson.dumps(value).decode())

    def process_result_value(self, value: Any | None, dialect: Dialect) -> Any | None:  # noqa: ARG002
        return None if value is None else orjson.loads(decrypt_text(str(value)))


_ENCRYPTED_TYPES = (EncryptedText, EncryptedJSON)


def encrypted_columns(metadata: MetaData) -> list[tuple[str, str, list[str]]]:
    """``(table, column, primary key columns)`` of every encrypted column."""
    found = []
    for table in metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, _ENCRYPTED_TYPES):
                found.append((table.name, column.name, [c.name for c in table.primary_key]))
    return found


def rotate_encrypted_columns(
    *,
    session: Session,
    metadata: MetaData,
    keys: MultiFernet,
    actor: str,
    now: datetime,
    batch_size: int = 1000,
) -> int:
    """Re-encrypt every :class:`EncryptedText` / :class:`EncryptedJSON` value under the newest
    key of ``keys``.

    Safe while the application serves (a value is readable under the old and the new key
    during the run) and safe to re-run. Only flushes: the caller commits. Returns the number
    of values rewritten; audited as ``pii.keys_rotated``. :class:`InvalidInput` when a value
    opens under none of the keys.
    """
    rewritten = 0
    for table_name, column_name, pk in encrypted_columns(metadata):
        table = metadata.tables[table_name]
        raw = type_coerce(table.c[column_name], Text)  # the stored ciphertext, not decrypted
        stmt = select(*[table.c[k] for k in pk], raw).where(table.c[column_name].is_not(None))
        write = (
            update(table)
            .where(*[table.c[k] == bindparam(f"pk_{k}") for k in pk])
            .values({column_name: type_coerce(bindparam("ciphertext"), Text)})
        )
        pending: list[dict[str, Any]] = []
        for row in session.execute(stmt).all():
            *key_values, ciphertext = row
            try:
                rotated = keys.rotate(str(ciphertext).encode()).decode()
            except InvalidToken as exc:
                raise InvalidInput(
                    f"{table_name}.{column_name}: a value opens under none of the keys"
                ) from exc
            pending.append(
                {
                    **{f"pk_{k}": v for k, v in zip(pk, key_values, strict=True)},
                    "ciphertext": rotated,
                }
            )
            if len(pending) >= batch_size:
                session.execute(write, pending)
                rewritten += len(pending)
                pending = []
        if pending:
            session.execute(write, pending)
            rewritten += len(pending)
    session.flush()
    audit.record(
        session=session,
        actor=actor,
        action="pii.keys_rotated",
        target="encryption_keys",
        detail={
            "values": rewritten,
            "columns": [f"{t}.{c}" for t, c, _ in encrypted_columns(metadata)],
        },
        now=now,
    )
    log.info("pii_keys_rotated", values=rewritten)
    return rewritten
