"""apply_records: the one processing path (typed warehouse rows, rejections, mirrors)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from flywheel.ingest.models import Rejection
from flywheel.ingest.pipeline import apply_records, identities_of
from flywheel.ingest.records import IngestRecord
from flywheel.runtime import Runtime
from tests.identity.factory import all_events, apply, rec


def test_events_land_typed_with_receive_time(runtime: Runtime) -> None:
    moment = datetime(2026, 10, 31, 23, 59, 58, 500000, tzinfo=UTC)
    result = apply(
        runtime,
        rec(
            event="CreateAutoInvestPlan",
            login_id="p1",
            time=moment,
            properties={
                "amount": 1000,
                "period": "monthly",
                "margin_eligible": True,
                "first_payment": "2026-11-05",
                "confirmed_at": "2026-11-01 08:00:00.250",
                "funds": ["F1", "F2"],
            },
        ),
    )
    assert result.accepted == 1 and result.events == 1
    (event,) = all_events(runtime)
    assert event["event"] == "CreateAutoInvestPlan"
    assert event["time"] == datetime(2026, 10, 31, 23, 59, 58, 500000)
    assert event["distinct_id"] == "p1"
    assert event["amount"] == 1000.0
    assert event["margin_eligible"] is True
    assert event["first_payment"] == date(2026, 11, 5)
    assert event["confirmed_at"] == datetime(2026, 11, 1, 0, 0, 0, 250000)
    assert event["funds"] == ["F1", "F2"]
    assert event["$receive_time"] is not None
    types = dict(
        runtime.warehouse.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'p1_events'"
        )
    )
    assert types["amount"] == "DOUBLE" and types["funds"] == "VARCHAR[]"


def test_duplicate_event_ids_in_one_batch_are_kept_once(runtime: Runtime) -> None:
    first = rec(login_id="p2", event="Deposit", properties={"amount": 1})
    result = apply(runtime, first, first, rec(login_id="p2", event="Deposit"))
    assert result.accepted == 3
    assert len(all_events(runtime)) == 2


def test_rejections_are_kept_with_source_and_raw(runtime: Runtime) -> None:
    bad = rec("item_set", item_type="fund", properties={"risk_level": "R1"})
    anonymous = IngestRecord(type="track", time=datetime.now(UTC), event_id="x1", event="A")
    result = apply_records(runtime, project_id=1, records=[bad, anonymous], source="import")
    assert result.accepted == 0
    with runtime.db.unit_of_work() as session:
        rows = session.scalars(select(Rejection).order_by(Rejection.id)).all()
    assert [r.source for r in rows] == ["import", "import"]
    assert rows[0].reason == "item_set needs item_type and item_id"
    assert "no identity" in rows[1].reason
    assert '"event_id":"x1"' in rows[1].raw


def test_profile_set_later_batch_clears_unset_columns(runtime: Runtime) -> None:
    apply(runtime, rec("profile_set", login_id="p3", properties={"city": "北京", "vip": True}))
    apply(runtime, rec("profile_unset", login_id="p3", properties={"city": True}))
    (row,) = runtime.warehouse.fetch_dicts('SELECT * FROM "p1_users"')
    assert row["city"] is None and row["vip"] is True


def test_identities_of_idm2_and_idm3() -> None:
    now = datetime.now(UTC)
    idm2 = IngestRecord(
        type="track", time=now, event_id="a", distinct_id="u1", login_id="u1", anonymous_id="d1"
    )
    assert identities_of(idm2) == {"$identity_login_id": "u1", "$identity_anonymous_id": "d1"}
    signup = IngestRecord(
        type="track_signup", time=now, event_id="b", distinct_id="u1", original_id="d1"
    )
    assert identities_of(signup) == {"$identity_login_id": "u1", "$identity_anonymous_id": "d1"}
    bare = IngestRecord(type="track", time=now, event_id="c", distinct_id="d9")
    assert identities_of(bare) == {"$identity_anonymous_id": "d9"}
    idm3 = IngestRecord(
        type="track",
        time=now,
        event_id="d",
        distinct_id="d1",
        identities={"$identity_mobile": "138", "cust_no": "C1"},
    )
    assert identities_of(idm3) == {"$identity_mobile": "138", "cust_no": "C1"}
    unbind = IngestRecord(
        type="track_id_unbind",
        time=now,
        event_id="e",
        login_id="u1",
        identities={"$identity_anonymous_id": "d1"},
    )
    assert identities_of(unbind) == {"$identity_anonymous_id": "d1"}


def test_big_batch_of_new_customers(runtime: Runtime) -> None:
    records = [
        rec(event="ViewFundDetail", anonymous_id=f"dev{i}", properties={"item_id": f"F{i % 50}"})
        for i in range(6000)
    ]
    result = apply(runtime, *records)
    assert result.accepted == 6000 and result.new_users == 6000
    assert runtime.warehouse.fetch('SELECT count(DISTINCT user_id) FROM "p1_events"')[0][0] == 6000
    again = apply(runtime, *records)
    assert again.new_users == 0
    assert runtime.warehouse.fetch('SELECT count(*) FROM "p1_events"')[0][0] == 6000


def test_huge_integers_become_doubles(runtime: Runtime) -> None:
    apply(runtime, rec(event="AssetChange", login_id="p4", properties={"total_assets": 10**17}))
    (event,) = all_events(runtime)
    assert event["total_assets"] == 1e17


def test_profile_rows_with_lists_are_replaced_across_batches(runtime: Runtime) -> None:
    apply(runtime, rec("profile_append", login_id="p5", properties={"funds": ["F1"]}))
    apply(runtime, rec("profile_append", login_id="p5", properties={"funds": ["F2"]}))
    apply(runtime, rec("profile_set", login_id="p5", properties={"city": "深圳"}))
    (row,) = runtime.warehouse.fetch_dicts('SELECT * FROM "p1_users"')
    assert row["funds"] == ["F1", "F2"] and row["city"] == "深圳"
