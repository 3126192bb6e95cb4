"""The ingest service on each operational store (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.errors import Conflict, Forbidden, NotFound, Unauthenticated
from flywheel.ingest import service
from flywheel.ingest.records import IngestRecord
from flywheel.ingest.sensors import SensorsPayload
from flywheel.ingest.service import CheckedBatch
from flywheel.ingest.writer import writer_for
from flywheel.runtime import Runtime
from tests.ingest.inbox import inbox, rejections

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    runtime = open_runtime(Settings(env="test", data_dir=tmp_path / "d", database_url=database_url))
    yield runtime
    runtime.close()


def test_enqueue_and_rejections_in_one_bulk_each(store: Runtime) -> None:
    records = [
        IngestRecord(type="track", time=NOW, event_id=f"e{i}", event="Login", distinct_id="u")
        for i in range(3)
    ]
    with store.db.unit_of_work() as session:
        assert service.enqueue(session=session, project_id=1, records=records, source="demo") == 3
        assert service.enqueue(session=session, project_id=1, records=[], source="demo") == 0
        assert (
            service.record_rejections(
                session=session, project_id=1, source="processor", rejections=[("why", "raw")]
            )
            == 1
        )
    assert [(s, r.event_id) for s, r in inbox(store)] == [
        ("demo", "e0"),
        ("demo", "e1"),
        ("demo", "e2"),
    ]
    assert rejections(store) == [
        {"source": "processor", "reason": "why", "raw": "raw", "project_id": 1}
    ]


def test_nothing_is_written_when_the_unit_of_work_fails(store: Runtime) -> None:
    payload = SensorsPayload(
        records=[{"type": "track", "event": "E", "distinct_id": "u"}, {"type": "?"}],
        project=None,
        token=None,
    )
    with pytest.raises(RuntimeError), store.db.unit_of_work() as session:
        answer = service.accept_sensors(session=session, payload=payload, now=NOW, max_records=10)
        assert (answer.accepted, answer.rejected) == (1, 1)
        raise RuntimeError("crash before commit")
    assert inbox(store) == [] and rejections(store) == []


def test_keys_verify_revoke_and_ambiguity(store: Runtime) -> None:
    with store.db.unit_of_work() as session:
        first = service.create_key(session=session, project_id=1, label="a", now=NOW)
        second = service.create_key(session=session, project_id=1, label="b", now=NOW)
        assert service.verify_key(session=session, key=first.key) == 1
        with pytest.raises(Unauthenticated):
            service.verify_key(session=session, key="fwk_nope")
        with pytest.raises(Unauthenticated):
            service.verify_key(session=session, key="")
        with pytest.raises(Conflict):
            service.revoke_key(session=session, prefix="fwk_", now=NOW)
        with pytest.raises(NotFound):
            service.create_key(session=session, project_id=999)
        service.revoke_key(session=session, prefix=first.prefix, now=NOW)
        with pytest.raises(Forbidden):
            service.verify_key(session=session, key=first.key)
        assert service.verify_key(session=session, key=second.key) == 1
        listed = service.list_keys(session=session, project_id=1)
    assert [(k.label, k.revoked_at is not None) for k in listed] == [("a", True), ("b", False)]


def test_group_commit_from_many_threads(store: Runtime) -> None:
    writer = writer_for(store.db)

    def send(n: int) -> int:
        total = 0
        for j in range(5):
            batch = CheckedBatch(project_id=1, source="sensors", received_at=NOW)
            for i in range(10):
                batch.accept(
                    1,
                    IngestRecord(
                        type="track", time=NOW, event_id=f"{n}-{j}-{i}", event="E", distinct_id="u"
                    ),
                )
            total += writer.store(batch).accepted
        return total

    with ThreadPoolExecutor(max_workers=6) as pool:
        acknowledged = sum(pool.map(send, range(6)))
    assert acknowledged == 300 == len(inbox(store))
