from __future__ import annotations

import pytest
from sqlalchemy import inspect

from flywheel.core.errors import Conflict
from flywheel.migrations import upgrade
from flywheel.projects import service as projects
from flywheel.projects.schemas import ProjectIn
from flywheel.store import create_database


def test_migrations_and_projects_on_both_stores(database_url: str) -> None:
    db = create_database(database_url)
    upgrade(db.engine)
    assert {"projects", "console_users", "access_tokens"} <= set(
        inspect(db.engine).get_table_names()
    )
    with db.unit_of_work() as session:
        default = projects.ensure_default(session=session)
        assert projects.ensure_default(session=session).id == default.id
        projects.create(session=session, project_in=ProjectIn(name="wealth"))
    with db.unit_of_work() as session:
        assert [p.name for p in projects.list_projects(session=session)] == ["default", "wealth"]
        with pytest.raises(Conflict):
            projects.create(session=session, project_in=ProjectIn(name="wealth"))
    db.dispose()


def test_unit_of_work_rolls_back_on_error(database_url: str) -> None:
    db = create_database(database_url)
    upgrade(db.engine)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        projects.create(session=session, project_in=ProjectIn(name="gone"))
        raise RuntimeError("boom")
    with db.unit_of_work() as session:
        assert [p.name for p in projects.list_projects(session=session)] == []
    db.dispose()
