"""End-to-end fixtures: a real server with the demo brokerage, and Debian's headless Chromium.

The suite skips (with the reason) when /usr/bin/chromium or the built console (console/dist) is
absent: ``apt-get install chromium`` and ``bash scripts/build_console.sh`` enable it.
Screenshots and page timings go to test-artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flywheel.auth import service as auth_service
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.demo.service import load_demo
from flywheel.projects import service as projects
from tests.console.server import RunningServer, serve

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
DIST = ROOT / "console" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "console"
PASSWORD = "correct-horse-42"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Users of the e2e server, by role.
USERS = {
    "admin": "admin",
    "marketer": "marketer1",
    "auditor": "auditor1",
    "compliance": "compliance1",
}


def _require_e2e() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium): console e2e skipped")
    if not (DIST / "index.html").is_file():
        pytest.skip("console/dist is absent (bash scripts/build_console.sh): console e2e skipped")
    pytest.importorskip("playwright.sync_api", reason="playwright (dev dependency) not installed")


@pytest.fixture(scope="session")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """API + console on a free port over a small demo brokerage (300 customers, 30 days)."""
    _require_e2e()
    data_dir = tmp_path_factory.mktemp("console-e2e")
    settings = Settings(
        env="test",
        data_dir=data_dir,
        login_rate_per_user_per_minute=0,
        login_rate_per_ip_per_minute=0,
    )
    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            project_id = projects.get_by_name(session=session, name="default").id
            for role, username in USERS.items():
                auth_service.create_user(
                    session=session, username=username, password=PASSWORD, role=role
                )
        load_demo(runtime, project_id=project_id, customers=300, days=30, seed=7)
        with serve(runtime) as server:
            yield server
    finally:
        runtime.close()


@pytest.fixture(scope="package")
def browser(console_server: RunningServer) -> Iterator[Any]:
    """Chromium for the console tests only: Playwright's sync API keeps an event loop running
    in this thread until it stops, and later suites that call ``asyncio.run`` (the dispatcher)
    would fail while it lives."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, console_server: RunningServer) -> Iterator[Any]:
    """A fresh browser context (own storage); fails the test on an uncaught page error."""
    context = browser.new_context(
        base_url=console_server.url, viewport={"width": 1400, "height": 900}, locale="zh-CN"
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture(scope="session")
def tokens(console_server: RunningServer) -> dict[str, str]:
    """Bearer tokens per role, fetched once (the login page itself is tested separately)."""
    return {role: api_token(console_server, role) for role in USERS}


@pytest.fixture
def login(page: Any, tokens: dict[str, str]) -> Callable[[str], Any]:
    """``login(role)``: the console opens signed in as ``role`` (token put in sessionStorage
    before any script runs, as the login page leaves it)."""

    def sign_in(role: str = "admin") -> Any:
        page.add_init_script(
            f"window.sessionStorage.setItem('flywheel.token', {json.dumps(tokens[role])});"
        )
        page.goto("/")
        page.get_by_test_id("nav").wait_for()
        return page

    return sign_in


@pytest.fixture
def form_login(page: Any) -> Callable[[str], Any]:
    """``form_login(role)``: sign in through the login page, as a user does — the console then
    holds the bearer token in sessionStorage and the HttpOnly session cookie (EventSource)."""

    def sign_in(role: str = "admin") -> Any:
        page.goto("/")
        page.get_by_test_id("login-username").fill(USERS[role])
        page.get_by_test_id("login-password").fill(PASSWORD)
        page.get_by_test_id("login-submit").click()
        page.get_by_test_id("nav").wait_for()
        return page

    return sign_in


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def timings(artifacts: Path) -> Iterator[dict[str, dict[str, float]]]:
    """Page-load figures collected by the tests, written to timings.json at the end."""
    figures: dict[str, dict[str, float]] = {}
    yield figures
    if figures:
        (artifacts / "timings.json").write_text(json.dumps(figures, indent=2) + "\n")


def api_token(server: RunningServer, role: str = "admin") -> str:
    import httpx

    answer = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"username": USERS[role], "password": PASSWORD},
        timeout=10,
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token
