"""The Action and Feedback pages end to end: a journey built and published on the canvas, content
approved by a compliance user (and refused to its own author), the journey report, and the
playbooks, channels and advisor pages — in Debian's headless Chromium against a real server."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from flywheel.analytics import journey_routes
from tests.console.conftest import api_token
from tests.console.server import RunningServer
from tests.identity.factory import apply, rec
from tests.journeys.helpers import CANONICAL, settle


def _api(server: RunningServer, role: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url,
        headers={"Authorization": f"Bearer {api_token(server, role)}"},
        timeout=30,
    )


def _drop(page: Any, node_type: str, x: int, y: int) -> None:
    """Drag a palette entry onto the canvas at (x, y) of the canvas box (HTML5 drag and drop)."""
    page.get_by_test_id(f"palette-{node_type}").drag_to(
        page.get_by_test_id("canvas"), target_position={"x": x, "y": y}
    )
    # The new node's form opens beside the canvas: close it to keep the canvas free.
    page.get_by_test_id("form-label").wait_for()
    _close_drawer(page)


def _close_drawer(page: Any) -> None:
    from playwright.sync_api import expect

    page.locator(".ant-drawer-open .ant-drawer-close").first.click()
    page.locator(".ant-drawer-open").wait_for(state="detached")
    # The closing drawer still covers the canvas while it slides out: a drop there is lost.
    expect(page.locator(".ant-drawer-content-wrapper:visible")).to_have_count(0)


def _connect(page: Any, source_handle: str, target_node: str) -> None:
    """Drag from a node's output handle to another node's input handle with the mouse."""
    start = page.get_by_test_id(source_handle).bounding_box()
    end = page.get_by_test_id(f"in-{target_node}").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=8)
    page.mouse.up()


def _open_node(page: Any, node_id: str) -> None:
    page.get_by_test_id(f"node-{node_id}").click()
    page.get_by_test_id("form-label").wait_for()


def _open_streams_become(count: int, seconds: float = 10) -> None:
    """Wait until the server holds ``count`` live journey streams."""
    deadline = time.monotonic() + seconds
    while journey_routes.open_streams != count:
        assert time.monotonic() < deadline, (
            f"{journey_routes.open_streams} live streams open, expected {count}"
        )
        time.sleep(0.05)


def test_build_validate_and_publish_a_journey_on_the_canvas(
    form_login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    # Signed in through the login page: the bearer token and the HttpOnly session cookie.
    page = form_login("marketer")
    session_cookie = next(c for c in page.context.cookies() if c["name"] == "flywheel_session")
    assert session_cookie["httpOnly"]
    stats_polls: list[str] = []
    page.on("request", lambda r: "/stats" in r.url and stats_polls.append(r.url))
    page.goto("/journeys")
    page.get_by_test_id("journey-new").click()
    # Settings open first on a new journey.
    page.get_by_test_id("settings-name").fill("首购感谢（画布）")
    page.get_by_test_id("settings-purpose").get_by_text("服务通知").click()
    page.get_by_test_id("settings-done").click()
    page.get_by_test_id("palette-entry_event").wait_for()

    _drop(page, "entry_event", 120, 120)
    _drop(page, "send", 420, 120)
    _drop(page, "exit", 720, 120)
    for node_id in ("entry_event_1", "send_1", "exit_1"):
        page.get_by_test_id(f"node-{node_id}").wait_for()

    # The entry: BuyFund.
    _open_node(page, "entry_event_1")
    page.get_by_test_id("form-event").locator("input").fill("BuyFund")
    page.get_by_test_id("form-label").fill("首次申购")
    # The send: an in-app message written here.
    _open_node(page, "send_1")
    page.get_by_test_id("form-channel").click()
    page.locator(".ant-select-dropdown:visible").get_by_text("站内信/资源位", exact=True).click()
    page.get_by_test_id("form-content-text").fill("感谢{{ user.name | default('客户') }}的首次申购")
    _close_drawer(page)

    # One edge only: validation marks the unreachable exit on the canvas.
    _connect(page, "out-entry_event_1-next", "send_1")
    page.get_by_test_id("journey-validate").click()
    page.locator('[data-testid="node-exit_1"][data-problem="error"]').wait_for()
    assert page.get_by_test_id("problem-exit_1").first.inner_text()
    page.screenshot(path=str(artifacts / "20-journey-invalid.png"))

    _connect(page, "out-send_1-next", "exit_1")
    page.get_by_test_id("journey-validate").click()
    page.get_by_test_id("journey-valid").wait_for()
    assert page.locator('[data-problem="error"]').count() == 0

    page.get_by_test_id("journey-publish").click()
    page.get_by_test_id("journey-status").filter(has_text="运行中").wait_for()
    page.wait_for_url("**/journeys/*")
    journey_id = int(page.url.rstrip("/").split("/")[-1])
    # Live per-node counts pushed through the analytics stream (EventSource with the cookie).
    page.get_by_test_id("stats-entry_event_1").wait_for()
    page.locator('[data-testid="journey-live"][data-live-source="stream"]').wait_for()
    _open_streams_become(1)
    # A customer buys a fund; the engine takes them through the journey; the canvas shows it.
    runtime = console_server.runtime
    apply(
        runtime,
        rec(
            event="BuyFund",
            distinct_id="e2e-live-buyer",
            event_id="e2e-live-buy-1",
            time=runtime.clock(),
        ),
    )
    assert settle(runtime) > 0
    for node_id in ("entry_event_1", "send_1", "exit_1"):
        page.get_by_test_id(f"stats-{node_id}").filter(has_text=re.compile(r"进入 1\b")).wait_for()
    page.get_by_test_id("journey-live").filter(has_text="已完成 1").wait_for()
    assert stats_polls == [], "live counts came from polling /stats, not from the stream"
    page.screenshot(path=str(artifacts / "21-journey-published.png"))

    with _api(console_server, "marketer") as client:
        journey = client.get(f"/api/v1/journeys/{journey_id}").json()
        stats = client.get(f"/api/v1/journeys/{journey_id}/stats").json()
    assert journey["status"] == "published"
    assert journey["live_version"]["number"] == 1
    assert journey["purpose"] == "service"
    definition = journey["definition"]
    nodes = {n["id"]: n for n in definition["nodes"]}
    assert nodes["entry_event_1"]["event"] == "BuyFund"
    assert nodes["entry_event_1"]["label"] == "首次申购"
    assert nodes["send_1"]["channel"] == "in_app"
    assert nodes["send_1"]["content"]["text"].startswith("感谢{{ user.name")
    assert nodes["exit_1"]["position"]["x"] > nodes["send_1"]["position"]["x"]
    edges = {(e["from"], e["to"]) for e in definition["edges"]}
    assert edges == {("entry_event_1", "send_1"), ("send_1", "exit_1")}
    shown = page.get_by_test_id("journey-live").inner_text()
    assert stats["entered"] == 1 and stats["completed"] == 1
    assert f"累计进入 {stats['entered']}" in shown

    # Leaving the canvas closes the stream.
    page.get_by_test_id("journey-report-link").click()
    _open_streams_become(0)
    page.go_back()
    _open_streams_become(1)

    # The report of the published journey.
    page.get_by_test_id("journey-report-link").click()
    report = page.get_by_test_id("journey-report")
    report.wait_for()
    page.get_by_test_id("report-entrants").wait_for()
    with _api(console_server, "marketer") as client:
        expected = client.get(f"/api/v1/analytics/journeys/{journey_id}/report").json()
    assert str(expected["entrants"]) in page.get_by_test_id("report-entrants").inner_text()
    table = page.get_by_test_id("report-nodes").inner_text()
    assert "首次申购" in table
    page.get_by_test_id("report-funnel-chart").locator("canvas").first.wait_for()
    page.wait_for_timeout(600)
    page.screenshot(path=str(artifacts / "22-journey-report.png"), full_page=True)


def test_journey_publish_refusal_marks_the_canvas(
    login: Callable[[str], Any], console_server: RunningServer
) -> None:
    """A journey saved through the API with a dangling branch: the canvas shows the problem."""
    definition = {
        "name": "缺出口的条件",
        "nodes": [
            {"id": "in", "type": "entry_event", "event": "BuyFund"},
            {
                "id": "rich",
                "type": "condition",
                "rule": {
                    "relation": "and",
                    "rules": [
                        {
                            "type": "profile_rule",
                            "field": "total_assets",
                            "function": "gte",
                            "params": [100000],
                        }
                    ],
                },
            },
            {"id": "out", "type": "exit"},
        ],
        "edges": [{"from": "in", "to": "rich"}, {"from": "rich", "to": "out", "port": "yes"}],
    }
    with _api(console_server, "marketer") as client:
        created = client.post("/api/v1/journeys", json=definition)
        assert created.status_code == 201, created.text
        journey_id = created.json()["id"]
    page = login("marketer")
    page.goto(f"/journeys/{journey_id}")
    page.get_by_test_id("node-rich").wait_for()
    page.get_by_test_id("journey-publish").click()
    page.locator('[data-testid="node-rich"][data-problem="error"]').wait_for()
    assert page.get_by_test_id("journey-status").inner_text() == "草稿"


def test_content_review_by_compliance_and_author_refused(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer, browser: Any
) -> None:
    page = login("marketer")
    page.goto("/content")
    page.get_by_test_id("content-new-open").click()
    page.get_by_test_id("content-new-name").fill("定投提醒短信")
    body = "{{ user.name }}您好，本产品保本保收益，欢迎定投。"
    page.get_by_test_id("content-new-body").fill(body)
    page.get_by_test_id("content-create").click()
    editor = page.get_by_test_id("content-editor")
    editor.wait_for()
    # The checker's findings highlighted in the text, and the SMS length.
    page.get_by_test_id("content-highlighted").get_by_test_id("finding").first.wait_for()
    assert "保本" in page.get_by_test_id("content-highlighted").inner_text()
    assert "条" in page.get_by_test_id("content-sms").inner_text()
    page.screenshot(path=str(artifacts / "23-content-findings.png"), full_page=True)
    # Fix the text, save, preview for a customer, submit.
    saved_text = "{{ user.name }}您好，定投计划已为您准备好。"
    page.get_by_test_id("content-body").fill(saved_text)
    page.get_by_test_id("content-save").click()
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"content-highlighted\"] mark')"
    )
    page.get_by_test_id("content-preview").click()
    page.get_by_test_id("content-rendered-sms").wait_for()
    rendered = page.get_by_test_id("content-rendered")
    assert "定投计划已为您准备好" in rendered.inner_text()
    assert page.get_by_test_id("content-preview-unsaved").count() == 0
    saved_sms = page.get_by_test_id("content-rendered-sms").inner_text()
    # Type a change without saving: the preview follows the editor, labelled as unsaved.
    page.get_by_test_id("content-body").fill(saved_text + "每月扣款前{{ user.name }}会收到提醒。")
    page.get_by_test_id("content-preview-unsaved").wait_for()
    rendered.get_by_text("每月扣款前会收到提醒", exact=False).wait_for()
    assert "未保存修改的预览" in page.get_by_test_id("content-preview-unsaved").inner_text()
    assert page.get_by_test_id("content-rendered-sms").inner_text() != saved_sms
    page.screenshot(path=str(artifacts / "23b-content-preview-unsaved.png"), full_page=True)
    with _api(console_server, "marketer") as client:
        listed = client.get("/api/v1/content/items", params={"q": "定投提醒短信"}).json()
    assert [(i["latest"]["number"], i["latest"]["body"]) for i in listed] == [(1, saved_text)]
    # Back to the saved text: the preview is the saved version again, and it can be submitted.
    page.get_by_test_id("content-body").fill(saved_text)
    page.get_by_test_id("content-preview-unsaved").wait_for(state="detached")
    assert "每月扣款前" not in rendered.inner_text()
    page.get_by_test_id("content-submit").click()
    page.get_by_test_id("content-status").filter(has_text="待审核").first.wait_for()

    with _api(console_server, "marketer") as client:
        items = client.get("/api/v1/content/items").json()
    item = next(i for i in items if i["name"] == "定投提醒短信")
    assert item["latest"]["status"] == "submitted"
    assert item["latest"]["author"] == "user:marketer1"

    # Compliance approves from the review queue.
    context = browser.new_context(
        base_url=console_server.url, viewport={"width": 1400, "height": 900}, locale="zh-CN"
    )
    try:
        reviewer = context.new_page()
        token = api_token(console_server, "compliance")
        reviewer.add_init_script(f"window.sessionStorage.setItem('flywheel.token', '{token}');")
        reviewer.goto("/content")
        reviewer.get_by_test_id("tab-review").click()
        row = reviewer.get_by_role("row").filter(has_text="定投提醒短信")
        row.get_by_test_id("review-comment").fill("措辞合规")
        reviewer.screenshot(path=str(artifacts / "24-review-queue.png"), full_page=True)
        row.get_by_test_id("review-approve").click()
        reviewer.get_by_text("没有待审核的内容。").wait_for()
    finally:
        context.close()
    with _api(console_server, "marketer") as client:
        approved = client.get(f"/api/v1/content/items/{item['id']}").json()
    assert approved["latest"]["status"] == "approved"
    assert approved["latest"]["decided_by"] == "user:compliance1"
    assert approved["latest"]["decision_comment"] == "措辞合规"

    # An author who may approve (admin) is refused on their own version: the API's message shows.
    with _api(console_server, "admin") as client:
        own = client.post(
            "/api/v1/content/items",
            json={"name": "管理员自审", "channel": "sms", "body": "您好"},
        ).json()
        assert client.post(f"/api/v1/content/items/{own['id']}/submit").status_code == 200
    admin = login("admin")
    admin.goto("/content")
    admin.get_by_test_id("tab-review").click()
    row = admin.get_by_role("row").filter(has_text="管理员自审")
    row.get_by_test_id("review-approve").click()
    refusal = row.get_by_test_id("review-refused")
    refusal.wait_for()
    with _api(console_server, "admin") as client:
        still = client.get(f"/api/v1/content/items/{own['id']}").json()
    assert still["latest"]["status"] == "submitted"
    assert refusal.inner_text().strip()
    admin.screenshot(path=str(artifacts / "25-review-own-refused.png"))


def test_playbooks_channels_and_advisor_pages(
    login: Callable[[str], Any], artifacts: Path, console_server: RunningServer
) -> None:
    page = login("admin")
    with _api(console_server, "admin") as client:
        playbooks = client.get("/api/v1/playbooks")
        accounts = client.get("/api/v1/channels/accounts")
    page.goto("/playbooks")
    page.get_by_test_id("playbooks-page").wait_for()
    if playbooks.status_code == 200 and playbooks.json():
        first = playbooks.json()[0]
        page.get_by_test_id(f"playbook-{first['name']}").click()
        page.get_by_test_id("playbook-detail").wait_for()
        page.get_by_test_id("playbook-preview").click()
        page.get_by_test_id("playbook-preview-result").wait_for()
    else:
        page.get_by_test_id("api-missing").wait_for()
    page.screenshot(path=str(artifacts / "26-playbooks.png"), full_page=True)

    page.goto("/channels")
    page.get_by_test_id("channels-page").wait_for()
    if accounts.status_code == 200:
        page.get_by_test_id("channel-accounts").wait_for()
    page.get_by_role("tab", name="合规设置").click()
    page.get_by_test_id("compliance-settings").wait_for()
    page.screenshot(path=str(artifacts / "27-compliance-settings.png"), full_page=True)

    page.goto("/advisor")
    page.get_by_test_id("advisor-tasks").wait_for()
    page.screenshot(path=str(artifacts / "28-advisor.png"))

    # Overview: live campaign KPIs from the journeys API.
    page.goto("/")
    page.get_by_test_id("kpi-published").wait_for()
    with _api(console_server, "admin") as client:
        journeys = client.get("/api/v1/journeys").json()
    published = sum(1 for j in journeys if j["status"] == "published")
    assert page.get_by_test_id("kpi-published").inner_text().endswith(str(published))
    page.get_by_test_id("kpi-sent-today").wait_for()
    assert "—" not in page.get_by_test_id("kpi-sent-today").inner_text()


def test_four_eyes_publication_on_the_canvas(
    login: Callable[[str], Any], console_server: RunningServer, browser: Any, artifacts: Path
) -> None:
    """With four-eyes publishing on, the marketer's publish becomes a request shown on the
    canvas and in the list; a compliance officer approves it from the canvas."""
    with _api(console_server, "admin") as admin:
        current = admin.get("/api/v1/compliance/settings").json()
        body = {k: v for k, v in current.items() if k not in ("updated_by", "updated_at")}
        on = admin.put("/api/v1/compliance/settings", json={**body, "journey_publish_review": True})
        assert on.status_code == 200, on.text
        try:
            with _api(console_server, "marketer") as client:
                created = client.post(
                    "/api/v1/journeys", json={**CANONICAL, "name": "双人复核流程"}
                )
                assert created.status_code == 201, created.text
                journey_id = created.json()["id"]
            page = login("marketer")
            page.goto(f"/journeys/{journey_id}")
            page.get_by_test_id("node-send").wait_for()
            page.get_by_test_id("journey-publish").click()
            page.get_by_test_id("journey-publish-request").wait_for()
            assert page.get_by_test_id("journey-publish-approve").count() == 0
            assert page.get_by_test_id("journey-status").inner_text() == "草稿"
            page.goto("/journeys")
            page.get_by_test_id(f"journey-awaiting-{journey_id}").wait_for()

            context = browser.new_context(
                base_url=console_server.url, viewport={"width": 1400, "height": 900}, locale="zh-CN"
            )
            try:
                officer = context.new_page()
                token = api_token(console_server, "compliance")
                officer.add_init_script(
                    f"window.sessionStorage.setItem('flywheel.token', '{token}');"
                )
                officer.goto(f"/journeys/{journey_id}")
                officer.get_by_test_id("journey-publish-request").wait_for()
                officer.screenshot(path=str(artifacts / "27-journey-publish-request.png"))
                officer.get_by_test_id("journey-publish-approve").click()
                officer.get_by_test_id("journey-publish-request").wait_for(state="detached")
                officer.get_by_test_id("journey-status").filter(has_text="运行中").wait_for()
            finally:
                context.close()
            with _api(console_server, "marketer") as client:
                published = client.get(f"/api/v1/journeys/{journey_id}").json()
            assert published["status"] == "published"
            assert published["live_version"]["published_by"].startswith("user:compliance")
        finally:
            off = admin.put("/api/v1/compliance/settings", json=body)
            assert off.status_code == 200, off.text
