"""Channel accounts API: encrypted credentials never returned in clear, test send through the
real adapter to the local provider server (audited), delivery statistics, permissions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from flywheel.channels import accounts
from flywheel.cli import app
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels.providers import helpers
from tests.channels.providers.sim import ALIYUN_AK, Simulator, running_simulator
from tests.channels.providers.sim import accounts as sim_accounts

URL = "/api/v1/channels/accounts"


@pytest.fixture(scope="module")
def _simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(_simulator: Simulator) -> Simulator:
    _simulator.reset()
    return _simulator


def _aliyun_body(sim: Simulator, name: str = "aliyun-main") -> dict[str, Any]:
    account = dict(sim_accounts(sim)["sms_aliyun"])
    credentials = {
        "access_key_id": account.pop("access_key_id"),
        "access_key_secret": account.pop("access_key_secret"),
    }
    account.pop("provider")
    return {
        "name": name,
        "channel": "sms",
        "provider": "aliyun",
        "credentials": credentials,
        "options": account,
    }


def test_credentials_are_encrypted_and_masked(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime, sim: Simulator
) -> None:
    created = client.post(URL, json=_aliyun_body(sim), headers=admin_headers)
    assert created.status_code == 201, created.text
    account = created.json()
    assert ALIYUN_AK[1] not in created.text
    assert account["credentials"]["access_key_secret"].startswith("••••")
    listed = client.get(URL, headers=admin_headers)
    assert ALIYUN_AK[1] not in listed.text and ALIYUN_AK[0] not in listed.text
    with runtime.db.engine.connect() as conn:
        stored = conn.execute(text("SELECT credentials FROM channel_accounts")).scalar_one()
    assert ALIYUN_AK[1] not in stored and ALIYUN_AK[0] not in stored
    # An edit of the options keeps the secrets; the loader hands them to the adapter.
    edited = client.patch(
        f"{URL}/{account['id']}", json={"options": {"sign_name": "新签名"}}, headers=admin_headers
    )
    assert edited.status_code == 200 and edited.json()["options"] == {"sign_name": "新签名"}
    with runtime.db.unit_of_work() as session:
        loaded = accounts.load_account(session, helpers.project_id(runtime), "sms")
    assert loaded["access_key_secret"] == ALIYUN_AK[1]
    assert loaded["sign_name"] == "新签名" and loaded["provider"] == "aliyun"
    assert "callback_token" not in loaded
    audit = client.get("/api/v1/audit", headers=admin_headers, params={"action": "channels"})
    assert ALIYUN_AK[1] not in audit.text


def test_send_test_message_goes_through_the_adapter_and_is_audited(
    client: TestClient, admin_headers: dict[str, str], sim: Simulator, runtime: Runtime
) -> None:
    account = client.post(URL, json=_aliyun_body(sim), headers=admin_headers).json()
    answer = client.post(
        f"{URL}/{account['id']}/test",
        json={
            "address": "13800001234",
            "config": {"template": "notice"},
            "fields": {"name": "测试"},
        },
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["kind"] == "sent"
    [accepted] = sim.accepted["aliyun"]
    assert accepted["PhoneNumbers"] == "13800001234" and sim.refused["aliyun"] == 0
    with runtime.db.engine.connect() as conn:
        detail = conn.execute(
            text("SELECT detail FROM audit_log WHERE action = 'channels.test_sent'")
        ).scalar_one()
    assert "13800001234" not in str(detail) and "138****1234" in str(detail)
    wrong = client.patch(
        f"{URL}/{account['id']}",
        json={"credentials": {"access_key_secret": "wrong-secret"}},
        headers=admin_headers,
    )
    assert wrong.status_code == 200
    failed = client.post(
        f"{URL}/{account['id']}/test",
        json={"address": "13800001234", "config": {"template": "notice"}},
        headers=admin_headers,
    )
    assert failed.json()["kind"] == "failed" and sim.refused["aliyun"] == 1


def test_callback_urls_are_for_admins_only(
    client: TestClient,
    admin_headers: dict[str, str],
    make_headers: Callable[..., dict[str, str]],
    sim: Simulator,
) -> None:
    account = client.post(URL, json=_aliyun_body(sim), headers=admin_headers).json()
    urls = client.get(f"{URL}/{account['id']}/callbacks", headers=admin_headers).json()
    assert "/callbacks/sms/" in urls["receipts"] and "token=" in urls["receipts"]
    marketer = make_headers("marketer")
    assert client.get(URL, headers=marketer).status_code == 200
    assert client.get(f"{URL}/{account['id']}/callbacks", headers=marketer).status_code == 403
    assert client.post(URL, json=_aliyun_body(sim, "x"), headers=marketer).status_code == 403
    assert client.get(URL, headers=make_headers("analyst")).status_code == 403


def test_unknown_channel_and_duplicate_name_are_refused(
    client: TestClient, admin_headers: dict[str, str], sim: Simulator
) -> None:
    assert client.post(URL, json=_aliyun_body(sim), headers=admin_headers).status_code == 201
    assert client.post(URL, json=_aliyun_body(sim), headers=admin_headers).status_code == 409
    bad = {**_aliyun_body(sim, "other"), "channel": "pigeon"}
    assert client.post(URL, json=bad, headers=admin_headers).status_code == 400


def test_only_one_default_account_per_channel(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime, sim: Simulator
) -> None:
    first = client.post(URL, json=_aliyun_body(sim, "a"), headers=admin_headers).json()
    second = client.post(URL, json=_aliyun_body(sim, "b"), headers=admin_headers).json()
    listed = {a["name"]: a["is_default"] for a in client.get(URL, headers=admin_headers).json()}
    assert listed == {"a": False, "b": True}
    with runtime.db.unit_of_work() as session:
        assert (
            accounts.load_account(session, helpers.project_id(runtime), "sms")["_account_id"]
            == second["id"]
        )
    client.delete(f"{URL}/{second['id']}", headers=admin_headers)
    with runtime.db.unit_of_work() as session:
        assert (
            accounts.load_account(session, helpers.project_id(runtime), "sms")["_account_id"]
            == first["id"]
        )
        assert accounts.load_account(session, helpers.project_id(runtime), "app_push") == {}


def test_delivery_statistics_per_channel(
    client: TestClient, admin_headers: dict[str, str], runtime: Runtime, clock: FrozenClock
) -> None:
    now = clock()
    user = helpers.customer(runtime, now, **{"$identity_login_id": "C1"})
    rows = [
        ("sms", "sent", None),
        ("sms", "delivered", None),
        ("sms", "delivered", None),
        ("sms", "failed", "undelivered"),
        ("sms", "blocked", "opt_out"),
        ("sms", "blocked", "quiet_hours"),
        ("sms", "blocked", "opt_out"),
        ("app_push", "clicked", None),
    ]
    for index, (channel, status, reason) in enumerate(rows):
        helpers.message(
            runtime,
            now,
            user_id=user,
            channel=channel,
            key=f"k{index}",
            status=status,
            reason=reason,
        )
    stats = client.get("/api/v1/channels/stats", headers=admin_headers)
    assert stats.status_code == 200, stats.text
    by_channel = {s["channel"]: s for s in stats.json()}
    sms = by_channel["sms"]
    assert sms["total"] == 7
    assert sms["by_status"] == {"sent": 1, "delivered": 2, "failed": 1, "blocked": 3}
    assert sms["blocked_by_reason"] == {"opt_out": 2, "quiet_hours": 1}
    assert sms["failed_by_reason"] == {"undelivered": 1}
    assert sms["delivery_rate"] == 0.5
    assert by_channel["app_push"]["delivery_rate"] == 1.0
    only = client.get(
        "/api/v1/channels/stats", params={"channel": "app_push"}, headers=admin_headers
    ).json()
    assert [s["channel"] for s in only] == ["app_push"]


def test_cli_accounts_test_and_stats(settings: Settings, sim: Simulator) -> None:
    from flywheel.bootstrap import open_runtime

    runtime = open_runtime(settings)
    try:
        with runtime.db.unit_of_work() as session:
            body = _aliyun_body(sim)
            created = accounts.create_account(
                session=session,
                project_id=helpers.project_id(runtime),
                account_in=accounts.AccountIn(**body),
                actor="test",
                now=runtime.clock(),
            )
    finally:
        runtime.close()
    runner = CliRunner()
    base = ["--data-dir", str(settings.data_dir)]
    listed = runner.invoke(app, ["channels", "accounts", *base])
    assert listed.exit_code == 0, listed.output
    assert ALIYUN_AK[1] not in listed.stdout
    assert json.loads(listed.stdout)[0]["name"] == "aliyun-main"
    sent = runner.invoke(
        app, ["channels", "test", str(created.id), "13800005678", "--template", "notice", *base]
    )
    assert sent.exit_code == 0, sent.output
    assert json.loads(sent.stdout)["kind"] == "sent"
    assert sim.accepted["aliyun"][0]["PhoneNumbers"] == "13800005678"
    stats = runner.invoke(app, ["channels", "stats", *base])
    assert stats.exit_code == 0 and json.loads(stats.stdout) == []
