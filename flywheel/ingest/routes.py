"""Collection endpoints (Sensors ``/sa``, ``/sa.gif``, ``/debug``; Segment ``/v1/*``) and the
ingest admin API (``/api/v1/ingest/rejections``, ``/api/v1/ingest/keys``).

A 2xx from a collection endpoint means the accepted records are committed in the inbox: the
unit of work closes (commits) before the answer is built. Bodies are read with the size limit
enforced while streaming; decoding, validation and the INSERT run on the thread pool.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from flywheel.auth import pii
from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.core.errors import PayloadTooLarge, Unauthenticated
from flywheel.http.deps import RuntimeDep, SessionDep
from flywheel.ingest import service
from flywheel.ingest.schemas import (
    IngestAnswer,
    IngestKeyCreated,
    IngestKeyIn,
    IngestKeyOut,
    RejectionOut,
)
from flywheel.ingest.sensors import decode_fields, decode_post, gunzip
from flywheel.ingest.writer import writer_for
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

collect_router = APIRouter(tags=["collect"])
api_router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])

#: The 1x1 transparent GIF answered to image beacons.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
#: Browsers post from any site (the JS SDK, with or without credentials); the answer of a
#: collection endpoint carries no secrets, so any origin may read it.
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Dry-Run",
    "Access-Control-Max-Age": "86400",
}


def cors(request: Request) -> dict[str, str]:
    """CORS headers echoing the caller's origin (``*`` cannot be used with credentials)."""
    origin = request.headers.get("origin")
    if not origin:
        return {**CORS_HEADERS, "Access-Control-Allow-Origin": "*"}
    return {
        **CORS_HEADERS,
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Credentials": "true",
        "Vary": "Origin",
    }


SegmentKind = Literal["track", "identify", "alias", "page", "screen", "group", "batch"]


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, refused with 413 as soon as it exceeds ``max_bytes`` (also after
    ``Content-Encoding: gzip``); never buffered beyond the limit."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"request body of {declared} bytes exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"request body exceeds {max_bytes} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        body = gunzip(body, max_bytes=max_bytes, what="request body")
    return body


def _sensors_unit(
    runtime: Runtime,
    body: bytes | None,
    content_type: str,
    query: dict[str, str],
    *,
    store: bool,
) -> IngestAnswer:
    max_bytes = runtime.settings.max_body_bytes
    if body is None:
        payload = decode_fields(query, max_bytes=max_bytes)
    else:
        payload = decode_post(body, content_type, query, max_bytes=max_bytes)
    with runtime.db.unit_of_work() as session:
        batch = service.check_sensors(
            session=session,
            payload=payload,
            now=runtime.clock(),
            max_records=runtime.settings.max_records_per_request,
        )
    if not store:
        return batch.answer()
    return _store(runtime, batch)


def _store(runtime: Runtime, batch: service.CheckedBatch) -> IngestAnswer:
    """Commit a checked batch (group commit with concurrent requests); the answer is returned
    only after the transaction holding it has committed."""
    return writer_for(runtime.db).store(batch)


@collect_router.post("/sa", response_model=IngestAnswer)
async def sensors_post(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Sensors Analytics SDK endpoint: ``data`` / ``data_list`` (base64, optional gzip)."""
    body = await read_body(request, runtime.settings.max_body_bytes)
    answer = await run_in_threadpool(
        _sensors_unit,
        runtime,
        body,
        request.headers.get("content-type", ""),
        dict(request.query_params),
        store=True,
    )
    return JSONResponse(answer.model_dump(), headers=cors(request))


@collect_router.get("/sa", response_model=IngestAnswer)
async def sensors_get(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The same as ``POST /sa`` with the fields in the query string."""
    answer = await run_in_threadpool(
        _sensors_unit, runtime, None, "", dict(request.query_params), store=True
    )
    return JSONResponse(answer.model_dump(), headers=cors(request))


@collect_router.get("/sa.gif", response_class=Response)
async def sensors_pixel(request: Request, runtime: RuntimeDep) -> Response:
    """Image beacon of the JS SDK: ``?data=…&project=…&gzip=…``; answers a 1x1 GIF."""
    answer = await run_in_threadpool(
        _sensors_unit, runtime, None, "", dict(request.query_params), store=True
    )
    headers = {
        **cors(request),
        "Cache-Control": "no-store",
        "X-Ingest-Accepted": str(answer.accepted),
        "X-Ingest-Rejected": str(answer.rejected),
    }
    return Response(PIXEL_GIF, media_type="image/gif", headers=headers)


@collect_router.post("/debug", response_model=IngestAnswer)
async def sensors_debug(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """The DebugConsumer endpoint: 200 when every record is valid, else 400 with the reasons.

    ``Dry-Run: true`` validates and stores nothing; otherwise it behaves like ``/sa``.
    """
    dry_run = request.headers.get("dry-run", "").lower() == "true"
    body = await read_body(request, runtime.settings.max_body_bytes)
    answer = await run_in_threadpool(
        _sensors_unit,
        runtime,
        body,
        request.headers.get("content-type", ""),
        dict(request.query_params),
        store=not dry_run,
    )
    if answer.rejected:
        content = {
            "error": "invalid_record",
            "message": "; ".join(answer.errors),
            "detail": answer.model_dump(),
        }
        return JSONResponse(content, status_code=400, headers=cors(request))
    return JSONResponse(answer.model_dump(), headers=cors(request))


@collect_router.options("/sa", include_in_schema=False)
@collect_router.options("/sa.gif", include_in_schema=False)
@collect_router.options("/debug", include_in_schema=False)
def sensors_preflight(request: Request) -> Response:
    return Response(status_code=204, headers=cors(request))


def write_key(request: Request) -> str:
    """The Segment write key: the HTTP Basic auth username."""
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "basic" or not credentials.strip():
        raise Unauthenticated(
            "missing write key: send it as the HTTP Basic auth username (Authorization: Basic …)"
        )
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Authorization: Basic credentials are not valid base64") from None
    key = decoded.partition(":")[0]
    if not key:
        raise Unauthenticated("the write key (Basic auth username) is empty")
    return key


def _segment_unit(runtime: Runtime, key: str, kind: str, body: bytes) -> IngestAnswer:
    with runtime.db.unit_of_work() as session:
        batch = service.check_segment(
            session=session,
            write_key=key,
            kind=kind,
            body=body,
            now=runtime.clock(),
            max_records=runtime.settings.max_records_per_request,
        )
    return _store(runtime, batch)


@collect_router.post("/v1/{kind}", response_model=IngestAnswer)
async def segment_collect(kind: SegmentKind, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Segment spec endpoints (``/v1/track`` … ``/v1/batch``); write key as Basic username."""
    key = write_key(request)
    body = await read_body(request, runtime.settings.max_body_bytes)
    answer = await run_in_threadpool(_segment_unit, runtime, key, kind, body)
    return JSONResponse({"success": True, **answer.model_dump()})


@api_router.get("/rejections", response_model=list[RejectionOut])
def list_rejections(
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require("ingest:read"))],
    project: str = "default",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    source: str | None = None,
    reveal: bool = False,
) -> list[RejectionOut]:
    """Rejected records of a project, newest first, with reason, source, time and raw.

    Personal data in ``raw`` is masked unless ``reveal=true`` (needs ``pii:view``; audited).
    """
    reveal = pii.authorize_reveal(principal, reveal=reveal)
    project_id = projects.get_by_name(session=session, name=project).id
    rows = service.list_rejections(
        session=session, project_id=project_id, limit=limit, source=source, reveal=reveal
    )
    if reveal and rows:
        pii.audit_reveal(
            session=session,
            principal=principal,
            customer=f"ingest_rejections:{project_id}",
            fields=["raw"],
            now=runtime.clock(),
            project_id=project_id,
            purpose="ingest rejections review",
        )
    return rows


@api_router.post("/keys", response_model=IngestKeyCreated, status_code=201)
def create_key(
    body: IngestKeyIn,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require("ingest:admin"))],
) -> IngestKeyCreated:
    """Create an ingest key (audited); the clear key is in this answer only."""
    project_id = projects.get_by_name(session=session, name=body.project).id
    return service.create_key(
        session=session,
        project_id=project_id,
        label=body.label,
        now=runtime.clock(),
        actor=principal.actor,
    )


@api_router.get("/keys", response_model=list[IngestKeyOut])
def list_keys(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("ingest:read"))],
    project: str | None = None,
) -> list[IngestKeyOut]:
    """Ingest keys (prefix, label, dates; never hashes nor clear keys)."""
    project_id = projects.get_by_name(session=session, name=project).id if project else None
    return service.list_keys(session=session, project_id=project_id)


@api_router.post("/keys/{prefix}/revoke", response_model=IngestKeyOut)
def revoke_key(
    prefix: str,
    session: SessionDep,
    runtime: RuntimeDep,
    principal: Annotated[Principal, Depends(require("ingest:admin"))],
) -> IngestKeyOut:
    """Revoke the key whose prefix starts with ``prefix`` (audited)."""
    return service.revoke_key(
        session=session, prefix=prefix, now=runtime.clock(), actor=principal.actor
    )
