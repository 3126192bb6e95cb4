"""Background loops of the tags domain: the scheduler of daily/hourly tags and the real-time
tag updater that follows the event stream."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta

import structlog

from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime
from flywheel.tags import service
from flywheel.tags.schemas import TagOut

log = structlog.get_logger(__name__)


class TagScheduler(LoopService):
    """Runs every daily/hourly tag that is due (see :func:`service.is_due`)."""

    name = "tag-scheduler"
    interval_seconds = 30.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run_once(self) -> int:
        with self.runtime.db.unit_of_work() as session:
            runs = service.run_due_tags(
                session=session, warehouse=self.runtime.warehouse, now=self.runtime.clock()
            )
        return len(runs)


class RealtimeTagUpdater(LoopService):
    """Every ~0.5 s: customers with events received since the watermark (``$receive_time``) get
    their real-time tag values recomputed; every ``full_every`` seconds all customers are (so
    sliding windows shrink without new events)."""

    name = "realtime-tags"
    interval_seconds = 0.5

    def __init__(self, runtime: Runtime, *, full_every: float = 60.0) -> None:
        self.runtime = runtime
        self.full_every = full_every
        self.watermarks: dict[int, datetime] = {}
        self._last_full: dict[int, float] = {}

    def run_once(self) -> int:
        with self.runtime.db.unit_of_work() as session:
            tags = service.realtime_tags(session=session)
        by_project: dict[int, list[TagOut]] = defaultdict(list)
        for tag in tags:
            by_project[tag.project_id].append(tag)
        handled = 0
        for project_id, project_tags in by_project.items():
            handled += self._project(project_id, project_tags)
        return handled

    def _project(self, project_id: int, tags: list[TagOut]) -> int:
        warehouse = self.runtime.warehouse
        now = self.runtime.clock()
        clock = time.monotonic()
        if project_id not in self.watermarks or (
            clock - self._last_full.get(project_id, 0.0) >= self.full_every
        ):
            latest = service.latest_receive_time(warehouse=warehouse, project_id=project_id)
            service.recompute_realtime(
                warehouse=warehouse, project_id=project_id, tags=tags, now=now
            )
            self._last_full[project_id] = clock
            self.watermarks[project_id] = latest or (now - timedelta(seconds=1))
            return 0
        handled, watermark = service.update_realtime(
            warehouse=warehouse,
            project_id=project_id,
            tags=tags,
            since=self.watermarks[project_id],
            now=now,
        )
        self.watermarks[project_id] = watermark
        return handled


def build_loops(runtime: Runtime) -> list[LoopService]:
    """The tags domain's loop services."""
    return [TagScheduler(runtime), RealtimeTagUpdater(runtime)]
