"""Serving the web console (a Vite single-page app) from the API's own origin.

``mount_console(app)`` mounts the built assets at ``/`` after every API route, so routes win and
the console gets the rest: a file of the build when one matches the path, else ``index.html``
(client-side routing: ``/customers``, ``/segments/3`` …). Paths under ``/api/`` and ``/v1/`` that
no route took stay JSON 404s, so API clients (and the console itself) can tell a missing
endpoint from a page. When the console was never built, every page answers a short HTML note
saying how to build it (``scripts/build_console.sh``).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

log = structlog.get_logger(__name__)

#: Where a source checkout builds the console (``console/dist``), then where a packaged
#: install may ship it (``flywheel/console_dist``).
DEFAULT_DIST_DIRS = (
    Path(__file__).resolve().parents[1] / "console" / "dist",
    Path(__file__).resolve().parent / "console_dist",
)

#: Prefixes that belong to the API: never answered with the console's index.html.
API_PREFIXES = ("/api/", "/v1/")
API_PATHS = frozenset({"/api", "/v1", "/sa", "/sa.gif", "/debug", "/healthz", "/metrics"})

#: Vite puts content-hashed files under assets/: they never change, cache them for a year.
IMMUTABLE = "public, max-age=31536000, immutable"

BUILD_HINT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Flywheel console not built</title>
<style>body{{font-family:system-ui,sans-serif;max-width:44rem;margin:4rem auto;padding:0 1rem;
line-height:1.5;color:#222}}code,pre{{background:#f4f4f4;padding:.1rem .3rem;border-radius:4px}}
pre{{padding:.8rem}}</style></head>
<body>
<h1>The Flywheel console is not built yet</h1>
<p>The API is running (see <a href="/docs">/docs</a>); the web console's assets were not found
in <code>{where}</code>.</p>
<p>Build them once (needs Node.js 20+ and npm), then reload this page:</p>
<pre>bash scripts/build_console.sh</pre>
<p>which runs <code>cd console &amp;&amp; npm ci &amp;&amp; npm run build</code>.
See <code>docs/console.md</code>.</p>
<p lang="zh-CN">控制台前端尚未构建：请在仓库根目录运行 <code>bash scripts/build_console.sh</code>
后刷新本页。</p>
</body></html>
"""


def find_dist(candidates: tuple[Path, ...] = DEFAULT_DIST_DIRS) -> Path | None:
    """The first folder of ``candidates`` that holds a built console (an ``index.html``)."""
    for folder in candidates:
        if (folder / "index.html").is_file():
            return folder
    return None


def _is_api_path(path: str) -> bool:
    return path in API_PATHS or path.startswith(API_PREFIXES)


class ConsoleAssets:
    """ASGI app answering GET/HEAD with the console's files, falling back to ``index.html``.

    ``dist`` None (or a folder without ``index.html``) serves the build hint instead. The folder
    is looked at on each request, so building the console while the server runs just works.
    """

    def __init__(self, dist: Path | None, *, searched: tuple[Path, ...] = ()) -> None:
        self.dist = dist.resolve() if dist is not None else None
        self.searched = searched if searched else ((dist,) if dist is not None else ())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = self.respond(scope["method"], scope["path"])
        await response(scope, receive, send)

    def _current_dist(self) -> Path | None:
        if self.dist is not None and (self.dist / "index.html").is_file():
            return self.dist
        found = find_dist(self.searched)
        if found is not None:
            self.dist = found.resolve()
        return self.dist if found is not None else None

    def respond(self, method: str, path: str) -> Response:
        """The answer to ``method path`` (both as the client sent them)."""
        if _is_api_path(path):
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        if method not in {"GET", "HEAD"}:
            return JSONResponse(
                {"detail": "Method Not Allowed"}, status_code=405, headers={"Allow": "GET, HEAD"}
            )
        dist = self._current_dist()
        if dist is None:
            where = ", ".join(str(p) for p in self.searched) or "console/dist"
            return HTMLResponse(
                BUILD_HINT.format(where=html.escape(where)),
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        asset = _file(dist, path)
        if asset is not None:
            in_assets = asset.parent.name == "assets" and asset.parent.parent == dist
            return FileResponse(
                asset, headers={"Cache-Control": IMMUTABLE if in_assets else "no-cache"}
            )
        if path.startswith("/assets/"):
            # A hashed asset of an older build: a 404 lets the browser fail fast, not parse HTML.
            return Response("Not Found", status_code=404, media_type="text/plain")
        return FileResponse(dist / "index.html", headers={"Cache-Control": "no-cache"})


def _file(dist: Path, path: str) -> Path | None:
    """The file of the build at ``path``; None when absent or outside the build folder."""
    relative = path.lstrip("/")
    if not relative or "\x00" in relative:
        return None
    try:
        candidate = (dist / relative).resolve()
    except (OSError, ValueError):
        return None
    if not candidate.is_relative_to(dist) or not candidate.is_file():
        return None
    return candidate


def mount_console(app: FastAPI, *, dist_dir: Path | None = None) -> ConsoleAssets:
    """Serve the console at ``/`` with SPA fallback; call after every API router is included.

    ``dist_dir`` wins; else ``console_dir`` of the app's runtime settings when it exists and is
    set; else :data:`DEFAULT_DIST_DIRS`. Returns the mounted app (tests inspect ``dist``).
    """
    configured = dist_dir
    if configured is None:
        runtime: Any = getattr(app.state, "runtime", None)
        configured = runtime.settings.console_dir if runtime is not None else None
    searched = (configured,) if configured is not None else DEFAULT_DIST_DIRS
    dist = find_dist(searched)
    assets = ConsoleAssets(dist, searched=searched)
    app.mount("/", assets, name="console")
    if dist is None:
        log.warning("console_not_built", searched=[str(p) for p in searched])
    else:
        log.info("console_mounted", dist=str(dist))
    return assets
