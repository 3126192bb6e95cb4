"""OIDC login against a real local provider (authorization code + PKCE, signed id_token)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from flywheel.app import create_app
from flywheel.auth import service as auth_service
from flywheel.bootstrap import open_runtime
from flywheel.config import Settings
from flywheel.runtime import Runtime
from tests.auth.oidc_provider import Provider, running_provider
from tests.conftest import PASSWORD

CALLBACK = "http://testserver/api/v1/auth/oidc/callback"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


@pytest.fixture
def oidc_runtime(tmp_path: Path, provider: Provider) -> Iterator[Runtime]:
    settings = Settings(
        env="test",
        data_dir=tmp_path / "data",
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
        oidc_redirect_uri=CALLBACK,
    )
    runtime = open_runtime(settings)
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(
            session=session,
            username="li.lei",
            password=PASSWORD,
            role="analyst",
            email="li.lei@broker.example",
        )
    yield runtime
    runtime.close()


def _sign_in(client: TestClient) -> httpx.Response:
    start = client.get("/api/v1/auth/oidc/login", follow_redirects=False)
    assert start.status_code == 302, start.text
    at_idp = httpx.get(start.headers["location"], follow_redirects=False)
    assert at_idp.status_code in (302, 307), at_idp.text
    back = at_idp.headers["location"]
    assert back.startswith(CALLBACK)
    return client.get(back.removeprefix("http://testserver"), follow_redirects=False)


def test_oidc_login_by_username_claim(oidc_runtime: Runtime, provider: Provider) -> None:
    provider.claims = {"sub": "idp-1", "preferred_username": "li.lei"}
    with TestClient(create_app(runtime=oidc_runtime, workers=False)) as client:
        done = _sign_in(client)
        assert done.status_code == 200, done.text
        assert 'http-equiv="refresh"' in done.text
        assert client.get("/api/v1/auth/me").json()["username"] == "li.lei"
        audit_header = _admin(client, oidc_runtime)
        logins = client.get(
            "/api/v1/audit", params={"action": "auth.login"}, headers=audit_header
        ).json()["entries"]
        assert any(e["detail"]["method"] == "oidc" for e in logins)


def _admin(client: TestClient, runtime: Runtime) -> dict[str, str]:
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(session=session, username="root", password=PASSWORD, role="admin")
    token = client.post(
        "/api/v1/auth/login", json={"username": "root", "password": PASSWORD}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def test_oidc_login_by_email_when_username_unknown(
    oidc_runtime: Runtime, provider: Provider
) -> None:
    provider.claims = {
        "sub": "idp-2",
        "preferred_username": "someone-else",
        "email": "Li.Lei@broker.example",
        "email_verified": True,
    }
    with TestClient(create_app(runtime=oidc_runtime, workers=False)) as client:
        assert _sign_in(client).status_code == 200
        assert client.get("/api/v1/auth/me").json()["username"] == "li.lei"


def test_oidc_refuses_unknown_people_bad_nonce_and_forged_state(
    oidc_runtime: Runtime, provider: Provider
) -> None:
    with TestClient(create_app(runtime=oidc_runtime, workers=False)) as client:
        provider.claims = {"sub": "idp-3", "preferred_username": "stranger"}
        assert _sign_in(client).status_code == 401
        provider.claims = {"sub": "idp-1", "preferred_username": "li.lei"}
        provider.wrong_nonce = True
        refused = _sign_in(client)
        assert refused.status_code == 401 and "id_token" in refused.json()["message"]
        provider.wrong_nonce = False
        client.get("/api/v1/auth/oidc/login", follow_redirects=False)  # a real flow cookie
        forged = client.get("/api/v1/auth/oidc/callback", params={"code": "x", "state": "forged"})
        assert forged.status_code == 401
        assert client.get("/api/v1/auth/me").status_code == 401


def test_oidc_not_configured_is_404(client: TestClient) -> None:
    assert client.get("/api/v1/auth/oidc/login", follow_redirects=False).status_code == 404
