"""The recommend HTTP API through the real app."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from tests.recommend.conftest import Brokerage

Headers = Callable[..., dict[str, str]]


def test_serving_answer_shape(
    client: TestClient, admin_headers: dict[str, str], brokerage: Brokerage
) -> None:
    trained = client.post("/api/v1/recommend/models", headers=admin_headers)
    assert trained.status_code == 201, trained.text
    assert trained.json()["version"] == 1
    answer = client.get(
        "/api/v1/recommend/home", params={"user": "cust-4", "n": 5}, headers=admin_headers
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["strategy"] == "hybrid"
    assert len(body["items"]) == 5
    for item in body["items"]:
        assert {"item_id", "item_type", "score", "reason", "risk_level"} <= set(item)
    explicit_key = client.get(
        "/api/v1/recommend/home",
        params={"user": "cust-4", "key": "$identity_login_id", "n": 5},
        headers=admin_headers,
    )
    assert explicit_key.json()["items"] == body["items"]


def test_unassessed_customer_over_http(
    client: TestClient, admin_headers: dict[str, str], brokerage: Brokerage
) -> None:
    client.post("/api/v1/recommend/models", headers=admin_headers)
    body = client.get(
        "/api/v1/recommend/home", params={"user": "cust-3", "n": 20}, headers=admin_headers
    ).json()
    assert body["items"]
    assert all(i["risk_level"] is None for i in body["items"])


def test_errors_and_permissions(
    client: TestClient, make_headers: Headers, brokerage: Brokerage
) -> None:
    analyst = make_headers("analyst")
    auditor = make_headers("auditor")
    assert client.get("/api/v1/recommend/home", params={"user": "cust-1"}).status_code == 401
    denied = client.get("/api/v1/recommend/home", params={"user": "cust-1"}, headers=auditor)
    assert denied.status_code == 403
    unknown = client.get("/api/v1/recommend/home", params={"user": "nobody"}, headers=analyst)
    assert unknown.status_code == 404
    no_scene = client.get("/api/v1/recommend/nope", params={"user": "cust-1"}, headers=analyst)
    assert no_scene.status_code == 404
    assert client.get("/api/v1/recommend/home", headers=analyst).status_code == 422
    write = client.put(
        "/api/v1/recommend/scenes/banner", json={"strategy": "popular"}, headers=analyst
    )
    assert write.status_code == 403
    assert client.post("/api/v1/recommend/models", headers=analyst).status_code == 403


def test_configuration_round_trip(
    client: TestClient, make_headers: Headers, brokerage: Brokerage
) -> None:
    marketer = make_headers("marketer")
    sneaky = client.put(
        "/api/v1/recommend/strategies/sneaky",
        json={"config": {"recall": [{"kind": "als"}], "suitability": False}},
        headers=marketer,
    )
    assert sneaky.status_code == 422
    saved = client.put(
        "/api/v1/recommend/strategies/funds_hot",
        json={"description": "热门基金", "config": {"recall": [{"kind": "popularity"}]}},
        headers=marketer,
    )
    assert saved.status_code == 200, saved.text
    scene = client.put(
        "/api/v1/recommend/scenes/fund_list",
        json={"title": "基金列表", "strategy": "funds_hot", "item_types": ["fund"]},
        headers=marketer,
    )
    assert scene.status_code == 200, scene.text
    names = [s["name"] for s in client.get("/api/v1/recommend/scenes", headers=marketer).json()]
    assert names == ["fund_list", "home"]
    reserved = client.put(
        "/api/v1/recommend/scenes/models", json={"strategy": "popular"}, headers=marketer
    )
    assert reserved.status_code == 400
    in_use = client.delete("/api/v1/recommend/strategies/funds_hot", headers=marketer)
    assert in_use.status_code == 409
    weights = client.get("/api/v1/recommend/training", headers=marketer).json()
    assert weights["event_weights"]["BuyFund"] == 5.0
    weights["event_weights"]["ViewArticle"] = 0.5
    assert (
        client.put("/api/v1/recommend/training", json=weights, headers=marketer).status_code == 200
    )
    client.post("/api/v1/recommend/models", headers=marketer)
    served = client.get(
        "/api/v1/recommend/fund_list", params={"user": "cust-4"}, headers=marketer
    ).json()
    assert served["strategy"] == "funds_hot"
    assert served["items"] and all(i["item_type"] == "fund" for i in served["items"])
    assert client.delete("/api/v1/recommend/scenes/fund_list", headers=marketer).status_code == 204
    assert (
        client.delete("/api/v1/recommend/strategies/funds_hot", headers=marketer).status_code == 204
    )
    models = client.get("/api/v1/recommend/models", headers=marketer).json()
    assert [m["version"] for m in models] == [1]


def test_feedback_counts_and_filters(
    client: TestClient, admin_headers: dict[str, str], brokerage: Brokerage
) -> None:
    client.post("/api/v1/recommend/models", headers=admin_headers)
    first = client.get(
        "/api/v1/recommend/home", params={"user": "cust-4"}, headers=admin_headers
    ).json()["items"][0]
    body = {"user": "cust-4", "item_type": first["item_type"], "item_id": first["item_id"]}
    for n in range(1, 6):
        answer = client.post(
            "/api/v1/recommend/home/feedback",
            json={**body, "action": "show", "strategy": "hybrid"},
            headers=admin_headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"shown": n, "clicked": 0}
    bad = client.post(
        "/api/v1/recommend/home/feedback", json={**body, "action": "like"}, headers=admin_headers
    )
    assert bad.status_code == 422
    after = client.get(
        "/api/v1/recommend/home", params={"user": "cust-4"}, headers=admin_headers
    ).json()["items"]
    assert first["item_id"] not in {i["item_id"] for i in after}
