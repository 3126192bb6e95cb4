"""The audit trail: hash chain, tamper detection (with triggers dropped), concurrency, API."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError, InternalError
from typer.testing import CliRunner

from flywheel.audit import service as audit
from flywheel.audit.schemas import AuditFilter
from flywheel.cli import app as cli
from flywheel.migrations import upgrade
from flywheel.runtime import Runtime
from flywheel.store import Database, create_database

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = create_database(database_url)
    upgrade(database.engine)
    yield database
    database.dispose()


def _fill(db: Database, n: int) -> None:
    with db.unit_of_work() as session:
        for i in range(n):
            audit.record(
                session=session,
                actor=f"user:u{i % 3}",
                action="segment.export" if i % 2 else "auth.login",
                target=f"segment:{i}",
                detail={"rows": i, "note": "导出"},
                project_id=1,
                now=T0 + timedelta(seconds=i),
            )


def _drop_triggers(db: Database) -> None:
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for name in ("audit_log_no_update", "audit_log_no_delete"):
                conn.exec_driver_sql(f"DROP TRIGGER {name}")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only ON audit_log")


def _verify(db: Database) -> audit.VerifyReport:
    with db.unit_of_work() as session:
        return audit.verify(session=session)


def test_chain_verifies_and_links(db: Database) -> None:
    _fill(db, 12)
    report = _verify(db)
    assert report.ok and report.checked == 12 and report.head_seq == 12
    with db.engine.connect() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, hash FROM audit_log ORDER BY seq")).all()
    assert rows[0].prev_hash == audit.GENESIS
    assert all(rows[i].prev_hash == rows[i - 1].hash for i in range(1, len(rows)))


def test_database_refuses_update_and_delete(db: Database) -> None:
    _fill(db, 3)
    for statement in (
        "UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 2",
        "DELETE FROM audit_log WHERE seq = 2",
        "UPDATE audit_head SET seq = 1",
        "DELETE FROM audit_head",
    ):
        with pytest.raises((DatabaseError, InternalError)), db.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    assert _verify(db).ok


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        ("UPDATE audit_log SET actor = 'user:mallory' WHERE seq = 4", 4),
        ("UPDATE audit_log SET detail = '{\"rows\":0}' WHERE seq = 7", 7),
        ("DELETE FROM audit_log WHERE seq = 5", 5),
        ("DELETE FROM audit_log WHERE seq >= 9", 9),
    ],
)
def test_tampering_is_detected_even_without_triggers(
    db: Database, tamper: str, bad_seq: int
) -> None:
    _fill(db, 10)
    _drop_triggers(db)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(tamper)
    report = _verify(db)
    assert not report.ok
    assert report.bad_seq == bad_seq, report.problem


def test_rewriting_a_row_and_its_hash_breaks_the_next_link(db: Database) -> None:
    _fill(db, 6)
    _drop_triggers(db)
    with db.unit_of_work() as session:
        row = session.execute(text("SELECT * FROM audit_log WHERE seq = 3")).mappings().one()
    forged = audit.entry_hash(
        seq=3,
        at=row["at"] if isinstance(row["at"], datetime) else datetime.fromisoformat(row["at"]),
        actor="user:mallory",
        action=row["action"],
        target=row["target"],
        project_id=row["project_id"],
        detail=row["detail"],
        prev_hash=row["prev_hash"],
    )
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_log SET actor = 'user:mallory', hash = :h WHERE seq = 3"),
            {"h": forged},
        )
    report = _verify(db)
    assert not report.ok and report.bad_seq == 4


def test_concurrent_writers_keep_one_chain(db: Database) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with db.unit_of_work() as session:
                    audit.record(
                        session=session,
                        actor=f"user:w{n}",
                        action="journey.publish",
                        target=f"journey:{i}",
                        detail={},
                        now=T0,
                    )
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    report = _verify(db)
    assert report.ok and report.checked == 60


def test_rolled_back_act_leaves_no_audit_row(db: Database) -> None:
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        audit.record(session=session, actor="user:a", action="x.y", target="t", detail={}, now=T0)
        raise RuntimeError("the act failed")
    report = _verify(db)
    assert report.ok and report.checked == 0


def test_detail_must_be_json(db: Database) -> None:
    from flywheel.core.errors import InvalidInput

    with pytest.raises(InvalidInput), db.unit_of_work() as session:
        audit.record(
            session=session, actor="a", action="b", target="c", detail={"x": object()}, now=T0
        )


def test_search_filters_and_pages(db: Database) -> None:
    _fill(db, 10)
    with db.unit_of_work() as session:
        page = audit.search(session=session, filters=AuditFilter(action="auth.login", limit=3))
        assert [e.seq for e in page.entries] == [9, 7, 5]
        older = audit.search(
            session=session,
            filters=AuditFilter(action="auth.login", limit=3, before_seq=page.next_before_seq),
        )
        assert [e.seq for e in older.entries] == [3, 1]
        assert older.next_before_seq is None
        by_actor = audit.search(session=session, filters=AuditFilter(actor="user:u1"))
        assert {e.seq for e in by_actor.entries} == {2, 5, 8}
        window = audit.search(
            session=session,
            filters=AuditFilter(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4)),
        )
        assert [e.seq for e in window.entries] == [4, 3]
        assert window.entries[0].detail == {"rows": 3, "note": "导出"}


def test_cli_verify_exit_code_names_the_row(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'flywheel.db'}"
    database = create_database(url)
    upgrade(database.engine)
    _fill(database, 5)
    runner = CliRunner()
    intact = runner.invoke(cli, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert intact.exit_code == 0, intact.output
    _drop_triggers(database)
    with database.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE audit_log SET target = 'segment:99' WHERE seq = 2")
    database.dispose()
    tampered = runner.invoke(cli, ["audit", "verify", "--data-dir", str(tmp_path)])
    assert tampered.exit_code == 1
    assert "row 2" in tampered.output


def test_audit_api_for_auditors_only(
    client: TestClient, runtime: Runtime, make_headers: Callable[..., dict[str, str]]
) -> None:
    auditor = make_headers("auditor")
    marketer = make_headers("marketer")
    assert client.get("/api/v1/audit", headers=marketer).status_code == 403
    answer = client.get("/api/v1/audit", params={"action": "auth.login"}, headers=auditor)
    assert answer.status_code == 200, answer.text
    logins = answer.json()["entries"]
    assert {e["actor"] for e in logins} == {"user:auditor0", "user:marketer1"}
    assert all(e["action"] == "auth.login" for e in logins)
    assert client.get("/api/v1/audit/verify", headers=auditor).json()["ok"] is True
    unknown = client.get("/api/v1/audit", params={"sort": "1;DROP TABLE x"}, headers=auditor)
    assert unknown.status_code == 422
