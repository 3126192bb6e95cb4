"""Background loops of the recommend domain: scheduled training, slot-event counting."""

from __future__ import annotations

from datetime import timedelta

import structlog

from flywheel.core.clock import utc_naive
from flywheel.core.loops import LoopService
from flywheel.projects import service as projects
from flywheel.recommend import service
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

#: A model trained on no interactions is retried this often (data may have arrived).
EMPTY_MODEL_RETRY = timedelta(minutes=10)


class RecommendTrainer(LoopService):
    """Retrains each project whose newest model is older than its ``retrain_hours``."""

    name = "recommend-trainer"
    interval_seconds = 60.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def due_projects(self) -> list[int]:
        """Projects whose model is missing or stale."""
        now = utc_naive(self.runtime.clock())
        due: list[int] = []
        with self.runtime.db.unit_of_work() as session:
            for project in projects.list_projects(session=session):
                config = service.get_training_config(session=session, project_id=project.id)
                models = service.list_models(session=session, project_id=project.id)
                if not models:
                    due.append(project.id)
                    continue
                age = now - models[0].trained_at
                empty = models[0].n_interactions == 0
                if age >= timedelta(hours=config.retrain_hours) or (
                    empty and age >= EMPTY_MODEL_RETRY
                ):
                    due.append(project.id)
        return due

    def run_once(self) -> int:
        trained = 0
        for project_id in self.due_projects():
            with self.runtime.db.unit_of_work() as session:
                service.train(
                    session=session,
                    warehouse=self.runtime.warehouse,
                    models_root=service.models_dir(self.runtime.settings.data_dir),
                    project_id=project_id,
                    now=self.runtime.clock(),
                )
            trained += 1
        return trained


class SlotEventCounter(LoopService):
    """Folds itemShow / itemClick events from the warehouse into the impression counters."""

    name = "recommend-slot-events"
    interval_seconds = 5.0

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def run_once(self) -> int:
        counted = 0
        with self.runtime.db.unit_of_work() as session:
            project_ids = [p.id for p in projects.list_projects(session=session)]
        for project_id in project_ids:
            with self.runtime.db.unit_of_work() as session:
                counted += service.count_slot_events(
                    session=session,
                    warehouse=self.runtime.warehouse,
                    project_id=project_id,
                    now=self.runtime.clock(),
                )
        return counted


def build_loops(runtime: Runtime) -> list[LoopService]:
    """The recommend domain's loop services."""
    return [RecommendTrainer(runtime), SlotEventCounter(runtime)]
