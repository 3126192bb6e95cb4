"""Ingest keys (CLI and API, kept hashed) and the rejections API."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from flywheel.audit.models import AuditEntry
from flywheel.cli import app as cli
from flywheel.config import Settings
from flywheel.core.ids import sha256_hex
from flywheel.ingest import service
from flywheel.ingest.models import IngestKey
from flywheel.runtime import Runtime


def test_cli_creates_lists_revokes_and_toggles_require_token(
    settings: Settings, runtime: Runtime
) -> None:
    runner = CliRunner()
    data_dir = ["--data-dir", str(settings.data_dir)]
    created = runner.invoke(
        cli, ["keys", "create", "--project", "default", "--label", "ios", *data_dir]
    )
    assert created.exit_code == 0, created.output
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("fwk_")
    with runtime.db.unit_of_work() as session:
        assert service.verify_key(session=session, key=key) == 1
        stored = session.scalars(select(IngestKey)).one()
        assert stored.key_hash == sha256_hex(key) and key not in (stored.prefix, stored.label)
    listed = runner.invoke(cli, ["keys", "list", *data_dir])
    assert listed.exit_code == 0 and key[:12] in listed.stdout and key not in listed.stdout
    revoked = runner.invoke(cli, ["keys", "revoke", key[:12], *data_dir])
    assert revoked.exit_code == 0, revoked.output
    assert runner.invoke(cli, ["keys", "revoke", "fwk_zzzz", *data_dir]).exit_code == 2
    assert runner.invoke(cli, ["keys", "create", "--project", "nope", *data_dir]).exit_code == 2
    on = runner.invoke(cli, ["keys", "require-token", "--project", "default", *data_dir])
    assert on.exit_code == 0
    client = api_client(runtime)
    record = base64.b64encode(
        gzip.compress(json.dumps({"type": "track", "event": "E", "distinct_id": "u"}).encode())
    ).decode()
    assert client.post("/sa", data={"data": record}).json()["rejected"] == 1
    off = runner.invoke(cli, ["keys", "require-token", "--project", "default", "--off", *data_dir])
    assert off.exit_code == 0
    assert client.post("/sa", data={"data": record}).json()["accepted"] == 1


def api_client(runtime: Runtime) -> TestClient:
    from flywheel.app import create_app

    return TestClient(create_app(runtime=runtime, workers=False))


def test_api_keys_need_permissions_are_audited_and_never_show_hashes(
    client: TestClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    make_headers: Callable[..., dict[str, str]],
) -> None:
    assert client.post("/api/v1/ingest/keys", json={"project": "default"}).status_code == 401
    analyst = make_headers("analyst")
    denied = client.post("/api/v1/ingest/keys", json={"project": "default"}, headers=analyst)
    assert denied.status_code == 403
    created = client.post(
        "/api/v1/ingest/keys", json={"project": "default", "label": "web"}, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith(body["prefix"]) and "key_hash" not in body
    listed = client.get("/api/v1/ingest/keys", headers=admin_headers).json()
    assert listed == [{k: v for k, v in body.items() if k != "key"}]
    assert sha256_hex(body["key"]) not in json.dumps(listed)
    assert (
        client.post(
            "/api/v1/ingest/keys", json={"project": "ghost"}, headers=admin_headers
        ).status_code
        == 404
    )
    revoked = client.post(
        f"/api/v1/ingest/keys/{body['prefix']}/revoke", headers=admin_headers
    ).json()
    assert revoked["revoked_at"] is not None
    with runtime.db.unit_of_work() as session:
        trail = session.execute(
            select(AuditEntry.actor, AuditEntry.action, AuditEntry.target).order_by(AuditEntry.seq)
        ).all()
    assert [tuple(t) for t in trail if t.action.startswith("ingest_key.")] == [
        ("user:admin0", "ingest_key.create", f"ingest_key:{body['id']}"),
        ("user:admin0", "ingest_key.revoke", f"ingest_key:{body['id']}"),
    ]


def test_rejections_api_lists_newest_first(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime
) -> None:
    with runtime.db.unit_of_work() as session:
        service.record_rejections(
            session=session, project_id=1, source="processor", rejections=[("old", "{}")]
        )
    records = [{"type": "track", "event": "bad name", "distinct_id": "u", "time": 1730000000000}]
    client.post("/sa", data={"data_list": base64.b64encode(json.dumps(records).encode()).decode()})
    assert client.get("/api/v1/ingest/rejections").status_code == 401
    answer = client.get(
        "/api/v1/ingest/rejections?project=default&limit=100", headers=admin_headers
    )
    assert answer.status_code == 200
    listed = answer.json()
    assert [r["source"] for r in listed] == ["sensors", "processor"]
    assert listed[0]["reason"].startswith("event name 'bad name'")
    assert json.loads(listed[0]["raw"]) == records[0]
    assert {"rejected_at", "reason", "source", "raw"} <= set(listed[0])
    only = client.get("/api/v1/ingest/rejections?limit=1", headers=admin_headers).json()
    assert len(only) == 1
    assert (
        client.get("/api/v1/ingest/rejections?project=ghost", headers=admin_headers).status_code
        == 404
    )


def test_record_rejections_truncates_raw_and_keeps_project_less_ones(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        n = service.record_rejections(
            session=session,
            project_id=1,
            source="import",
            rejections=[("too long", "x" * 100_000), ("short", "y")],
        )
        service.record_rejections(
            session=session, project_id=None, source="sensors", rejections=[("no project", "")]
        )
        assert n == 2
        listed = service.list_rejections(session=session, project_id=1)
    assert [(r.reason, len(r.raw)) for r in listed] == [("short", 1), ("too long", 64 * 1024)]


def test_rejections_mask_personal_data_unless_revealed_with_pii_view(
    client: TestClient,
    runtime: Runtime,
    admin_headers: dict[str, str],
    make_headers: Callable[..., dict[str, str]],
) -> None:
    record = {
        "type": "profile_set",
        "distinct_id": "13812345678",
        "identities": {"$identity_email": "li.lei@example.com"},
        "properties": {"mobile": "13812345678", "name": "李雷", "city": "Shanghai", "bad": {}},
    }
    with runtime.db.unit_of_work() as session:
        service.record_rejections(
            session=session,
            project_id=1,
            source="sensors",
            rejections=[("bad", json.dumps(record)), ("cut", 'garbage 13812345678 a@b.cn {"x')],
        )
    analyst = make_headers("analyst")
    masked = client.get("/api/v1/ingest/rejections", headers=analyst).json()
    cut, kept = masked[0]["raw"], json.loads(masked[1]["raw"])
    assert "13812345678" not in cut and "a@b.cn" not in cut and "138****5678" in cut
    assert kept["distinct_id"] == "138****5678"
    assert kept["identities"]["$identity_email"] == "l***@example.com"
    assert kept["properties"]["name"] == "李*" and kept["properties"]["city"] == "Shanghai"
    refused = client.get("/api/v1/ingest/rejections?reveal=true", headers=analyst)
    assert refused.status_code == 403
    clear = client.get("/api/v1/ingest/rejections?reveal=true", headers=admin_headers).json()
    assert json.loads(clear[1]["raw"]) == record
    with runtime.db.unit_of_work() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "pii.reveal" in actions
