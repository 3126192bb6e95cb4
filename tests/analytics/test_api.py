"""The analytics API end to end through create_app()."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.analytics import reference
from tests.analytics.conftest import NOW
from tests.analytics.dataset import Dataset

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}
Headers = dict[str, str]


@pytest.fixture
def frozen(runtime: Runtime) -> FrozenClock:
    clock = FrozenClock(NOW)
    runtime.clock = clock
    return clock


def test_evaluate_binomial_exact_shape(client: TestClient, admin_headers: Headers) -> None:
    body = {
        "metric": "binomial",
        "control": {"n": 10000, "conversions": 500},
        "treatments": {"b": {"n": 10000, "conversions": 570}, "c": {"n": 9900, "conversions": 520}},
        "alpha": 0.05,
    }
    answer = client.post("/api/v1/analytics/experiments/evaluate", json=body, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    b = data["treatments"]["b"]
    assert {"difference", "lift", "ci_low", "ci_high", "p_value", "chance_to_win"} <= set(b)
    assert b["difference"] == pytest.approx(0.007)
    assert b["lift"] == pytest.approx(0.14)
    assert b["p_value"] == pytest.approx(proportions_ztest([570, 500], [10000, 10000])[1])
    low, high = confint_proportions_2indep(570, 10000, 500, 10000, method="wald", compare="diff")
    assert (b["ci_low"], b["ci_high"]) == pytest.approx((low, high))
    assert 0.5 < b["chance_to_win"] < 1
    assert data["srm_p_value"] == pytest.approx(sps.chisquare([10000, 10000, 9900]).pvalue)


def test_evaluate_mean_metric(client: TestClient, admin_headers: Headers) -> None:
    body = {
        "metric": "mean",
        "control": {"n": 500, "sum": 50_000.0, "sum_squares": 5_500_000.0},
        "treatments": {"b": {"n": 480, "sum": 50_400.0, "sum_squares": 5_800_000.0}},
    }
    answer = client.post("/api/v1/analytics/experiments/evaluate", json=body, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    b = answer.json()["treatments"]["b"]
    sd_c = ((5_500_000 - 50_000**2 / 500) / 499) ** 0.5
    sd_t = ((5_800_000 - 50_400**2 / 480) / 479) ** 0.5
    expected = sps.ttest_ind_from_stats(105.0, sd_t, 480, 100.0, sd_c, 500, equal_var=False)
    assert b["difference"] == pytest.approx(5.0)
    assert b["p_value"] == pytest.approx(expected.pvalue)


@pytest.mark.parametrize(
    ("control", "field"),
    [
        ({"n": 10, "conversions": 12}, "conversions"),
        ({"n": 0, "conversions": 0}, "n"),
    ],
)
def test_evaluate_rejects_bad_arms(
    client: TestClient, admin_headers: Headers, control: dict[str, Any], field: str
) -> None:
    body = {
        "metric": "binomial",
        "control": control,
        "treatments": {"b": {"n": 10, "conversions": 1}},
    }
    answer = client.post("/api/v1/analytics/experiments/evaluate", json=body, headers=admin_headers)
    assert answer.status_code in (400, 422)
    assert field in answer.json()["message"]


def test_evaluate_rejects_negative_variance(client: TestClient, admin_headers: Headers) -> None:
    body = {
        "metric": "mean",
        "control": {"n": 10, "sum": 100.0, "sum_squares": 10.0},
        "treatments": {"b": {"n": 10, "sum": 1.0, "sum_squares": 1.0}},
    }
    answer = client.post("/api/v1/analytics/experiments/evaluate", json=body, headers=admin_headers)
    assert answer.status_code == 422
    assert "sum_squares" in answer.json()["message"]


def test_permissions(client: TestClient, make_headers: Callable[..., Headers]) -> None:
    body = {"series": [{"event": "BuyFund"}]}
    assert client.post("/api/v1/analytics/events", json=body).status_code == 401
    advisor = make_headers("advisor")
    assert client.post("/api/v1/analytics/events", json=body, headers=advisor).status_code == 403
    analyst = make_headers("analyst")
    assert client.post("/api/v1/analytics/events", json=body, headers=analyst).status_code == 200


def test_analyses_over_http_with_csv(
    client: TestClient, admin_headers: Headers, loaded: Dataset, frozen: FrozenClock
) -> None:
    funnel = {
        "steps": [{"event": "$AppStart"}, {"event": "$SignUp"}, {"event": "BuyFund"}],
        "date_range": OCTOBER,
        "dropped_step": 3,
        "dropped_limit": 5,
    }
    answer = client.post("/api/v1/analytics/funnels", json=funnel, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert [s["step"] for s in data["steps"]] == [1, 2, 3]
    assert len(data["dropped_user_ids"]) == 5
    csv_answer = client.post(
        "/api/v1/analytics/funnels?format=csv", json=funnel, headers=admin_headers
    )
    assert csv_answer.headers["content-type"].startswith("text/csv")
    assert csv_answer.text.splitlines()[0].startswith("step,event,users,conversion_from_previous")

    retention = {"start_event": "$SignUp", "return_event": "$AppStart", "date_range": OCTOBER}
    answer = client.post("/api/v1/analytics/retention", json=retention, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["cohorts"][0]["retained"][0] is not None

    dist = client.post(
        "/api/v1/analytics/distribution", json={"date_range": OCTOBER}, headers=admin_headers
    )
    assert dist.status_code == 200 and dist.json()["total_users"] > 0
    attribution = {
        "conversion_event": "BuyFund",
        "touch_events": ["$AppStart"],
        "by": "utm_source",
        "date_range": OCTOBER,
    }
    answer = client.post("/api/v1/analytics/attribution", json=attribution, headers=admin_headers)
    assert answer.status_code == 200 and answer.json()["total_conversions"] > 0


def test_unknown_property_is_a_400_naming_it(
    client: TestClient, admin_headers: Headers, loaded: Dataset
) -> None:
    body = {"series": [{"event": "BuyFund", "measure": "sum", "property": "amont"}]}
    answer = client.post("/api/v1/analytics/events", json=body, headers=admin_headers)
    assert answer.status_code == 400
    assert "amont" in answer.json()["message"]
    bad = client.post(
        "/api/v1/analytics/events",
        json={"series": [{"measure": "sum"}]},
        headers=admin_headers,
    )
    assert bad.status_code == 422


def test_saved_analysis_crud_and_run(
    client: TestClient, admin_headers: Headers, loaded: Dataset, frozen: FrozenClock
) -> None:
    created = client.post(
        "/api/v1/analytics/saved",
        json={
            "name": "Buyers",
            "kind": "events",
            "definition": {
                "series": [{"event": "BuyFund", "measure": "uniques"}],
                "bucket": "total",
            },
        },
        headers=admin_headers,
    )
    assert created.status_code == 201, created.text
    analysis_id = created.json()["id"]
    listed = client.get("/api/v1/analytics/saved", headers=admin_headers).json()
    assert [a["id"] for a in listed] == [analysis_id]
    patched = client.patch(
        f"/api/v1/analytics/saved/{analysis_id}",
        json={"definition": {"series": [{"event": "BuyFund"}], "bucket": "total"}},
        headers=admin_headers,
    )
    assert patched.status_code == 200
    assert patched.json()["definition"]["series"][0]["event"] == "BuyFund"
    bad = client.patch(
        f"/api/v1/analytics/saved/{analysis_id}",
        json={"definition": {"series": []}},
        headers=admin_headers,
    )
    assert bad.status_code == 400 and "series" in bad.json()["message"]
    run = client.post(f"/api/v1/analytics/saved/{analysis_id}/run", headers=admin_headers)
    assert run.status_code == 200, run.text
    first, last = date(2026, 10, 4), date(2026, 11, 2)  # default: the last 30 days
    expected = sum(
        1
        for e in loaded.events
        if e["event"] == "BuyFund" and first <= reference.local_day(e["time"]) <= last
    )
    assert run.json()["rows"] == [[0, "BuyFund", "count", expected]]
    csv_run = client.post(
        f"/api/v1/analytics/saved/{analysis_id}/run?format=csv", headers=admin_headers
    )
    assert csv_run.text.startswith("series,event,measure,value")
    assert (
        client.delete(f"/api/v1/analytics/saved/{analysis_id}", headers=admin_headers).status_code
        == 204
    )
    assert (
        client.get(f"/api/v1/analytics/saved/{analysis_id}", headers=admin_headers).status_code
        == 404
    )


def test_3a3r_dashboard_seeded_editable_and_exportable(
    client: TestClient, admin_headers: Headers, loaded: Dataset, frozen: FrozenClock
) -> None:
    answer = client.get("/api/v1/analytics/dashboards/3a3r", headers=admin_headers)
    assert answer.status_code == 200, answer.text
    metrics = answer.json()["metrics"]
    assert [m["stage"] for m in metrics] == [
        "awareness",
        "acquisition",
        "activation",
        "retention",
        "revenue",
        "referral",
    ]
    assert all(m["error"] is None for m in metrics), metrics
    assert metrics[0]["headline"] > 0 and metrics[4]["headline"] > 0
    revenue = metrics[4]
    # edit the revenue metric: only 股票 funds
    patched = client.patch(
        f"/api/v1/analytics/saved/{revenue['analysis_id']}",
        json={
            "definition": {
                "series": [
                    {
                        "event": "BuyFund",
                        "measure": "sum",
                        "property": "amount",
                        "filters": [{"property": "fund_category", "value": "股票"}],
                    }
                ]
            }
        },
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    again = client.get("/api/v1/analytics/dashboards/3a3r", headers=admin_headers).json()["metrics"]
    assert len(again) == 6  # not re-seeded
    assert 0 < again[4]["headline"] < revenue["headline"]
    csv_answer = client.get("/api/v1/analytics/dashboards/3a3r?format=csv", headers=admin_headers)
    assert csv_answer.text.splitlines()[0] == "stage,name,kind,headline,error"
    assert client.get("/api/v1/analytics/dashboards/nope", headers=admin_headers).status_code == 404


def test_dashboard_metric_error_is_reported_not_raised(
    client: TestClient, admin_headers: Headers, frozen: FrozenClock
) -> None:
    # an empty project has no ``amount`` column yet: the revenue tile reports it
    metrics = client.get("/api/v1/analytics/dashboards/3a3r", headers=admin_headers).json()[
        "metrics"
    ]
    revenue = next(m for m in metrics if m["stage"] == "revenue")
    assert revenue["error"] and "amount" in revenue["error"]
    assert metrics[0]["error"] is None


def test_branch_scoped_user_sees_only_their_branch(
    client: TestClient, make_headers: Callable[..., Headers], loaded: Dataset, frozen: FrozenClock
) -> None:
    branch = {u["user_id"]: u["branch"] for u in loaded.users}
    headers = make_headers("analyst", branch_scope=["BR002"])
    body = {
        "steps": [{"event": "$AppStart"}, {"event": "BuyFund"}],
        "date_range": OCTOBER,
        "dropped_step": 2,
        "dropped_limit": 1000,
    }
    data = client.post("/api/v1/analytics/funnels", json=body, headers=headers).json()
    assert data["dropped_user_ids"]
    assert {branch[u] for u in data["dropped_user_ids"]} == {"BR002"}
