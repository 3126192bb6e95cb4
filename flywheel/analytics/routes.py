"""Analytics API under ``/api/v1/analytics``: analyses, experiments, saved analyses, dashboards.

Every analysis answers JSON, or CSV with ``?format=csv``. ``?project=<name>`` picks the project
(``default`` when omitted).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from flywheel.analytics import service
from flywheel.analytics.schemas import (
    AnalysisOut,
    AttributionIn,
    AttributionOut,
    DashboardOut,
    DistributionIn,
    DistributionOut,
    EventAnalysisIn,
    EventAnalysisOut,
    ExperimentIn,
    ExperimentOut,
    FunnelIn,
    FunnelOut,
    RetentionIn,
    RetentionOut,
    SavedAnalysisIn,
    SavedAnalysisOut,
    SavedAnalysisPatch,
)
from flywheel.audit import service as audit
from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

Reader = Annotated[Principal, Depends(require("analytics:read"))]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


Writer = Annotated[Principal, Depends(require("analytics:write"))]


def _audit_export(
    runtime: Runtime, principal: Principal, project_id: int, target: str, rows: int
) -> None:
    """Exports are sensitive acts: each one goes to the audit trail (its own transaction)."""
    with runtime.db.unit_of_work() as session:
        audit.record(
            session=session,
            actor=principal.actor,
            action="analytics.export",
            target=target,
            detail={"rows": rows, "format": "csv"},
            project_id=project_id,
            now=runtime.clock(),
        )
    log.info("analysis_exported", target=target, user_id=principal.user_id, rows=rows)


def _analyse(
    analysis: Callable[..., AnalysisOut],
    body: Any,
    runtime: Runtime,
    project_id: int,
    principal: Principal,
    fmt: str,
) -> AnalysisOut | Response:
    """Run one analysis for the caller (scope applied by the service) and shape the answer."""
    result = analysis(
        warehouse=runtime.warehouse,
        project_id=project_id,
        request=body,
        now=runtime.clock(),
        principal=principal,
    )
    return _answer(result, fmt, principal, runtime, project_id)


def _answer(
    result: AnalysisOut, fmt: str, principal: Principal, runtime: Runtime, project_id: int
) -> AnalysisOut | Response:
    if fmt != "csv":
        return result
    _audit_export(runtime, principal, project_id, f"analysis:{result.kind}", len(result.rows))
    return Response(
        service.to_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{result.kind}.csv"'},
    )


@router.post("/events", response_model=EventAnalysisOut)
def analyse_events(
    body: EventAnalysisIn,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """Event analysis: counts, uniques, sums/averages by time bucket and dimensions."""
    return _analyse(service.event_analysis, body, runtime, project_id, principal, format)


@router.post("/funnels", response_model=FunnelOut)
def analyse_funnel(
    body: FunnelIn,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """Ordered funnel with per-step conversion, median time to convert and dropped users."""
    return _analyse(service.funnel, body, runtime, project_id, principal, format)


@router.post("/retention", response_model=RetentionOut)
def analyse_retention(
    body: RetentionIn,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """Cohort retention table (day / week / month N)."""
    return _analyse(service.retention, body, runtime, project_id, principal, format)


@router.post("/distribution", response_model=DistributionOut)
def analyse_distribution(
    body: DistributionIn,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """Users per bucket of a per-user measure."""
    return _analyse(service.distribution, body, runtime, project_id, principal, format)


@router.post("/attribution", response_model=AttributionOut)
def analyse_attribution(
    body: AttributionIn,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """First- or last-touch attribution of conversions to a touch property."""
    return _analyse(service.attribution, body, runtime, project_id, principal, format)


@router.post("/experiments/evaluate", response_model=ExperimentOut)
def evaluate_experiment(body: ExperimentIn, _: Reader) -> ExperimentOut:
    """A/B statistics from per-arm sufficient statistics."""
    return service.evaluate_experiment(body)


@router.get("/saved", response_model=list[SavedAnalysisOut])
def list_saved(
    session: SessionDep,
    project_id: ProjectId,
    _: Reader,
    dashboard: Annotated[str | None, Query(max_length=64)] = None,
) -> list[SavedAnalysisOut]:
    return service.list_saved(session=session, project_id=project_id, dashboard=dashboard)


@router.post("/saved", response_model=SavedAnalysisOut, status_code=201)
def create_saved(
    body: SavedAnalysisIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Writer,
) -> SavedAnalysisOut:
    return service.create_saved(
        session=session,
        project_id=project_id,
        analysis_in=body,
        now=runtime.clock(),
        created_by=principal.user_id,
    )


@router.get("/saved/{analysis_id}", response_model=SavedAnalysisOut)
def get_saved(
    analysis_id: int, session: SessionDep, project_id: ProjectId, _: Reader
) -> SavedAnalysisOut:
    return service.get_saved(session=session, project_id=project_id, analysis_id=analysis_id)


@router.patch("/saved/{analysis_id}", response_model=SavedAnalysisOut)
def update_saved(
    analysis_id: int,
    body: SavedAnalysisPatch,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    _: Writer,
) -> SavedAnalysisOut:
    return service.update_saved(
        session=session,
        project_id=project_id,
        analysis_id=analysis_id,
        patch=body,
        now=runtime.clock(),
    )


@router.delete("/saved/{analysis_id}", status_code=204)
def delete_saved(
    analysis_id: int, session: SessionDep, project_id: ProjectId, _: Writer
) -> Response:
    service.delete_saved(session=session, project_id=project_id, analysis_id=analysis_id)
    return Response(status_code=204)


@router.post("/saved/{analysis_id}/run", response_model=None)
def run_saved(
    analysis_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> AnalysisOut | Response:
    """Run a saved analysis now (JSON shaped by its kind, or CSV)."""
    result = service.run_saved(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        analysis_id=analysis_id,
        now=runtime.clock(),
        principal=principal,
    )
    return _answer(result, format, principal, runtime, project_id)


@router.get("/dashboards/{key}", response_model=DashboardOut)
def get_dashboard(
    key: str,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    format: Format = "json",
) -> DashboardOut | Response:
    """A dashboard with every metric computed now; ``3a3r`` is seeded with editable defaults."""
    board = service.dashboard(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        key=key,
        now=runtime.clock(),
        principal=principal,
    )
    if format == "csv":
        _audit_export(runtime, principal, project_id, f"dashboard:{key}", len(board.metrics))
        return Response(service.dashboard_csv(board), media_type="text/csv; charset=utf-8")
    return board
