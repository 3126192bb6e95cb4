"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from flywheel import __version__
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.core.errors import FlywheelError
from flywheel.core.loops import LoopRunner
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _routers() -> list[Any]:
    from flywheel.analytics.routes import router as analytics_router
    from flywheel.auth.routes import router as auth_router
    from flywheel.identity.routes import router as identity_router
    from flywheel.ingest.routes import api_router as ingest_api_router
    from flywheel.ingest.routes import collect_router
    from flywheel.profiles.routes import router as profiles_router
    from flywheel.projects.routes import router as projects_router
    from flywheel.recommend.routes import router as recommend_router
    from flywheel.segments.routes import router as segments_router
    from flywheel.tags.routes import router as tags_router

    return [
        auth_router,
        projects_router,
        collect_router,
        ingest_api_router,
        identity_router,
        profiles_router,
        tags_router,
        segments_router,
        recommend_router,
        analytics_router,
    ]


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    workers: bool = True,
) -> FastAPI:
    """Build the app. ``runtime`` may be given (tests); else it is opened from ``settings``.

    With ``workers`` the background loops (ingest processor, …) run inside this process.
    """
    settings = settings or (runtime.settings if runtime else Settings())
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from flywheel.workers import build_loops

        rt = app.state.runtime
        runner = LoopRunner(build_loops(rt)) if workers else None
        if runner:
            runner.start()
        state["runner"] = runner
        try:
            yield
        finally:
            if runner:
                runner.stop()
            if runtime is None:
                rt.close()

    app = FastAPI(
        title="Flywheel",
        version=__version__,
        description="Marketing cloud for securities firms: Sense → Decision → Action → Feedback.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime or open_runtime(settings)

    @app.exception_handler(FlywheelError)
    async def _domain_error(_request: Request, exc: FlywheelError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse(
            {
                "error": exc.code,
                "message": exc.message,
                **({"detail": exc.detail} if exc.detail else {}),
            },
            status_code=exc.status,
            headers=headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return JSONResponse(
            {"error": "invalid_input", "message": f"{where}: {first['msg']}", "detail": errors},
            status_code=422,
        )

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        rt: Runtime = app.state.runtime
        with rt.db.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        rt.warehouse.fetch("SELECT 1")
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    for router in _routers():
        app.include_router(router)
    return app
