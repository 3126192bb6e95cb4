"""flywheel.console: the built console at / with SPA fallback, the API untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from flywheel.app import create_app
from flywheel.console import IMMUTABLE
from flywheel.runtime import Runtime

INDEX = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1a2b.js">'


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    folder = tmp_path / "dist"
    (folder / "assets").mkdir(parents=True)
    (folder / "index.html").write_text(INDEX)
    (folder / "assets" / "app-1a2b.js").write_text("console.log('console')")
    (folder / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return folder


def _client(runtime: Runtime, dist: Path) -> Iterator[TestClient]:
    runtime.settings.console_dir = dist
    app = create_app(runtime=runtime, workers=False)
    with TestClient(app) as client:
        yield client


@pytest.fixture
def console(runtime: Runtime, dist: Path) -> Iterator[TestClient]:
    yield from _client(runtime, dist)


def test_index_and_client_side_routes_answer_the_app(console: TestClient) -> None:
    for path in ("/", "/customers", "/segments/12", "/analytics?tab=ab"):
        answer = console.get(path)
        assert answer.status_code == 200, path
        assert answer.text == INDEX
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["cache-control"] == "no-cache"
        # The app's security headers wrap the console too.
        assert "script-src 'self'" in answer.headers["content-security-policy"]


def test_built_files_are_served_and_hashed_assets_cached(console: TestClient) -> None:
    asset = console.get("/assets/app-1a2b.js")
    assert asset.status_code == 200
    assert asset.text == "console.log('console')"
    assert asset.headers["cache-control"] == IMMUTABLE
    assert "javascript" in asset.headers["content-type"]
    icon = console.get("/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["cache-control"] == "no-cache"
    # An asset of an older build is a 404, not the index page.
    assert console.get("/assets/app-0000.js").status_code == 404
    assert console.head("/assets/app-1a2b.js").status_code == 200


def test_paths_outside_the_build_are_not_served(console: TestClient) -> None:
    for path in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/../../secret.txt"):
        answer = console.get(path)
        assert "outside the build" not in answer.text, path


def test_api_paths_stay_json_404s_and_routes_still_win(
    console: TestClient, admin_headers: dict[str, str]
) -> None:
    missing = console.get("/api/v1/not-built-yet", headers=admin_headers)
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}
    assert console.post("/api/v1/nothing-here", json={}).status_code == 404
    assert console.get("/v1/unknown").status_code == 404
    assert console.get("/healthz").json()["status"] == "ok"
    me = console.get("/api/v1/auth/me", headers=admin_headers)
    assert me.status_code == 200
    assert me.json()["role"] == "admin"
    assert console.get("/openapi.json").json()["info"]["title"] == "Flywheel"
    assert console.post("/segments").status_code == 405


def test_missing_build_answers_how_to_build(runtime: Runtime, tmp_path: Path) -> None:
    empty = tmp_path / "never-built"
    for client in _client(runtime, empty):
        answer = client.get("/customers")
        assert answer.status_code == 503
        assert "scripts/build_console.sh" in answer.text
        assert str(empty) in answer.text
        assert client.get("/healthz").status_code == 200
        # Building while the server runs: the next request serves the console.
        (empty / "assets").mkdir(parents=True)
        (empty / "index.html").write_text(INDEX)
        assert client.get("/customers").text == INDEX
