"""Projects (tenants). ``default`` always exists after start-up."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flywheel.core.errors import Conflict, NotFound
from flywheel.projects.models import Project
from flywheel.projects.schemas import ProjectIn, ProjectOut

DEFAULT_PROJECT = "default"


def get_by_name(*, session: Session, name: str) -> ProjectOut:
    """The project called ``name``; :class:`NotFound` when there is none."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"unknown project {name!r}")
    return ProjectOut.model_validate(project)


def get(*, session: Session, project_id: int) -> ProjectOut:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"unknown project id {project_id}")
    return ProjectOut.model_validate(project)


def list_projects(*, session: Session) -> list[ProjectOut]:
    return [
        ProjectOut.model_validate(p) for p in session.scalars(select(Project).order_by(Project.id))
    ]


def create(*, session: Session, project_in: ProjectIn) -> ProjectOut:
    """Create a project; :class:`Conflict` if the name is taken."""
    if session.scalar(select(Project.id).where(Project.name == project_in.name)) is not None:
        raise Conflict(f"project {project_in.name!r} already exists")
    project = Project(**project_in.model_dump())
    session.add(project)
    session.flush()
    return ProjectOut.model_validate(project)


def ensure_default(*, session: Session) -> ProjectOut:
    """The ``default`` project, created on first call."""
    project = session.scalar(select(Project).where(Project.name == DEFAULT_PROJECT))
    if project is None:
        project = Project(name=DEFAULT_PROJECT, display_name="Default")
        session.add(project)
        session.flush()
    return ProjectOut.model_validate(project)


def set_require_token(*, session: Session, name: str, require: bool) -> ProjectOut:
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        raise NotFound(f"unknown project {name!r}")
    project.require_token = require
    session.flush()
    return ProjectOut.model_validate(project)
