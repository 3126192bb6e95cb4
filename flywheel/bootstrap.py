"""Opening a process: stores, migrations, the default project. Used by every entry point."""

from __future__ import annotations

from flywheel.config import Settings
from flywheel.core.clock import Clock, system_clock
from flywheel.migrations import upgrade
from flywheel.projects import service as projects
from flywheel.runtime import Runtime
from flywheel.store import create_database
from flywheel.warehouse import open_warehouse


def open_runtime(
    settings: Settings, *, clock: Clock = system_clock, migrate: bool = True
) -> Runtime:
    """Open both stores, apply pending migrations and make sure the default project exists."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = create_database(settings.resolved_database_url)
    if migrate:
        upgrade(db.engine)
    warehouse = open_warehouse(settings.resolved_warehouse_url)
    with db.unit_of_work() as session:
        default = projects.ensure_default(session=session)
    warehouse.ensure_project(default.id)
    return Runtime(settings=settings, db=db, warehouse=warehouse, clock=clock)
