"""Journey and campaign reports, live journey counts (server-sent events) and channel prices.

* ``GET /api/v1/analytics/journeys/{id}/report`` (``?format=csv``), ``…/{id}/live``,
  ``…/{id}/stream`` (``text/event-stream``);
* ``GET /api/v1/analytics/campaigns/{campaign}/report``;
* ``GET /api/v1/analytics/channel-prices``, ``PUT/DELETE …/channel-prices/{channel}``.

The stream works with the console's session cookie (``EventSource`` cannot send headers; a GET
needs no CSRF token).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import date
from typing import Annotated, Literal

import anyio
import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from flywheel.analytics import journey_reports as reports
from flywheel.analytics.schemas import (
    CampaignReportOut,
    ChannelPriceIn,
    ChannelPriceOut,
    JourneyReportOut,
    LiveCountsOut,
    ReportBreakdown,
)
from flywheel.audit import service as audit
from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.projects.deps import ProjectId
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/analytics/journeys", tags=["analytics"])
campaign_router = APIRouter(prefix="/api/v1/analytics/campaigns", tags=["analytics"])
prices_router = APIRouter(prefix="/api/v1/analytics/channel-prices", tags=["analytics"])

Reader = Annotated[Principal, Depends(require("analytics:read"))]
Writer = Annotated[Principal, Depends(require("analytics:write"))]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]
FromDate = Annotated[date | None, Query(alias="from", description="first Shanghai day")]
ToDate = Annotated[date | None, Query(alias="to", description="last Shanghai day (included)")]

#: Open live streams in this process (observability; tests watch it drop when clients leave).
open_streams = 0


def _csv(
    body: str, filename: str, runtime: Runtime, principal: Principal, project_id: int, target: str
) -> Response:
    """A CSV download, recorded in the audit log first (exports are sensitive acts)."""
    with runtime.db.unit_of_work() as session:
        audit.record(
            session=session,
            actor=principal.actor,
            action="analytics.export",
            target=target,
            detail={"format": "csv", "bytes": len(body.encode())},
            project_id=project_id,
            now=runtime.clock(),
        )
    log.info("report_exported", target=target, user_id=principal.user_id)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{journey_id}/report", response_model=JourneyReportOut)
def journey_report(
    journey_id: int,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    version: Annotated[int | None, Query(ge=1)] = None,
    from_date: FromDate = None,
    to_date: ToDate = None,
    by: Annotated[ReportBreakdown | None, Query(description="drill-down dimension")] = None,
    segment_id: Annotated[int | None, Query(ge=1)] = None,
    format: Format = "json",
) -> JourneyReportOut | Response:
    """Per node entered / sent / delivered / opened / clicked / failed / blocked by reason /
    converted; goals; variants against control; cost per channel (CNY)."""
    report = reports.journey_report(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        journey_id=journey_id,
        now=runtime.clock(),
        version=version,
        from_date=from_date,
        to_date=to_date,
        breakdown=by,
        segment_id=segment_id,
        principal=principal,
    )
    if format != "csv":
        return report
    return _csv(
        reports.report_csv(report),
        f"journey-{journey_id}-report.csv",
        runtime,
        principal,
        project_id,
        f"journey_report:{journey_id}",
    )


@router.get("/{journey_id}/live", response_model=LiveCountsOut)
def journey_live(
    journey_id: int,
    session: SessionDep,
    project_id: ProjectId,
    principal: Reader,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> LiveCountsOut:
    """The live per-node counts once (what the stream pushes)."""
    reports.check_live_access(
        session=session, project_id=project_id, journey_id=journey_id, principal=principal
    )
    return reports.live_counts(
        session=session, project_id=project_id, journey_id=journey_id, version=version
    )


def _stream_access(
    journey_id: int, runtime: RuntimeDep, project_id: ProjectId, principal: Reader
) -> int:
    """Checked before the stream opens, so refusals are plain 403/404 answers."""
    with runtime.db.unit_of_work() as session:
        reports.check_live_access(
            session=session, project_id=project_id, journey_id=journey_id, principal=principal
        )
    return project_id


@router.get("/{journey_id}/stream", response_class=EventSourceResponse)
async def journey_stream(
    journey_id: int,
    request: Request,
    runtime: RuntimeDep,
    project_id: Annotated[int, Depends(_stream_access)],
    version: Annotated[int | None, Query(ge=1)] = None,
    interval: Annotated[float, Query(ge=0.2, le=60, description="seconds between polls")] = 2.0,
    heartbeat: Annotated[float, Query(ge=1, le=120, description="seconds of silence")] = 15.0,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: ``counts`` (a :class:`LiveCountsOut`) when the numbers changed,
    polled every ``interval`` seconds; a ``heartbeat`` comment after ``heartbeat`` seconds
    without a change. Ends when the client disconnects."""
    global open_streams

    def poll() -> LiveCountsOut:
        with runtime.db.unit_of_work() as session:
            return reports.live_counts(
                session=session, project_id=project_id, journey_id=journey_id, version=version
            )

    open_streams += 1
    log.info("journey_stream_opened", journey_id=journey_id)
    last: dict[str, object] | None = None
    sequence = 0
    quiet_since = time.monotonic()
    try:
        yield ServerSentEvent(retry=int(max(interval, 1.0) * 1000), comment="connected")
        while not await request.is_disconnected():
            counts = await anyio.to_thread.run_sync(poll)
            payload = counts.model_dump(mode="json")
            if payload != last:
                sequence += 1
                last = payload
                quiet_since = time.monotonic()
                yield ServerSentEvent(event="counts", id=str(sequence), data=payload)
            elif time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield ServerSentEvent(comment="heartbeat")
            await anyio.sleep(interval)
    finally:
        open_streams -= 1
        log.info("journey_stream_closed", journey_id=journey_id, updates=sequence)


@campaign_router.get("/{campaign}/report", response_model=CampaignReportOut)
def campaign_report(
    campaign: str,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Reader,
    from_date: FromDate = None,
    to_date: ToDate = None,
    format: Format = "json",
) -> CampaignReportOut | Response:
    """The journeys sharing a campaign label: one row each, their total, channel costs."""
    report = reports.campaign_report(
        session=session,
        warehouse=runtime.warehouse,
        project_id=project_id,
        campaign=campaign,
        now=runtime.clock(),
        from_date=from_date,
        to_date=to_date,
        principal=principal,
    )
    if format != "csv":
        return report
    return _csv(
        reports.campaign_csv(report),
        "campaign-report.csv",
        runtime,
        principal,
        project_id,
        f"campaign_report:{campaign}",
    )


@prices_router.get("", response_model=list[ChannelPriceOut])
def list_prices(session: SessionDep, project_id: ProjectId, _: Reader) -> list[ChannelPriceOut]:
    return reports.list_prices(session=session, project_id=project_id)


@prices_router.put("/{channel}", response_model=ChannelPriceOut)
def set_price(
    channel: str,
    body: ChannelPriceIn,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Writer,
) -> ChannelPriceOut:
    """Set what one unit of a channel costs (CNY); audited."""
    return reports.set_price(
        session=session,
        project_id=project_id,
        channel=channel,
        price_in=body,
        actor=principal.actor,
        now=runtime.clock(),
    )


@prices_router.delete("/{channel}", status_code=204)
def delete_price(
    channel: str,
    session: SessionDep,
    runtime: RuntimeDep,
    project_id: ProjectId,
    principal: Writer,
) -> Response:
    reports.delete_price(
        session=session,
        project_id=project_id,
        channel=channel,
        actor=principal.actor,
        now=runtime.clock(),
    )
    return Response(status_code=204)
