"""``Annotated`` dependency aliases for routes.

``SessionDep`` is the request's unit of work: it commits when the route returns normally and
rolls back when it raises, so routes never commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from flywheel.runtime import Runtime
from flywheel.warehouse import Warehouse


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.unit_of_work() as session:
        yield session


# scope="function": the unit of work commits when the route returns, before the response is
# sent, so a 2xx always means the work is durably committed.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_warehouse(runtime: RuntimeDep) -> Warehouse:
    return runtime.warehouse


WarehouseDep = Annotated[Warehouse, Depends(get_warehouse)]
