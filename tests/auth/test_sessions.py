"""Login (bearer and cookie), CSRF for cookie sessions, logout, API tokens, headers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from fastapi.testclient import TestClient

from flywheel.auth import service as auth_service
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.conftest import PASSWORD


def _user(runtime: Runtime, username: str = "mia", role: str = "marketer") -> None:
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(session=session, username=username, password=PASSWORD, role=role)


def _audit_actions(client: TestClient, runtime: Runtime) -> list[str]:
    from flywheel.audit import service as audit
    from flywheel.audit.schemas import AuditFilter

    with runtime.db.unit_of_work() as session:
        page = audit.search(session=session, filters=AuditFilter(limit=1000))
    return [e.action for e in reversed(page.entries)]


def test_bearer_login_exactly_as_the_acceptance_check(client: TestClient, runtime: Runtime) -> None:
    _user(runtime)
    answer = client.post("/api/v1/auth/login", json={"username": "mia", "password": PASSWORD})
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert answer.json()["csrf_token"] is None
    assert "set-cookie" not in answer.headers
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "mia"
    assert _audit_actions(client, runtime) == ["user.create", "auth.login"]


def test_cookie_session_needs_csrf_on_unsafe_methods(client: TestClient, runtime: Runtime) -> None:
    _user(runtime, role="admin")
    answer = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": PASSWORD, "session_cookie": True},
    )
    cookies = answer.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("flywheel_session="))
    assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
    assert "Secure" not in session_cookie  # settings.cookie_secure is off in tests
    csrf_cookie = next(c for c in cookies if c.startswith("flywheel_csrf="))
    assert "HttpOnly" not in csrf_cookie
    csrf = answer.json()["csrf_token"]
    # Reads work with the cookie alone.
    assert client.get("/api/v1/auth/me").status_code == 200
    body = {"name": "cookieproj"}
    missing = client.post("/api/v1/projects", json=body)
    assert missing.status_code == 403 and "CSRF" in missing.json()["message"]
    wrong = client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    # A CSRF token of another session does not fit this one.
    other = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": PASSWORD, "session_cookie": False},
    ).json()["access_token"]
    from flywheel.auth.deps import csrf_token_for

    foreign = csrf_token_for(runtime.settings.secret_key, other)
    client.cookies.set("flywheel_csrf", foreign)
    assert (
        client.post("/api/v1/projects", json=body, headers={"X-CSRF-Token": foreign}).status_code
        == 403
    )


def test_bearer_calls_are_exempt_from_csrf(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    made = client.post("/api/v1/projects", json={"name": "bearerproj"}, headers=admin_headers)
    assert made.status_code == 201


def test_logout_revokes_and_clears_cookie(client: TestClient, runtime: Runtime) -> None:
    _user(runtime)
    login = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": PASSWORD, "session_cookie": True},
    ).json()
    out = client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": login["csrf_token"]})
    assert out.status_code == 204
    assert (
        'flywheel_session=""' in out.headers["set-cookie"]
        or "Max-Age=0" in out.headers["set-cookie"]
    )
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    assert client.get("/api/v1/auth/me", headers=bearer).status_code == 401
    assert "auth.logout" in _audit_actions(client, runtime)


def test_bearer_with_a_session_cookie_is_a_bearer_call(
    client: TestClient, runtime: Runtime
) -> None:
    """The console signs in with ``session_cookie`` (for EventSource) and keeps sending its
    bearer token: such calls are bearer calls (no CSRF), and its logout ends the cookie too."""
    _user(runtime, role="admin")
    login = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": PASSWORD, "session_cookie": True},
    ).json()
    assert "flywheel_session" in client.cookies
    bearer = {"Authorization": f"Bearer {login['access_token']}"}
    made = client.post("/api/v1/projects", json={"name": "bothproj"}, headers=bearer)
    assert made.status_code == 201, made.text
    # The header decides: a bad bearer is refused even with a good cookie beside it.
    wrong = {"Authorization": "Bearer not-a-token"}
    assert client.get("/api/v1/auth/me", headers=wrong).status_code == 401
    out = client.post("/api/v1/auth/logout", headers=bearer)
    assert out.status_code == 204
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith("flywheel_session=")]
    assert cleared and ("Max-Age=0" in cleared[0] or 'flywheel_session=""' in cleared[0])
    # Even a cookie jar that kept the cookie gets nowhere: the token behind it is revoked.
    client.cookies.set("flywheel_session", login["access_token"])
    assert client.get("/api/v1/auth/me").status_code == 401


def test_expired_token_is_refused(runtime: Runtime, clock: FrozenClock) -> None:
    runtime.clock = clock
    from flywheel.app import create_app

    with TestClient(create_app(runtime=runtime, workers=False)) as client:
        _user(runtime)
        token = client.post(
            "/api/v1/auth/login", json={"username": "mia", "password": PASSWORD}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
        clock.advance(timedelta(minutes=runtime.settings.access_token_minutes + 1))
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_api_tokens_are_shown_once_listed_and_revocable(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    headers = make_headers("analyst")
    made = client.post("/api/v1/auth/tokens", json={"name": "etl", "days": 30}, headers=headers)
    assert made.status_code == 201
    api = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get("/api/v1/auth/me", headers=api).json()["role"] == "analyst"
    listed = client.get("/api/v1/auth/tokens", headers=headers).json()
    assert [(t["name"], t["token"]) for t in listed] == [("etl", None)]
    sneaky = client.post(
        "/api/v1/auth/tokens", json={"name": "x", "role": "admin"}, headers=headers
    )
    assert sneaky.status_code == 422
    assert (
        client.delete(f"/api/v1/auth/tokens/{made.json()['id']}", headers=headers).status_code
        == 204
    )
    assert client.get("/api/v1/auth/me", headers=api).status_code == 401


def test_change_own_password_revokes_tokens(client: TestClient, runtime: Runtime) -> None:
    _user(runtime)
    token = client.post(
        "/api/v1/auth/login", json={"username": "mia", "password": PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    weak = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "short1"},
        headers=headers,
    )
    assert weak.status_code == 400
    wrong = client.post(
        "/api/v1/auth/password",
        json={"current_password": "nope-nope-1", "new_password": "another-horse-43"},
        headers=headers,
    )
    assert wrong.status_code == 403
    ok = client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "another-horse-43"},
        headers=headers,
    )
    assert ok.status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
    relogin = client.post(
        "/api/v1/auth/login", json={"username": "mia", "password": "another-horse-43"}
    )
    assert relogin.status_code == 200


def test_security_headers_and_csp(client: TestClient) -> None:
    for answer in (client.get("/healthz"), client.get("/api/v1/projects")):
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        csp = answer.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "object-src 'none'" in csp
        assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    docs = client.get("/docs")
    assert "cdn.jsdelivr.net" in docs.headers["content-security-policy"]
    assert docs.headers["x-frame-options"] == "DENY"


def test_login_failures_are_audited_without_revealing_existence(
    client: TestClient, runtime: Runtime
) -> None:
    _user(runtime)
    unknown = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "x"})
    wrong = client.post("/api/v1/auth/login", json={"username": "mia", "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json()["message"] == wrong.json()["message"]
    assert _audit_actions(client, runtime).count("auth.login_failed") == 2


def test_session_cookies_end_with_the_browser(client: TestClient, runtime: Runtime) -> None:
    """No Max-Age/Expires: closing the browser ends the console's cookie session (the token
    still expires on the server at its own lifetime)."""
    _user(runtime)
    answer = client.post(
        "/api/v1/auth/login",
        json={"username": "mia", "password": PASSWORD, "session_cookie": True},
    )
    cookies = answer.headers.get_list("set-cookie")
    assert {c.split("=", 1)[0] for c in cookies} >= {"flywheel_session", "flywheel_csrf"}
    for cookie in cookies:
        attributes = cookie.lower()
        assert "max-age" not in attributes and "expires" not in attributes, cookie
        assert "httponly" in attributes or cookie.startswith("flywheel_csrf")
