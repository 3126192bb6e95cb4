"""The playbooks API (gallery, preview, apply with both permissions, audit) and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from flywheel.auth import service as auth_service
from flywheel.cli import app
from flywheel.config import Settings
from flywheel.demo.service import load_demo
from flywheel.playbooks.library import PLAYBOOKS
from flywheel.runtime import Runtime
from flywheel.segments import service as segment_service

Headers = Callable[..., dict[str, str]]
BASE = "/api/v1/playbooks"


def test_gallery_and_one_playbook(client: TestClient, make_headers: Headers) -> None:
    analyst = make_headers("analyst")  # journeys:read
    gallery = client.get(BASE, headers=analyst)
    assert gallery.status_code == 200, gallery.text
    cards = {card["name"]: card for card in gallery.json()}
    assert set(cards) == set(PLAYBOOKS) and len(cards) == 8
    assert cards["margin_conversion"]["title_zh"] == "两融资格转化（投顾跟进）"
    assert cards["fund_aip_activation"]["creates"] == {
        "tags": 1,
        "segments": 1,
        "content": 2,
        "journeys": 1,
    }
    one = client.get(f"{BASE}/ipo_reminder", headers=analyst).json()
    schema = one["parameters"]["properties"]
    assert schema["send_time"]["default"] == "09:15"
    assert set(schema["channel"]["enum"]) == {"sms", "app_push", "email", "in_app"}
    assert client.get(f"{BASE}/nope", headers=analyst).status_code == 404
    assert client.get(BASE).status_code == 401


def test_preview_creates_nothing_and_shows_the_plan(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    load_demo(runtime, project_id=1, customers=300, days=30)
    analyst = make_headers("analyst")
    answer = client.post(
        f"{BASE}/margin_conversion/preview",
        json={"parameters": {"min_assets": 800000, "advisor_due_days": 5}},
        headers=analyst,
    )
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    assert plan["suffix"] == 1 and plan["problems"] == []
    assert plan["parameters"]["min_assets"] == 800000
    assert plan["tags"][0]["name"] == "margin_eligibility"
    rule = plan["segment"]["segment"]["rule"]
    assert rule["rules"][0]["params"] == [800000]
    with runtime.db.unit_of_work() as session:
        expected = segment_service.count_rule(
            session=session, warehouse=runtime.warehouse, project_id=1, rule=rule,
            now=runtime.clock(),
        )  # fmt: skip
    assert plan["segment"]["estimated_size"] == expected
    assert all(c["findings"] == [] for c in plan["content"])
    advisor = next(n for n in plan["journey"]["nodes"] if n["type"] == "advisor_task")
    assert advisor["due_days"] == 5
    assert plan["journey"]["nodes"][0]["segment_id"] == "@segment"
    assert client.get("/api/v1/tags", headers=make_headers("admin")).json() == []
    bad = client.post(
        f"{BASE}/margin_conversion/preview",
        json={"parameters": {"min_risk_level": "C1"}},
        headers=analyst,
    )
    assert bad.status_code == 400 and "min_risk_level" in bad.json()["message"]


def test_apply_needs_journey_and_content_write_and_is_audited(
    client: TestClient, make_headers: Headers, runtime: Runtime
) -> None:
    admin = make_headers("admin")
    # A role that designs journeys but may not write content cannot apply, and vice versa.
    for name, permissions in (
        ("journey_only", ["journeys:read", "journeys:write"]),
        ("content_only", ["journeys:read", "content:write"]),
    ):
        created = client.post(
            "/api/v1/admin/roles",
            json={"name": name, "permissions": permissions},
            headers=admin,
        )
        assert created.status_code == 201, created.text
        refused = client.post(f"{BASE}/ipo_reminder/apply", headers=make_headers(name))
        assert refused.status_code == 403
    assert (
        client.post(f"{BASE}/ipo_reminder/apply", headers=make_headers("analyst")).status_code
        == 403
    )

    marketer = make_headers("marketer")
    first = client.post(f"{BASE}/ipo_reminder/apply", headers=marketer)
    assert first.status_code == 201, first.text
    again = client.post(
        f"{BASE}/ipo_reminder/apply",
        json={"parameters": {"send_time": "09:20"}},
        headers=marketer,
    )
    assert again.status_code == 201, again.text
    assert (first.json()["suffix"], again.json()["suffix"]) == (1, 2)
    journey = client.get(f"/api/v1/journeys/{again.json()['journey_id']}", headers=marketer)
    assert journey.status_code == 200, journey.text
    assert journey.json()["status"] == "draft"
    assert journey.json()["name"] == "新股申购提醒（交易日） (2)"
    delay = journey.json()["definition"]["nodes"][1]
    assert (delay["mode"], delay["time"]) == ("trading_days", "09:20")
    entries = client.get("/api/v1/audit?action=playbook.applied", headers=admin).json()["entries"]
    assert len(entries) == 2
    assert entries[0]["target"] == "playbook:ipo_reminder"
    assert entries[0]["actor"].startswith("user:marketer")
    assert entries[0]["detail"]["journey_id"] == again.json()["journey_id"]


def _json(output: str) -> dict[str, Any]:
    """The JSON document the command printed (log lines may come before it)."""
    loaded: dict[str, Any] = json.JSONDecoder().raw_decode(output[output.index("{\n") :])[0]
    return loaded


def test_cli_list_and_apply(settings: Settings, runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        auth_service.create_user(
            session=session, username="mia", password="correct-horse-42", role="marketer"
        )
        auth_service.create_user(
            session=session, username="ana", password="correct-horse-42", role="analyst"
        )
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    listed = runner.invoke(app, ["playbooks", "list"])
    assert listed.exit_code == 0, listed.output
    assert "risk_assessment_renewal" in listed.stdout and "新股申购" in listed.stdout
    runtime.close()  # the CLI opens the stores itself

    refused = runner.invoke(app, ["playbooks", "apply", "greetings", "--as", "ana", *data])
    assert refused.exit_code == 2 and "content:write" in refused.output
    applied = runner.invoke(
        app,
        [
            "playbooks", "apply", "greetings", "--as", "mia",
            "--param", "occasion=holiday", "--param", "holiday_name=春节",
            "--param", "holiday_date=02-17", "--param", "send_time=08:30", *data,
        ],
    )  # fmt: skip
    assert applied.exit_code == 0, applied.output
    result = _json(applied.stdout)
    assert result["parameters"]["holiday_name"] == "春节" and result["journey_status"] == "draft"
    bad = runner.invoke(
        app, ["playbooks", "apply", "greetings", "--as", "mia", "--param", "days", *data]
    )
    assert bad.exit_code == 2 and "key=value" in bad.output
    unknown = runner.invoke(app, ["playbooks", "apply", "nope", "--as", "mia", *data])
    assert unknown.exit_code == 2 and "unknown playbook" in unknown.output
