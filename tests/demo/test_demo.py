"""The demo brokerage: deterministic generation, plausible data, an end-to-end load."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from io import StringIO

import pyarrow.compute as pc
import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from flywheel.core.clock import FrozenClock
from flywheel.core.errors import Conflict
from flywheel.demo.generator import EVENTS, generate
from flywheel.demo.service import load_demo, load_demo_if_empty
from flywheel.runtime import Runtime

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


def test_generation_is_deterministic_by_seed() -> None:
    first = generate(customers=300, days=30, seed=7, now=NOW, chunk_customers=100)
    again = generate(customers=300, days=30, seed=7, now=NOW, chunk_customers=100)
    other = generate(customers=300, days=30, seed=8, now=NOW, chunk_customers=100)
    assert first.fingerprint() == again.fingerprint()
    assert first.fingerprint() != other.fingerprint()
    counts = [chunk.num_rows for chunk in first.event_chunks()]
    assert counts == [chunk.num_rows for chunk in again.event_chunks()]


def test_generated_brokerage_is_plausible() -> None:
    demo = generate(customers=3000, days=90, seed=7, now=NOW)
    customers = demo.customers
    assert customers.num_rows == 3000
    assert customers.column("distinct_id")[0].as_py() == "cust-000001"
    assert len(set(customers.column("mobile").to_pylist())) == 3000
    assert len(demo.branches) == 20 and len(demo.advisors) == 100
    risk = Counter(customers.column("risk_tolerance").to_pylist())
    assert set(risk) == {"C1", "C2", "C3", "C4", "C5"} and risk["C3"] == max(risk.values())
    expiry = customers.column("risk_assessment_expiry").to_pylist()
    expired = sum(day < NOW.date() for day in expiry)
    assert 0.03 * 3000 < expired < 0.25 * 3000
    margin = pc.filter(customers, customers.column("has_margin_account")).column("total_assets")
    assert len(margin) > 0 and pc.min(margin).as_py() >= 500_000
    ids = customers.column("id_number").to_pylist()
    assert all(len(i) == 18 for i in ids)

    items = demo.items.to_pylist()
    funds = [i for i in items if i["item_type"] == "fund"]
    assert len(funds) == 200 and {f["risk_level"] for f in funds} == {"R1", "R2", "R3", "R4", "R5"}
    assert all(f["risk_level"] == "R1" for f in funds if f["category"] == "货币")
    assert any(i["item_id"] == "margin_trading" for i in items)

    total = 0
    seen: Counter[str] = Counter()
    level_of = {f["item_id"]: int(f["risk_level"][1]) for f in funds}
    risk_of = {
        c: int(r[1])
        for c, r in zip(
            customers.column("distinct_id").to_pylist(),
            customers.column("risk_tolerance").to_pylist(),
            strict=True,
        )
    }
    for chunk in demo.event_chunks():
        total += chunk.num_rows
        table = chunk.events
        seen.update(table.column("event").to_pylist())
        times = table.column("time")
        assert pc.max(times).as_py() < NOW.replace(tzinfo=None)
        assert pc.min(times).as_py() >= (NOW - timedelta(days=90)).replace(tzinfo=None)
        buys = table.filter(pc.equal(table.column("event"), "BuyFund")).to_pylist()
        # 适当性: purchases never above the customer's risk level
        assert all(level_of[b["item_id"]] <= risk_of[b["distinct_id"]] for b in buys)
    assert set(EVENTS) <= set(seen)
    assert 25 * 3000 < total < 45 * 3000


def test_demo_loads_end_to_end(
    runtime: Runtime, client: TestClient, admin_headers: dict[str, str], clock: FrozenClock
) -> None:
    runtime.clock = clock
    summary = load_demo(runtime, project_id=1, customers=300, days=60, seed=7)
    assert summary.customers == 300 and summary.rejected == 0
    assert summary.events > 300 * 15

    answer = client.get(
        "/api/v1/users/lookup",
        params={"key": "$identity_login_id", "value": "cust-000007"},
        headers=admin_headers,
    )
    assert answer.status_code == 200, answer.text
    customer = answer.json()
    assert customer["properties"]["risk_tolerance"] in {"C1", "C2", "C3", "C4", "C5"}
    assert customer["properties"]["branch"].startswith("BR")
    user_id = customer["user_id"]
    mobile = runtime.warehouse.fetch("SELECT mobile FROM p1_users WHERE user_id = ?", [user_id])
    by_mobile = client.get(
        "/api/v1/users/lookup",
        params={"key": "$identity_mobile", "value": mobile[0][0]},
        headers=admin_headers,
    )
    assert by_mobile.status_code == 200 and by_mobile.json()["user_id"] == user_id
    holder = runtime.warehouse.fetch(
        "SELECT user_id FROM p1_users WHERE has_fund_account ORDER BY user_id LIMIT 1"
    )[0][0]
    account = client.get(f"/api/v1/users/{holder}", headers=admin_headers).json()
    fund_account = account["identities"]["fund_account"][0]
    by_account = client.get(
        "/api/v1/users/lookup",
        params={"key": "fund_account", "value": fund_account},
        headers=admin_headers,
    )
    assert by_account.json()["user_id"] == holder
    margin = runtime.warehouse.fetch(
        "SELECT user_id FROM p1_users WHERE has_margin_account ORDER BY user_id"
    )
    assert margin, "some customers have a margin (两融) account"
    for (uid,) in margin:
        held = client.get(f"/api/v1/users/{uid}", headers=admin_headers).json()["identities"]
        assert len(held["margin_account"]) == 1

    events = client.get(f"/api/v1/users/{user_id}/events", headers=admin_headers)
    assert events.status_code == 200
    assert events.json()["events"], "a generated customer has events"

    fund = runtime.warehouse.fetch(
        "SELECT item_id, risk_level FROM p1_items WHERE item_type = 'fund' ORDER BY item_id LIMIT 1"
    )[0]
    item = client.get(f"/api/v1/items/fund/{fund[0]}", headers=admin_headers)
    assert item.status_code == 200 and item.json()["properties"]["risk_level"] == fund[1]

    # Anonymous → login: the device's events before sign-up belong to the logged-in customer.
    signups = runtime.warehouse.fetch(
        "SELECT s.distinct_id, s.user_id, s.time, count(e.id), max(e.time) "
        "FROM p1_events s JOIN p1_events e ON e.user_id = s.user_id "
        "AND e.distinct_id <> s.distinct_id "
        "WHERE s.event = '$SignUp' GROUP BY ALL"
    )
    assert signups, "some customers signed up after browsing anonymously"
    for login, uid, signed_up, anonymous_events, last_anonymous in signups:
        assert anonymous_events > 0 and last_anonymous < signed_up
        lookup = client.get(
            "/api/v1/users/lookup",
            params={"key": "$identity_login_id", "value": login},
            headers=admin_headers,
        )
        assert lookup.json()["user_id"] == uid
    assert len(signups) == summary.signups

    with pytest.raises(Conflict):
        load_demo(runtime, project_id=1, customers=300)
    console = Console(file=StringIO())
    assert load_demo_if_empty(runtime, console=console) is None


def test_serve_demo_loads_an_empty_default_project(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flywheel.demo.service.DEFAULT_CUSTOMERS", 150)
    out = StringIO()
    summary = load_demo_if_empty(runtime, console=Console(file=out, width=200))
    assert summary is not None and summary.customers == 150
    assert "demo loaded: 150 customers" in out.getvalue()
    assert runtime.warehouse.fetch("SELECT count(*) FROM p1_users") == [(150,)]
    assert "risk-assessment renewal notice) published" in out.getvalue()

    # The demo journey runs for real: engine → outbox → gate → in-app slot.
    from flywheel.channels.dispatch import DispatcherLoop
    from flywheel.channels.models import Message
    from flywheel.journeys.engine import Engine
    from flywheel.segments import service as segments

    entered = Engine(runtime).run_once()
    with runtime.db.unit_of_work() as session:
        (segment,) = segments.list_segments(session=session, project_id=1)
    expected = runtime.warehouse.fetch(
        "SELECT count(*) FROM p1_users WHERE risk_assessment_expiry BETWEEN "
        "CAST(timezone('Asia/Shanghai', now()) AS DATE) AND "
        "CAST(timezone('Asia/Shanghai', now()) AS DATE) + 29"
    )[0][0]
    assert entered == expected == segment.size and expected > 0

    def dispatch_all() -> None:
        # On its own thread, as in `flywheel serve` (a thread with no running event loop).
        loop = DispatcherLoop(runtime)
        try:
            while loop.run_once():
                pass
        finally:
            loop.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(dispatch_all).result()
    with runtime.db.unit_of_work() as session:
        statuses = {m.status for m in session.query(Message)}
    assert statuses == {"delivered"}


def test_serve_demo_creates_console_accounts_once(runtime: Runtime, client: TestClient) -> None:
    from flywheel.demo.service import ensure_demo_accounts

    out = StringIO()
    password = ensure_demo_accounts(runtime, console=Console(file=out, width=300))
    assert password is not None and password in out.getvalue()
    advisor = client.post(
        "/api/v1/auth/login", json={"username": "advisor", "password": password}
    ).json()
    me = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {advisor['access_token']}"}
    ).json()
    assert (me["role"], me["advisor_id"], me["branch_scope"]) == ("advisor", "ADV0001", ["BR001"])
    # An installation with users is never touched again.
    assert ensure_demo_accounts(runtime, console=Console(file=StringIO())) is None
