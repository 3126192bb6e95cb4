"""The ``?project=`` query parameter every project-scoped route takes, resolved to its id."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query

from flywheel.http.deps import SessionDep
from flywheel.projects import service


def project_id(
    session: SessionDep,
    project: Annotated[str, Query(max_length=64, description="Project name.")] = "default",
) -> int:
    """The id of the named project; 404 (:class:`NotFound`) for an unknown one."""
    return service.get_by_name(session=session, name=project).id


ProjectId = Annotated[int, Depends(project_id)]
