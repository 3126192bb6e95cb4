"""Four-eyes publishing: with the compliance setting on, a journey goes live only when a second
person — neither its author nor whoever asked — approves the request for the draft as asked."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from flywheel.audit.models import AuditEntry
from flywheel.cli import app as cli_app
from flywheel.runtime import Runtime
from tests.journeys.helpers import CANONICAL

Headers = Callable[..., dict[str, str]]


def _review_on(client: TestClient, admin: dict[str, str]) -> None:
    current = client.get("/api/v1/compliance/settings", headers=admin).json()
    body = {k: v for k, v in current.items() if k not in ("updated_by", "updated_at")}
    answer = client.put(
        "/api/v1/compliance/settings",
        json={**body, "journey_publish_review": True},
        headers=admin,
    )
    assert answer.status_code == 200, answer.text


def _journey(client: TestClient, headers: dict[str, str]) -> int:
    created = client.post("/api/v1/journeys", json=CANONICAL, headers=headers)
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


def test_publishing_waits_for_a_second_person(
    client: TestClient, runtime: Runtime, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    author = make_headers("marketer")
    officer = make_headers("compliance")
    journey_id = _journey(client, author)

    asked = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author)
    assert asked.status_code == 202, asked.text
    body = asked.json()
    assert body["status"] == "draft" and body["live_version"] is None
    request = body["publish_request"]
    assert request["by"].startswith("user:marketer") and len(request["draft_sha"]) == 64
    listed = client.get("/api/v1/journeys", headers=officer).json()
    assert [j["awaiting_approval"] for j in listed if j["id"] == journey_id] == [True]

    # the author cannot approve, and a marketer lacks journeys:approve altogether
    own = client.post(f"/api/v1/journeys/{journey_id}/publish/approve", headers=author)
    assert own.status_code == 403
    # approving another draft than the one reviewed is refused
    stale = client.post(
        f"/api/v1/journeys/{journey_id}/publish/approve",
        json={"draft_sha": "0" * 64},
        headers=officer,
    )
    assert stale.status_code == 409 and "reviewed" in stale.json()["message"]

    approved = client.post(
        f"/api/v1/journeys/{journey_id}/publish/approve",
        json={"draft_sha": request["draft_sha"], "comment": "ok"},
        headers=officer,
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "published"
    assert approved.json()["live_version"]["published_by"].startswith("user:compliance")
    assert approved.json()["publish_request"] is None

    with runtime.db.unit_of_work() as session:
        actions = [
            (a.action, a.actor.split(":")[1].rstrip("0123456789"))
            for a in session.scalars(
                select(AuditEntry).where(AuditEntry.target == f"journey:{journey_id}")
            )
        ]
    assert ("journey.publish_requested", "marketer") in actions
    assert ("journey.publish_approved", "compliance") in actions
    assert ("journey.published", "compliance") in actions


def test_whoever_asked_cannot_approve_even_with_the_permission(
    client: TestClient, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    author = make_headers("marketer")
    other_admin = make_headers("admin")
    journey_id = _journey(client, author)
    asked = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=admin_headers)
    assert asked.status_code == 202
    refused = client.post(f"/api/v1/journeys/{journey_id}/publish/approve", headers=admin_headers)
    assert refused.status_code == 403
    assert refused.json()["error"] == "separation_of_duties"
    assert (
        client.post(
            f"/api/v1/journeys/{journey_id}/publish/approve", headers=other_admin
        ).status_code
        == 200
    )


def test_editing_withdraws_the_request_and_rejecting_keeps_the_draft(
    client: TestClient, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    author = make_headers("marketer")
    officer = make_headers("compliance")
    journey_id = _journey(client, author)
    assert client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author).status_code == 202

    changed = copy.deepcopy(CANONICAL)
    changed["nodes"][1]["content"]["text"] = "感谢您的首次申购"
    edited = client.put(f"/api/v1/journeys/{journey_id}", json=changed, headers=author)
    assert edited.status_code == 200 and edited.json()["publish_request"] is None
    nothing = client.post(f"/api/v1/journeys/{journey_id}/publish/approve", headers=officer)
    assert nothing.status_code == 409

    assert client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author).status_code == 202
    rejected = client.post(
        f"/api/v1/journeys/{journey_id}/publish/reject",
        json={"comment": "missing risk warning"},
        headers=officer,
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "draft" and rejected.json()["publish_request"] is None
    assert rejected.json()["definition"]["nodes"][1]["content"]["text"] == "感谢您的首次申购"


def test_an_unpublishable_draft_cannot_be_requested(
    client: TestClient, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    author = make_headers("marketer")
    broken = copy.deepcopy(CANONICAL)
    broken["edges"] = [{"from": "in", "to": "send"}]
    created = client.post("/api/v1/journeys", json=broken, headers=author)
    journey_id = created.json()["id"]
    answer = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author)
    assert answer.status_code == 422


def test_the_cli_cannot_bypass_four_eyes(
    client: TestClient, runtime: Runtime, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    journey_id = _journey(client, make_headers("marketer"))
    data_dir: Path = runtime.settings.data_dir
    result = CliRunner().invoke(
        cli_app, ["journeys", "publish", str(journey_id), "--data-dir", str(data_dir)]
    )
    assert result.exit_code != 0
    assert "four-eyes" in result.output + str(result.exception)
    status = client.get(f"/api/v1/journeys/{journey_id}", headers=admin_headers).json()["status"]
    assert status == "draft"


def test_without_the_setting_publish_is_immediate(
    client: TestClient, make_headers: Headers
) -> None:
    author = make_headers("marketer")
    journey_id = _journey(client, author)
    answer = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author)
    assert answer.status_code == 200 and answer.json()["status"] == "published"
    assert answer.json()["publish_request"] is None


def test_the_last_editor_cannot_approve_and_old_settings_files_keep_the_switch(
    client: TestClient, make_headers: Headers, admin_headers: dict[str, str]
) -> None:
    _review_on(client, admin_headers)
    author = make_headers("marketer")
    journey_id = _journey(client, author)
    editor = make_headers("admin")  # may approve, but edits the draft first
    changed = copy.deepcopy(CANONICAL)
    changed["nodes"][1]["content"]["text"] = "感谢您的申购"
    assert (
        client.put(f"/api/v1/journeys/{journey_id}", json=changed, headers=editor).status_code
        == 200
    )
    asked = client.post(f"/api/v1/journeys/{journey_id}/publish", headers=author)
    assert asked.status_code == 202
    assert asked.json()["publish_request"]["edited_by"].startswith("user:admin")
    refused = client.post(f"/api/v1/journeys/{journey_id}/publish/approve", headers=editor)
    assert refused.status_code == 403 and "last edited" in refused.json()["message"]

    # A settings body from before the switch existed leaves it on.
    current = client.get("/api/v1/compliance/settings", headers=admin_headers).json()
    old = {
        k: v
        for k, v in current.items()
        if k not in ("updated_by", "updated_at", "journey_publish_review")
    }
    assert (
        client.put("/api/v1/compliance/settings", json=old, headers=admin_headers).status_code
        == 200
    )
    after = client.get("/api/v1/compliance/settings", headers=admin_headers).json()
    assert after["journey_publish_review"] is True
    officer = make_headers("compliance")
    assert (
        client.post(f"/api/v1/journeys/{journey_id}/publish/approve", headers=officer).status_code
        == 200
    )
