"""The background loops a process runs: ``flywheel serve`` (unless ``--no-workers``) and
``flywheel worker``. Each domain contributes its loops here."""

from __future__ import annotations

from flywheel.core.loops import LoopService
from flywheel.runtime import Runtime


def build_loops(runtime: Runtime) -> list[LoopService]:
    """Every loop service, wired to ``runtime``."""
    from flywheel.channels import tasks as channels_tasks
    from flywheel.ingest.tasks import IngestProcessor
    from flywheel.journeys import tasks as journeys_tasks
    from flywheel.recommend import tasks as recommend_tasks
    from flywheel.segments import tasks as segments_tasks
    from flywheel.tags import tasks as tags_tasks

    return [
        IngestProcessor(runtime),
        *tags_tasks.build_loops(runtime),
        *segments_tasks.build_loops(runtime),
        *recommend_tasks.build_loops(runtime),
        *journeys_tasks.build_loops(runtime),
        *channels_tasks.build_loops(runtime),
    ]
