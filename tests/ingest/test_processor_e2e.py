"""End to end: the official Sensors SDK → /sa → inbox → processor → customer APIs."""

from __future__ import annotations

from collections.abc import Callable

import sensorsanalytics
from fastapi.testclient import TestClient

from flywheel.ingest.tasks import IngestProcessor
from flywheel.runtime import Runtime
from tests.ingest.live_server import live_server


def test_sdk_data_reaches_the_customer_apis(
    runtime: Runtime, client: TestClient, make_headers: Callable[..., dict[str, str]]
) -> None:
    with live_server(runtime) as url:
        sa = sensorsanalytics.SensorsAnalytics(
            sensorsanalytics.DefaultConsumer(f"{url}/sa?project=default")
        )
        sa.track("dev-9", "$AppStart", {"$os": "Android"})
        sa.track("dev-9", "ViewFundDetail", {"item_id": "F001", "item_type": "fund"})
        sa.track_signup("C0009", "dev-9")
        sa.profile_set("C0009", {"branch": "BR001", "risk_tolerance": "C3"}, is_login_id=True)
        sa.profile_increment("C0009", {"login_count": 2}, is_login_id=True)
        sa.track("C0009", "BuyFund", {"amount": 1000, "item_id": "F001"}, is_login_id=True)
        login = sensorsanalytics.SensorsAnalyticsIdentity("$identity_login_id", "C0009")
        account = sensorsanalytics.SensorsAnalyticsIdentity("fund_account", "FA0009")
        sa.bind(login, account)
        sa.item_set("fund", "F001", {"risk_level": "R3"})
        sa.close()
    processor = IngestProcessor(runtime)
    assert processor.run_once() == 8
    headers = make_headers("analyst")
    customer = client.get(
        "/api/v1/users/lookup",
        params={"key": "fund_account", "value": "FA0009", "project": "default"},
        headers=headers,
    )
    assert customer.status_code == 200, customer.text
    body = customer.json()
    assert body["properties"] == {"branch": "BR001", "risk_tolerance": "C3", "login_count": 2}
    assert body["identities"]["$identity_login_id"] == ["C0009"]
    assert body["identities"]["$identity_anonymous_id"] == ["dev-9"]
    events = client.get(f"/api/v1/users/{body['user_id']}/events", headers=headers).json()
    assert [e["event"] for e in events["events"]] == [
        "$BindID",
        "BuyFund",
        "$SignUp",
        "ViewFundDetail",
        "$AppStart",
    ]
