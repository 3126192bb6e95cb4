"""The console driven end to end in Debian's headless Chromium against a real server."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.console.conftest import api_token
from tests.console.server import RunningServer

NAVIGATION_TIMING = """() => {
  const [nav] = performance.getEntriesByType("navigation");
  return {
    dom_content_loaded_ms: nav.domContentLoadedEventEnd - nav.startTime,
    load_ms: nav.loadEventEnd - nav.startTime,
    transfer_kb: performance.getEntriesByType("resource")
      .reduce((n, r) => n + (r.transferSize || 0), nav.transferSize || 0) / 1024,
    slowest_api_ms: Math.max(0, ...performance.getEntriesByType("resource")
      .filter((r) => r.name.includes("/api/")).map((r) => r.duration)),
  };
}"""


READY = """(id) => {
  const el = document.querySelector(`[data-testid="${id}"]`);
  const busy = document.querySelector(
    ".ant-spin-spinning, .ant-skeleton, .ant-card-loading-content");
  return el && el.offsetParent !== null && !busy ? performance.now() : false;
}"""


def _a_customer_login(server: RunningServer) -> str:
    """The login id of a demo customer who bought a fund (so the timeline is not empty)."""
    rows = server.runtime.warehouse.fetch(
        "SELECT distinct_id FROM p1_events WHERE event = 'BuyFund' AND distinct_id IS NOT NULL "
        "ORDER BY distinct_id LIMIT 1"
    )
    assert rows, "the demo has no BuyFund event"
    return str(rows[0][0])


def test_login_is_required_and_wrong_password_says_why(page: Any, artifacts: Path) -> None:
    page.goto("/segments")
    page.wait_for_url("**/login")
    page.get_by_test_id("login-username").fill("admin")
    page.get_by_test_id("login-password").fill("not-the-password-1")
    page.get_by_test_id("login-submit").click()
    error = page.get_by_test_id("login-error")
    error.wait_for()
    assert "unauthenticated" in error.inner_text()
    page.screenshot(path=str(artifacts / "01-login-error.png"))
    page.get_by_test_id("login-password").fill("correct-horse-42")
    page.get_by_test_id("login-submit").click()
    # Back where the user wanted to go.
    page.get_by_test_id("segments-page").wait_for()
    assert page.url.endswith("/segments")


def test_overview_shows_3a3r_from_the_dashboard_api(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    page = login("admin")
    page.get_by_test_id("overview-page").wait_for()
    page.get_by_test_id("stage-revenue").get_by_test_id("stage-metric").first.wait_for()
    board = httpx.get(
        f"{console_server.url}/api/v1/analytics/dashboards/3a3r",
        headers={"Authorization": f"Bearer {api_token(console_server)}"},
        timeout=30,
    ).json()
    revenue = next(m for m in board["metrics"] if m["stage"] == "revenue")
    shown = page.get_by_test_id("stage-revenue").inner_text()
    assert revenue["name"] in shown
    assert f"{round(revenue['headline']):,}" in shown
    page.screenshot(path=str(artifacts / "02-overview.png"), full_page=True)


def test_customer_360_search(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    customer = _a_customer_login(console_server)
    page = login("admin")
    page.goto("/customers")
    page.get_by_test_id("customer-value").fill(customer)
    page.get_by_test_id("customer-search").click()
    page.get_by_test_id("customer-profile").wait_for()
    identities = page.get_by_test_id("customer-identities").inner_text()
    assert customer in identities
    events = page.get_by_test_id("customer-events")
    events.wait_for()
    assert "BuyFund" in events.inner_text()
    # PII comes masked from the API: the demo's mobile numbers never show in clear.
    properties = page.get_by_test_id("customer-properties").inner_text()
    assert "mobile" in properties
    assert not re.search(r"\b1[3-9]\d{9}\b", properties)
    page.screenshot(path=str(artifacts / "03-customer-360.png"), full_page=True)


def _pick(page: Any, test_id: str, option: str, *, search: bool = False) -> None:
    """Choose ``option`` in the antd Select marked ``test_id`` (typing it when searchable)."""
    page.get_by_test_id(test_id).click()
    if search:
        page.keyboard.type(option)
    page.locator(".ant-select-dropdown:visible").get_by_title(option, exact=True).click()


def _unselected_option(page: Any, option: str) -> Any:
    """``option`` where it is not chosen yet: the dropdown of the previous rule's Select, which
    has it chosen, may still be fading out when the next one opens."""
    unselected = ".ant-select-item-option:not(.ant-select-item-option-selected)"
    return page.locator(f'.ant-select-dropdown:visible {unselected}[title="{option}"]')


def test_segment_builder_live_count_and_save(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    page = login("marketer")
    page.goto("/segments")
    editor = page.get_by_test_id("segment-editor")
    editor.wait_for()
    # The starter profile condition: total_assets >= 100000.
    page.get_by_test_id("cond-0-0-field").locator("input").fill("total_assets")
    _pick(page, "cond-0-0-function", "≥")
    page.get_by_test_id("cond-0-0-value").fill("100000")
    # AND an event condition: did BuyFund in the last 30 days.
    page.get_by_test_id("add-event-0").click()
    _pick(page, "cond-0-1-event", "BuyFund", search=True)
    rule = {
        "relation": "and",
        "rules": [
            {
                "type": "profile_rule",
                "field": "total_assets",
                "function": "gte",
                "params": [100000],
            },
            {
                "type": "event_rule",
                "measure": {"aggregator": "count", "event": "BuyFund"},
                "window": {"relative_days": 30},
                "function": "did",
                "params": [],
            },
        ],
    }
    expected = httpx.post(
        f"{console_server.url}/api/v1/segments/preview",
        json={"rule": rule, "sample": 0},
        headers={"Authorization": f"Bearer {api_token(console_server, 'marketer')}"},
        timeout=30,
    ).json()["count"]
    assert expected > 0
    count = page.get_by_test_id("segment-live-count")
    page.wait_for_function(
        "([el, n]) => el.innerText.replace(/[^0-9]/g, '') === String(n)",
        arg=[count.element_handle(), expected],
    )
    page.get_by_test_id("segment-name").fill("富裕且近期购基")
    page.screenshot(path=str(artifacts / "04-segment-builder.png"), full_page=True)
    page.get_by_test_id("segment-save").click()
    table = page.get_by_test_id("segments-table")
    table.get_by_text("富裕且近期购基").wait_for()
    saved = httpx.get(
        f"{console_server.url}/api/v1/segments",
        headers={"Authorization": f"Bearer {api_token(console_server, 'marketer')}"},
        timeout=30,
    ).json()
    mine = next(s for s in saved if s["name"] == "富裕且近期购基")
    assert mine["rule"]["rules"][1]["measure"]["event"] == "BuyFund"
    assert mine["created_by"] == "user:marketer1"
    # Edit it: the builder reads the saved rule back; the change is saved with PATCH.
    table.get_by_role("row").filter(has_text="富裕且近期购基").get_by_role("button").click()
    page.get_by_test_id("cond-0-0-value").wait_for()
    assert page.get_by_test_id("cond-0-0-value").input_value() == "100000"
    page.get_by_test_id("cond-0-0-value").fill("0")
    page.get_by_test_id("segment-save").click()
    page.get_by_test_id("segment-editor").get_by_text("新建分群").wait_for()
    edited = httpx.get(
        f"{console_server.url}/api/v1/segments/{mine['id']}",
        headers={"Authorization": f"Bearer {api_token(console_server, 'marketer')}"},
        timeout=30,
    ).json()
    assert edited["rule"]["rules"][0]["params"] == [0]


def test_rule_tag_preview_save_and_run(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    page = login("marketer")
    page.goto("/tags")
    page.get_by_test_id("tag-editor").wait_for()
    page.get_by_test_id("tag-name").fill("wealth_level")
    page.get_by_test_id("tag-display-name").fill("资产等级")
    for index, (label, threshold) in enumerate([("高净值", "200000"), ("普通", "0")]):
        if index:
            page.get_by_test_id("tag-add-value").click()
        page.get_by_test_id(f"tag-value-{index}").fill(label)
        rule = page.get_by_test_id(f"tag-rule-{index}")
        rule.get_by_test_id("cond-0-0-field").locator("input").fill("total_assets")
        rule.get_by_test_id("cond-0-0-function").click()
        _unselected_option(page, "≥").click()
        rule.get_by_test_id("cond-0-0-value").fill(threshold)
    spec = {
        "values": [
            {
                "value": label,
                "rule": {
                    "relation": "and",
                    "rules": [
                        {
                            "type": "profile_rule",
                            "field": "total_assets",
                            "function": "gte",
                            "params": [threshold],
                        }
                    ],
                },
            }
            for label, threshold in [("高净值", 200000), ("普通", 0)]
        ]
    }
    headers = {"Authorization": f"Bearer {api_token(console_server, 'marketer')}"}
    expected = httpx.post(
        f"{console_server.url}/api/v1/tags/preview",
        json={"kind": "rule", "spec": spec},
        headers=headers,
        timeout=30,
    ).json()
    assert expected["total"] > 0
    total = page.get_by_test_id("tag-preview-total")
    page.wait_for_function(
        "([el, n]) => el.innerText.replace(/[^0-9]/g, '') === String(n)",
        arg=[total.element_handle(), expected["total"]],
    )
    page.screenshot(path=str(artifacts / "09-tag-builder.png"), full_page=True)
    page.get_by_test_id("tag-save").click()
    page.get_by_test_id("tags-table").get_by_text("资产等级 (wealth_level)").click()
    page.get_by_test_id("tag-run").click()
    distribution = page.get_by_test_id("tag-distribution")
    distribution.get_by_text("高净值").wait_for()
    page.screenshot(path=str(artifacts / "10-tag-distribution.png"))


def test_ab_calculator(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    page = login("admin")
    page.goto("/analytics")
    page.get_by_test_id("tab-ab").click()
    page.get_by_test_id("ab-control-n").fill("1000")
    page.get_by_test_id("ab-control-conversions").fill("100")
    page.get_by_test_id("ab-treatment-n").fill("1000")
    page.get_by_test_id("ab-treatment-conversions").fill("140")
    page.get_by_test_id("ab-evaluate").click()
    page.get_by_test_id("ab-result").wait_for()
    expected = httpx.post(
        f"{console_server.url}/api/v1/analytics/experiments/evaluate",
        json={
            "metric": "binomial",
            "control": {"n": 1000, "conversions": 100},
            "treatments": {"treatment": {"n": 1000, "conversions": 140}},
            "alpha": 0.05,
        },
        headers={"Authorization": f"Bearer {api_token(console_server)}"},
        timeout=30,
    ).json()["treatments"]["treatment"]
    assert page.get_by_test_id("ab-lift").inner_text() == f"{expected['lift'] * 100:.2f}%"
    assert page.get_by_test_id("ab-p-value").inner_text() == f"{expected['p_value']:.3g}"
    assert page.get_by_test_id("ab-verdict").inner_text() in {"显著", "significant"}
    page.screenshot(path=str(artifacts / "05-ab-calculator.png"), full_page=True)


def test_event_funnel_and_retention_analyses(login: Callable[[str], Any], artifacts: Path) -> None:
    page = login("admin")
    page.goto("/analytics")
    page.get_by_test_id("events-run").click()
    page.get_by_test_id("events-chart").locator("canvas").first.wait_for()
    page.wait_for_timeout(1200)  # let the chart's entry animation finish for the screenshot
    page.screenshot(path=str(artifacts / "06-event-analysis.png"), full_page=True)

    page.get_by_role("tab", name="漏斗").click()
    page.get_by_test_id("funnel-run").click()
    steps = page.get_by_test_id("funnel-table")
    steps.get_by_text("ViewFundDetail").wait_for()
    assert "BuyFund" in steps.inner_text()
    page.get_by_test_id("funnel-chart").locator("canvas").first.wait_for()

    page.get_by_role("tab", name="留存").click()
    page.get_by_test_id("retention-run").click()
    cohorts = page.get_by_test_id("retention-table")
    cohorts.get_by_text("平均").wait_for()
    assert "100.0%" in cohorts.inner_text()  # day 0 of a cohort is everyone
    page.wait_for_timeout(800)
    page.screenshot(path=str(artifacts / "11-retention.png"), full_page=True)


def test_menu_follows_permissions(login: Callable[[str], Any], artifacts: Path) -> None:
    page = login("auditor")
    nav = page.get_by_test_id("nav").inner_text()
    assert "系统管理" in nav
    assert "分群" not in nav and "客户" not in nav
    page.screenshot(path=str(artifacts / "07-auditor-menu.png"))
    page.get_by_test_id("tab-audit").click()
    page.get_by_test_id("admin-audit").get_by_text("auth.login").first.wait_for()
    # A page outside the role: refused in the console (and by the API anyway).
    page.goto("/segments")
    page.get_by_text("403").first.wait_for()


def test_language_switch_is_remembered(login: Callable[[str], Any]) -> None:
    page = login("admin")
    assert "分析" in page.get_by_test_id("nav").inner_text()
    page.get_by_test_id("language-switch").click()
    assert "Analytics" in page.get_by_test_id("nav").inner_text()
    page.reload()
    page.get_by_test_id("nav").wait_for()
    assert "Analytics" in page.get_by_test_id("nav").inner_text()


PAGES = [
    ("/", "stage-metric"),
    ("/customers", "customers-page"),
    ("/segments", "segment-live-count"),
    ("/tags", "tags-table"),
    ("/analytics", "analytics-page"),
    ("/recommend", "recommend-page"),
    ("/admin", "admin-users"),
    ("/journeys", "journeys-table"),
    ("/content", "content-table"),
    ("/playbooks", "playbooks-gallery"),
    ("/channels", "channel-accounts"),
    ("/advisor", "advisor-tasks"),
]


def test_page_load_figures(
    page: Any, login: Callable[[str], Any], timings: dict[str, dict[str, float]]
) -> None:
    """Records navigation timing per page (figures, not assertions: see docs/console.md).

    The first figure is a cold load (empty browser cache) of the login page; the others are
    navigations of a signed-in user, with the hashed assets cached as the server allows.
    """

    def measure(label: str, ready: str) -> None:
        # Polled every animation frame in the page: when the page's data first shows.
        ready_ms = page.wait_for_function(READY, arg=ready, polling="raf").json_value()
        figures = page.evaluate(NAVIGATION_TIMING)
        timings[label] = {
            **{name: round(value, 1) for name, value in figures.items()},
            "ready_ms": round(ready_ms, 1),
        }
        assert figures["load_ms"] > 0

    page.goto("/login")
    measure("/login (cold cache)", "login-submit")
    login("admin")
    for path, ready in PAGES:
        page.goto(path)
        measure(path, ready)
