"""PII at rest (MultiFernet, EncryptedText, key rotation) and in answers (masking, reveal)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Integer, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from flywheel.audit import service as audit
from flywheel.audit.schemas import AuditFilter
from flywheel.auth import crypto, pii
from flywheel.auth.schemas import Principal
from flywheel.core.errors import Forbidden, InvalidInput
from flywheel.migrations import upgrade
from flywheel.store import Database, create_database

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


class _Base(DeclarativeBase):
    metadata = MetaData()


class Contact(_Base):
    __tablename__ = "contacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(20))
    mobile: Mapped[str | None] = mapped_column(crypto.EncryptedText(), nullable=True)
    private: Mapped[dict[str, str] | None] = mapped_column(crypto.EncryptedJSON(), nullable=True)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = create_database(f"sqlite:///{tmp_path / 'pii.db'}")
    upgrade(database.engine)  # the audit tables: rotation is audited
    _Base.metadata.create_all(database.engine)
    yield database
    database.dispose()


@pytest.fixture(autouse=True)
def _restore_keys() -> Iterator[None]:
    yield
    crypto.install_keys("dev-only-secret-change-me")


def test_encrypt_roundtrip_and_derived_key() -> None:
    keys = crypto.build_keyring("a-secret")
    token = crypto.encrypt_text("13812341234", keys=keys)
    assert "1381234" not in token
    assert crypto.decrypt_text(token, keys=keys) == "13812341234"
    with pytest.raises(InvalidInput):
        crypto.decrypt_text(token, keys=crypto.build_keyring("another-secret"))
    with pytest.raises(InvalidInput):
        crypto.build_keyring("s", "not-a-fernet-key")


def test_encrypted_column_is_ciphertext_at_rest_and_survives_rotation(db: Database) -> None:
    old_key = Fernet.generate_key().decode()
    crypto.install_keys("s", old_key)
    with db.unit_of_work() as session:
        session.add_all(
            [
                Contact(id=1, label="a", mobile="13812341234", private={"name": "张三"}),
                Contact(id=2, label="b", mobile=None),
            ]
        )
    with db.engine.connect() as conn:
        raw, raw_json = conn.execute(
            text("SELECT mobile, private FROM contacts WHERE id = 1")
        ).one()
    assert "13812341234" not in raw and "张三" not in raw_json
    assert crypto.decrypt_text(raw) == "13812341234"

    new_key = Fernet.generate_key().decode()
    keys = crypto.install_keys("s", f"{new_key},{old_key}")  # newest first
    with db.unit_of_work() as session:
        assert session.get(Contact, 1).mobile == "13812341234"  # type: ignore[union-attr]
        assert (
            crypto.rotate_encrypted_columns(
                session=session, metadata=_Base.metadata, keys=keys, actor="cli", now=NOW
            )
            == 2
        )
    with db.unit_of_work() as session:
        [rotation] = audit.search(
            session=session, filters=AuditFilter(action="pii.keys_rotated")
        ).entries
    assert rotation.detail == {"values": 2, "columns": ["contacts.mobile", "contacts.private"]}
    crypto.install_keys("s", new_key)  # the old key is retired
    with Session(db.engine) as session:
        assert session.get(Contact, 1).mobile == "13812341234"  # type: ignore[union-attr]
        assert session.get(Contact, 1).private == {"name": "张三"}  # type: ignore[union-attr]
        assert session.get(Contact, 2).mobile is None  # type: ignore[union-attr]
    with db.engine.connect() as conn:
        rotated = conn.execute(text("SELECT mobile FROM contacts WHERE id = 1")).scalar_one()
    with pytest.raises(InvalidInput):  # no longer readable under the retired key alone
        crypto.decrypt_text(rotated, keys=crypto.build_keyring("s", old_key))


def test_masking() -> None:
    assert pii.mask_value("mobile", "13812341234") == "138****1234"
    assert pii.mask_value("email", "zhang@example.com") == "z***@example.com"
    assert pii.mask_value("id_number", "110101199001011234") == "110***********1234"
    assert pii.mask_value("name", "张三") == "张*"
    masked = pii.mask_properties({"mobile": "13812341234", "city": "上海"}, reveal=False)
    assert masked == {"mobile": "138****1234", "city": "上海"}


def test_reveal_needs_pii_view_and_is_audited(tmp_path: Path) -> None:
    database = create_database(f"sqlite:///{tmp_path / 'f.db'}")
    upgrade(database.engine)
    viewer = Principal(
        user_id=1, username="v", role="x", permissions=frozenset({"customers:read", "pii:view"})
    )
    plain = Principal(user_id=2, username="p", role="x", permissions=frozenset({"customers:read"}))
    assert pii.authorize_reveal(plain, reveal=False) is False
    with pytest.raises(Forbidden):
        pii.authorize_reveal(plain, reveal=True)
    assert pii.authorize_reveal(viewer, reveal=True) is True
    with database.unit_of_work() as session:
        pii.audit_reveal(
            session=session,
            principal=viewer,
            customer="user_id:42",
            fields=["mobile", "name", "mobile"],
            now=NOW,
            project_id=1,
        )
        with pytest.raises(Forbidden):
            pii.audit_reveal(
                session=session, principal=plain, customer="user_id:42", fields=[], now=NOW
            )
    with database.unit_of_work() as session:
        entry = audit.search(session=session, filters=AuditFilter(action="pii.reveal")).entries[0]
    assert entry.actor == "user:v" and entry.target == "customer:user_id:42"
    assert entry.detail == {"fields": ["mobile", "name"], "purpose": ""}
    database.dispose()
