"""Group commit: the checked batches of concurrent requests are written in one transaction.

Each acknowledged request needs its records durably committed, and a durable commit costs an
fsync (SQLite ``synchronous=FULL``, PostgreSQL WAL flush) whatever its size. Committing the
batches that arrive while a commit is in flight together, in one transaction, turns N fsyncs
into one without weakening the contract: :meth:`GroupCommitWriter.store` returns only after
the transaction holding its batch has committed.

No background thread: the first caller to find no commit in progress becomes the leader and
writes everything pending (its own batch included), repeating while more arrived meanwhile;
the others wait for their result.
"""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import Future

import structlog

from flywheel.ingest import service
from flywheel.ingest.schemas import IngestAnswer
from flywheel.store import Database

log = structlog.get_logger(__name__)

#: At most this many request batches in one transaction.
MAX_GROUP = 64


class GroupCommitWriter:
    """Writes :class:`~flywheel.ingest.service.CheckedBatch` objects with group commit."""

    def __init__(self, db: Database, *, max_group: int = MAX_GROUP) -> None:
        self.db = db
        self.max_group = max_group
        self._lock = threading.Lock()
        self._pending: list[tuple[service.CheckedBatch, Future[IngestAnswer]]] = []
        self._leading = False

    def store(self, batch: service.CheckedBatch) -> IngestAnswer:
        """Commit ``batch`` (possibly with others) and return its answer once committed.

        Raises what the commit raised when the batch could not be written.
        """
        done: Future[IngestAnswer] = Future()
        with self._lock:
            self._pending.append((batch, done))
            lead = not self._leading
            if lead:
                self._leading = True
        if lead:
            self._lead()
        return done.result()

    def _lead(self) -> None:
        try:
            while True:
                with self._lock:
                    group = self._pending[: self.max_group]
                    del self._pending[: self.max_group]
                    if not group:
                        self._leading = False
                        return
                self._commit(group)
        except BaseException as exc:  # e.g. KeyboardInterrupt: never leave a request waiting
            with self._lock:
                stranded, self._pending = self._pending, []
                self._leading = False
            for _, done in stranded:
                done.set_exception(exc)
            raise

    def _commit(self, group: list[tuple[service.CheckedBatch, Future[IngestAnswer]]]) -> None:
        try:
            with self.db.unit_of_work() as session:
                answers = [service.store_batch(session=session, batch=b) for b, _ in group]
        except Exception as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            # One failing batch must not fail the others: retry each alone.
            log.warning("ingest_group_commit_failed", batches=len(group))
            for item in group:
                self._commit([item])
            return
        for (_, done), answer in zip(group, answers, strict=True):
            done.set_result(answer)


_writers: weakref.WeakKeyDictionary[Database, GroupCommitWriter] = weakref.WeakKeyDictionary()
_writers_lock = threading.Lock()


def writer_for(db: Database) -> GroupCommitWriter:
    """The process's writer for ``db`` (one per database, created on first use)."""
    with _writers_lock:
        writer = _writers.get(db)
        if writer is None:
            writer = _writers[db] = GroupCommitWriter(db)
        return writer
