"""Compliance API: settings by role, consents, opt-outs, lists; every change audited."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h

BASE = "/api/v1/compliance"


def test_settings_consents_opt_outs_lists(
    client: TestClient,
    runtime: Runtime,
    clock: FrozenClock,
    make_headers: Callable[..., dict[str, str]],
) -> None:
    officer = make_headers("compliance")
    marketer = make_headers("marketer")
    defaults = client.get(f"{BASE}/settings", headers=marketer).json()
    assert defaults["quiet_hours"]["start"] == "21:00" and defaults["channel_caps"]["sms"] == {
        "max": 2,
        "days": 7,
    }
    body = {**defaults, "channel_caps": {"sms": {"max": 1, "days": 7}}}
    body.pop("updated_by"), body.pop("updated_at")
    assert client.put(f"{BASE}/settings", json=body, headers=marketer).status_code == 403
    saved = client.put(f"{BASE}/settings", json=body, headers=officer)
    assert saved.status_code == 200, saved.text
    assert saved.json()["channel_caps"] == {"sms": {"max": 1, "days": 7}}
    bad = {**body, "quiet_hours": {"start": "25:00", "end": "08:00"}}
    assert client.put(f"{BASE}/settings", json=bad, headers=officer).status_code == 422

    (user,) = h.customers(runtime, [{"name": "甲", "branch": "BRA"}], clock())
    consent = client.put(
        f"{BASE}/customers/{user}/consents",
        json={"channel": "sms", "purpose": "marketing", "source": "app_signup"},
        headers=officer,
    )
    assert consent.status_code == 200, consent.text
    opted = client.post(
        f"{BASE}/customers/{user}/opt-outs", json={"channel": "sms"}, headers=officer
    )
    assert opted.status_code == 201
    state = client.get(f"{BASE}/customers/{user}", headers=officer).json()
    assert [c["source"] for c in state["consents"]] == ["app_signup"]
    assert [(o["channel"], o["purpose"]) for o in state["opt_outs"]] == [("sms", "marketing")]
    gone = client.delete(
        f"{BASE}/customers/{user}/opt-outs?channel=sms&purpose=marketing", headers=officer
    )
    assert gone.status_code == 204
    assert (
        client.post(f"{BASE}/customers/999999/opt-outs", json={}, headers=officer).status_code
        == 404
    )

    entry = client.post(
        f"{BASE}/lists", json={"kind": "black", "value": str(user), "note": "投诉"}, headers=officer
    )
    assert entry.status_code == 201
    dup = client.post(f"{BASE}/lists", json={"kind": "black", "value": str(user)}, headers=officer)
    assert dup.status_code == 409
    assert len(client.get(f"{BASE}/lists?kind=black", headers=officer).json()) == 1
    assert client.delete(f"{BASE}/lists/{entry.json()['id']}", headers=officer).status_code == 204

    audit = client.get("/api/v1/audit", params={"limit": 200}, headers=make_headers("auditor"))
    actions = audit.text
    for action in (
        "compliance.settings_updated",
        "compliance.consent_recorded",
        "compliance.opted_out",
        "compliance.opt_out_removed",
        "compliance.list_entry_added",
        "compliance.list_entry_deleted",
    ):
        assert action in actions, action


def test_channels_list_their_family_for_rules(
    client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    """The console offers rule channels from this list: every default cap key is a family."""
    officer = make_headers("compliance")
    channels = {c["name"]: c for c in client.get("/api/v1/channels", headers=officer).json()}
    assert channels["wechat_template"]["family"] == "wechat"
    assert channels["wecom_robot"]["family"] == "wecom"
    assert channels["app_push"]["family"] == "push"
    assert channels["sms"]["family"] == "sms"
    defaults = client.get(f"{BASE}/settings", headers=officer).json()
    families = {c["family"] for c in channels.values()}
    assert set(defaults["channel_caps"]) <= families
