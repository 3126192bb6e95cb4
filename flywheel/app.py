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
from flywheel.auth.crypto import install_keys
from flywheel.auth.ratelimit import IngestRateLimit, Limit, build_limiter
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.console import mount_console
from flywheel.core.errors import FlywheelError
from flywheel.core.loops import LoopRunner
from flywheel.runtime import Runtime

log = structlog.get_logger(__name__)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _routers() -> list[Any]:
    from flywheel.analytics import journey_routes
    from flywheel.analytics.journey_routes import router as journey_reports_router
    from flywheel.analytics.routes import router as analytics_router
    from flywheel.auth.admin_routes import router as admin_router
    from flywheel.auth.audit_routes import router as audit_router
    from flywheel.auth.routes import router as auth_router
    from flywheel.channels.advisor_routes import router as advisor_router
    from flywheel.channels.routes import router as channels_router
    from flywheel.channels.settings_routes import public_router as channels_public_router
    from flywheel.channels.settings_routes import router as channel_accounts_router
    from flywheel.channels.settings_routes import stats_router as channel_stats_router
    from flywheel.channels.slot_routes import router as slots_router
    from flywheel.compliance.routes import router as compliance_router
    from flywheel.content.routes import router as content_router
    from flywheel.identity.routes import router as identity_router
    from flywheel.ingest.routes import api_router as ingest_api_router
    from flywheel.ingest.routes import collect_router
    from flywheel.journeys.routes import router as journeys_router
    from flywheel.playbooks.routes import router as playbooks_router
    from flywheel.profiles.routes import router as profiles_router
    from flywheel.projects.routes import router as projects_router
    from flywheel.recommend.routes import router as recommend_router
    from flywheel.segments.routes import router as segments_router
    from flywheel.tags.routes import router as tags_router

    return [
        auth_router,
        admin_router,
        audit_router,
        projects_router,
        collect_router,
        ingest_api_router,
        identity_router,
        profiles_router,
        tags_router,
        segments_router,
        recommend_router,
        analytics_router,
        content_router,
        journeys_router,
        compliance_router,
        channels_router,
        channel_accounts_router,
        channel_stats_router,
        channels_public_router,
        slots_router,
        advisor_router,
        playbooks_router,
        journey_reports_router,
        journey_routes.campaign_router,
        journey_routes.prices_router,
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
        if exc.status == 429 and "retry_after_seconds" in exc.detail:
            headers = {"Retry-After": str(exc.detail["retry_after_seconds"])}
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
    # After every router: the console takes whatever path no API route matched.
    mount_console(app)

    # Outermost last: security headers wrap everything, including 429s of the rate limit.
    rt: Runtime = app.state.runtime
    limiter = build_limiter(rt.settings.redis_url)
    app.state.rate_limiter = limiter
    install_keys(rt.settings.secret_key, rt.settings.encryption_keys)
    ingest_limit = (
        Limit(rate_per_second=rt.settings.ingest_rate_per_second, burst=rt.settings.ingest_burst)
        if rt.settings.ingest_rate_per_second > 0
        else None
    )
    app.add_middleware(IngestRateLimit, limiter=limiter, limit=ingest_limit)
    app.add_middleware(SecurityHeaders, csp=rt.settings.content_security_policy)
    return app


#: The interactive API docs load Swagger UI / ReDoc from a CDN with an inline bootstrap script.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "img-src 'self' data: https://fastapi.tiangolo.com; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` and the Content-Security-Policy.

    Pure ASGI (no BaseHTTPMiddleware) so it adds no task or body copy per request.
    """

    def __init__(self, app: Any, *, csp: str) -> None:
        self.app = app
        self.headers = self._encode({**SECURITY_HEADERS, "Content-Security-Policy": csp})
        self.docs_headers = self._encode({**SECURITY_HEADERS, "Content-Security-Policy": DOCS_CSP})

    @staticmethod
    def _encode(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
        return [(name.lower().encode(), value.encode()) for name, value in headers.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = self.docs_headers if scope.get("path") in DOCS_PATHS else self.headers

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in headers if n not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
