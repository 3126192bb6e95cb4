"""`flywheel users …` end to end: the first admin signs in through the API."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from flywheel.app import create_app
from flywheel.bootstrap import open_runtime
from flywheel.cli import app as cli
from flywheel.config import Settings
from tests.conftest import PASSWORD


def test_create_admin_then_login_with_secure_cookie(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "users",
            "create-admin",
            "--username",
            "boss",
            "--password",
            PASSWORD,
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert made.exit_code == 0, made.output
    weak = runner.invoke(
        cli,
        [
            "users",
            "create-admin",
            "--username",
            "b2",
            "--password",
            "short",
            "--data-dir",
            str(tmp_path),
        ],
    )
    assert weak.exit_code == 2 and "password" in weak.output
    listed = runner.invoke(cli, ["users", "list", "--data-dir", str(tmp_path)])
    assert "boss" in listed.output and "admin" in listed.output

    runtime = open_runtime(Settings(env="test", data_dir=tmp_path, cookie_secure=True))
    try:
        with TestClient(create_app(runtime=runtime, workers=False)) as client:
            answer = client.post(
                "/api/v1/auth/login",
                json={"username": "boss", "password": PASSWORD, "session_cookie": True},
            )
            assert answer.status_code == 200
            session_cookie = next(
                c
                for c in answer.headers.get_list("set-cookie")
                if c.startswith("flywheel_session=")
            )
            assert "Secure" in session_cookie
            headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            assert client.get("/api/v1/auth/me", headers=headers).json()["role"] == "admin"
            entries = client.get("/api/v1/audit", headers=headers).json()["entries"]
            assert [(e["actor"], e["action"]) for e in reversed(entries)] == [
                ("cli", "user.create"),
                ("user:boss", "auth.login"),
            ]
    finally:
        runtime.close()
    shown = runner.invoke(cli, ["audit", "show", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 0 and "auth.login" in shown.output
