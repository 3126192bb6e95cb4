"""Group commit: concurrent batches share transactions; a failing batch fails alone."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError

from flywheel.ingest.records import IngestRecord
from flywheel.ingest.service import CheckedBatch
from flywheel.ingest.writer import GroupCommitWriter, writer_for
from flywheel.runtime import Runtime
from tests.ingest.inbox import inbox, rejections

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def batch(n: int, *, project_id: int = 1) -> CheckedBatch:
    checked = CheckedBatch(project_id=project_id, source="sensors", received_at=NOW)
    for i in range(n):
        checked.accept(
            project_id,
            IngestRecord(type="track", time=NOW, event_id=f"{n}-{i}", event="E", distinct_id="u"),
        )
    checked.reject("bad", "{}")
    return checked


def test_concurrent_batches_are_all_committed_before_their_answer(runtime: Runtime) -> None:
    writer = writer_for(runtime.db)
    assert writer_for(runtime.db) is writer
    answers: list[int] = []
    lock = threading.Lock()

    def send(n: int) -> None:
        for _ in range(5):
            answer = writer.store(batch(n))
            with lock:
                answers.append(answer.accepted)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(answers) == 5 * sum(range(1, 9)) == len(inbox(runtime))
    assert len(rejections(runtime)) == 40


def test_a_failing_batch_fails_alone(runtime: Runtime) -> None:
    writer = GroupCommitWriter(runtime.db)
    good, bad = batch(3), batch(2, project_id=999)  # no project 999: foreign key violation
    done = threading.Event()
    errors: list[BaseException] = []
    # Hold leadership so both batches are pending together, then commit them as one group.
    writer._leading = True

    def send_bad() -> None:
        try:
            writer.store(bad)
        except IntegrityError as exc:
            errors.append(exc)
        done.set()

    thread = threading.Thread(target=send_bad)
    thread.start()
    while not writer._pending:
        threading.Event().wait(0.001)
    writer._leading = False
    assert writer.store(good).accepted == 3
    thread.join(10)
    assert done.is_set() and len(errors) == 1
    assert sorted(r.event_id for _, r in inbox(runtime)) == ["3-0", "3-1", "3-2"]


def test_store_raises_the_commit_error(runtime: Runtime) -> None:
    with pytest.raises(IntegrityError):
        GroupCommitWriter(runtime.db).store(batch(1, project_id=999))
    assert inbox(runtime) == []
