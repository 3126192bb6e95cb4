"""Profile operations (Sensors semantics), type inference and conflicts, items."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.profiles.service import TypeMismatch, apply_profile_operation, infer_type, normalize
from flywheel.runtime import Runtime
from flywheel.warehouse.engine import PropertyType, TableKind
from tests.identity.factory import apply, rec

LOGIN = "$identity_login_id"


def uid(runtime: Runtime, login: str) -> int:
    with runtime.db.unit_of_work() as session:
        found = identity.find_user_id(session=session, project_id=1, key=LOGIN, value=login)
    assert found is not None
    return found


def profile(runtime: Runtime, login: str) -> dict[str, Any] | None:
    with runtime.db.unit_of_work() as session:
        return profiles.get_profile(session=session, project_id=1, user_id=uid(runtime, login))


def warehouse_user(runtime: Runtime, user_id: int) -> dict[str, Any] | None:
    rows = runtime.warehouse.fetch_dicts('SELECT * FROM "p1_users" WHERE user_id = ?', [user_id])
    return rows[0] if rows else None


def test_every_profile_operation(runtime: Runtime) -> None:
    who = {"login_id": "p1"}
    apply(
        runtime,
        rec("profile_set", **who, properties={"name": "张三", "branch": "BR001", "logins": 1}),
        rec("profile_set_once", **who, properties={"branch": "BR999", "channel": "app"}),
        rec("profile_increment", **who, properties={"logins": 2, "total_assets": 1500.5}),
        rec("profile_append", **who, properties={"interests": ["fund", "stock"]}),
        rec("profile_append", **who, properties={"interests": ["stock", "bond"]}),
        rec("profile_unset", **who, properties={"name": True}),
    )
    assert profile(runtime, "p1") == {
        "branch": "BR001",
        "logins": 3,
        "channel": "app",
        "total_assets": 1500.5,
        "interests": ["fund", "stock", "bond"],
    }
    row = warehouse_user(runtime, uid(runtime, "p1"))
    assert row is not None
    assert row["branch"] == "BR001" and row["logins"] == 3.0 and row.get("name") is None
    assert row["interests"] == ["fund", "stock", "bond"]
    apply(runtime, rec("profile_delete", **who))
    assert profile(runtime, "p1") is None
    assert warehouse_user(runtime, uid(runtime, "p1")) is None
    # a later set starts a fresh profile for the same (stable) user id
    apply(runtime, rec("profile_set", **who, properties={"city": "上海"}))
    assert profile(runtime, "p1") == {"city": "上海"}
    assert warehouse_user(runtime, uid(runtime, "p1")) is not None


def test_types_inferred_and_conflicts_rejected_alone(runtime: Runtime) -> None:
    result = apply(
        runtime,
        rec(
            "profile_set",
            login_id="t1",
            properties={
                "total_assets": 10,
                "birthday": "1990-05-01",
                "has_margin_account": False,
                "last_login": "2026-11-01 09:30:00.123",
                "tags": ["a"],
            },
        ),
        rec(event="BuyFund", login_id="t1", properties={"amount": 100}),
        rec(event="BuyFund", login_id="t1", properties={"amount": "abc"}),
        rec("profile_set", login_id="t1", properties={"total_assets": "lots"}),
        rec("profile_increment", login_id="t1", properties={"has_margin_account": 1}),
    )
    assert result.accepted == 2
    reasons = [r for r, _ in result.rejected]
    assert reasons[0] == "property amount is NUMBER; got STRING 'abc'"
    assert reasons[1] == "property total_assets is NUMBER; got STRING 'lots'"
    assert "has_margin_account is BOOL" in reasons[2]
    with runtime.db.unit_of_work() as session:
        schema = profiles.load_schema(session=session, project_id=1)
        rejections = (
            session.execute(__import__("sqlalchemy").text("SELECT reason FROM ingest_rejections"))
            .scalars()
            .all()
        )
    assert set(reasons) <= set(rejections)
    assert schema[TableKind.USERS] == {
        "total_assets": PropertyType.NUMBER,
        "birthday": PropertyType.DATE,
        "has_margin_account": PropertyType.BOOL,
        "last_login": PropertyType.DATETIME,
        "tags": PropertyType.LIST,
    }
    row = warehouse_user(runtime, uid(runtime, "t1"))
    assert row is not None
    assert row["birthday"] == date(1990, 5, 1)
    # Sensors sends local (Asia/Shanghai) time; the warehouse keeps UTC
    assert row["last_login"] == datetime(2026, 11, 1, 1, 30, 0, 123000)


def test_schema_api_lists_events_and_properties(
    runtime: Runtime, client: Any, admin_headers: dict[str, str]
) -> None:
    apply(
        runtime,
        rec(event="BuyFund", login_id="s1", properties={"amount": 5, "item_id": "F1"}),
        rec(event="Search", login_id="s1", properties={"keyword": "白酒"}),
        rec("profile_set", login_id="s1", properties={"risk_tolerance": "C3"}),
        rec("item_set", item_type="fund", item_id="F1", properties={"risk_level": "R2"}),
    )
    schema = client.get("/api/v1/schema", headers=admin_headers).json()
    events = {e["name"]: {p["name"]: p["type"] for p in e["properties"]} for e in schema["events"]}
    assert events["BuyFund"] == {"amount": "NUMBER", "item_id": "STRING"}
    assert events["Search"] == {"keyword": "STRING"}
    assert schema["profile_properties"] == [{"name": "risk_tolerance", "type": "STRING"}]
    assert schema["item_properties"] == [{"name": "risk_level", "type": "STRING"}]


def test_items_set_replace_and_delete(runtime: Runtime) -> None:
    apply(
        runtime,
        rec(
            "item_set",
            item_type="fund",
            item_id="000001",
            properties={
                "name": "华夏成长",
                "risk_level": "R3",
                "min_purchase": 10,
                "on_sale": True,
                "launch_date": "2001-12-18",
            },
        ),
        rec("item_set", item_type="fund", item_id="000002", properties={"risk_level": "R1"}),
    )
    with runtime.db.unit_of_work() as session:
        item = profiles.get_item(session=session, project_id=1, item_type="fund", item_id="000001")
    assert item is not None and item["risk_level"] == "R3"
    apply(
        runtime,
        rec("item_set", item_type="fund", item_id="000001", properties={"risk_level": "R4"}),
        rec("item_delete", item_type="fund", item_id="000002"),
        rec("item_set", item_type="fund", properties={"risk_level": "R4"}),
    )
    with runtime.db.unit_of_work() as session:
        assert profiles.get_item(
            session=session, project_id=1, item_type="fund", item_id="000001"
        ) == {"risk_level": "R4"}
        assert (
            profiles.get_item(session=session, project_id=1, item_type="fund", item_id="000002")
            is None
        )
    rows = runtime.warehouse.fetch_dicts(
        'SELECT item_id, risk_level, "$is_deleted" AS deleted FROM "p1_items" ORDER BY item_id'
    )
    assert [(r["item_id"], r["risk_level"], r["deleted"]) for r in rows] == [
        ("000001", "R4", False),
        ("000002", None, True),
    ]


def test_infer_type_and_normalize() -> None:
    assert infer_type(True) is PropertyType.BOOL
    assert infer_type(3) is PropertyType.NUMBER
    assert infer_type(2.5) is PropertyType.NUMBER
    assert infer_type(["a"]) is PropertyType.LIST
    assert infer_type("2026-01-02") is PropertyType.DATE
    assert infer_type("2026-01-02 03:04:05") is PropertyType.DATETIME
    assert infer_type("2026-01-02 03:04:05.678") is PropertyType.DATETIME
    assert infer_type("2026/01/02") is PropertyType.STRING
    with pytest.raises(TypeMismatch):
        infer_type({"a": 1})
    assert normalize("d", PropertyType.DATE, "2026-01-02 10:00:00") == "2026-01-02"
    assert normalize("t", PropertyType.DATETIME, "2026-01-02") == "2026-01-01T16:00:00.000000Z"
    with pytest.raises(TypeMismatch, match="property flag is BOOL; got NUMBER 1"):
        normalize("flag", PropertyType.BOOL, 1)
    with pytest.raises(TypeMismatch):
        normalize("n", PropertyType.NUMBER, True)
    with pytest.raises(TypeMismatch):
        normalize("d", PropertyType.DATE, "2026-13-45")


_values = st.one_of(st.integers(-1000, 1000), st.text(max_size=5))
_props = st.dictionaries(st.sampled_from(["a", "b", "c"]), _values, max_size=3)
_profiles = st.one_of(st.none(), _props)


@given(_profiles, _props)
def test_set_overwrites_and_set_once_keeps(
    current: dict[str, Any] | None, new: dict[str, Any]
) -> None:
    after_set = apply_profile_operation(current, "profile_set", new)
    after_once = apply_profile_operation(current, "profile_set_once", new)
    assert after_set is not None and after_once is not None
    for name, value in new.items():
        assert after_set[name] == value
        assert after_once[name] == (current or {}).get(name, value)
    assert set(after_set) == set(after_once) == set(current or {}) | set(new)


@given(st.lists(st.integers(-100, 100), max_size=6))
def test_increments_add_up_from_zero(steps: list[int]) -> None:
    profile: dict[str, Any] | None = None
    for step in steps:
        profile = apply_profile_operation(profile, "profile_increment", {"n": step})
    assert (profile or {}).get("n", 0) == sum(steps)


@given(st.lists(st.lists(st.sampled_from("abcde"), max_size=4), max_size=5))
def test_append_is_an_ordered_union(batches: list[list[str]]) -> None:
    profile: dict[str, Any] | None = None
    for values in batches:
        profile = apply_profile_operation(profile, "profile_append", {"l": values})
    merged = (profile or {}).get("l", [])
    assert len(merged) == len(set(merged))
    assert merged == list(dict.fromkeys(v for values in batches for v in values))


@given(_profiles, st.lists(st.sampled_from(["a", "b", "c"])))
def test_unset_removes_only_named(current: dict[str, Any] | None, names: list[str]) -> None:
    after = apply_profile_operation(current, "profile_unset", dict.fromkeys(names))
    assert after == {k: v for k, v in (current or {}).items() if k not in names}
    assert apply_profile_operation(current, "profile_delete", {}) is None
