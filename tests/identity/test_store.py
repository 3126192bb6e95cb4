"""Identity graph, profiles and the pipeline on both operational stores (SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flywheel.config import Settings
from flywheel.identity import service as identity
from flywheel.identity.models import Identity, IdentityConflict
from flywheel.ingest import service as ingest_service
from flywheel.ingest.tasks import IngestProcessor
from flywheel.migrations import upgrade
from flywheel.profiles import service as profiles
from flywheel.projects import service as projects
from flywheel.runtime import Runtime
from flywheel.store import create_database
from flywheel.warehouse import open_warehouse
from tests.identity.factory import all_events, apply, rec

LOGIN = "$identity_login_id"
ANON = "$identity_anonymous_id"


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    db = create_database(database_url)
    upgrade(db.engine)
    with db.unit_of_work() as session:
        project_id = projects.ensure_default(session=session).id
    assert project_id == 1
    warehouse = open_warehouse("duckdb:///:memory:")
    runtime = Runtime(settings=Settings(env="test", data_dir=tmp_path), db=db, warehouse=warehouse)
    yield runtime
    runtime.close()


def test_resolve_many_creates_once_and_finds_again(store: Runtime) -> None:
    values = [f"C{i:05d}" for i in range(3000)]
    with store.db.unit_of_work() as session:
        assert (
            identity.resolve_many(
                session=session, project_id=1, key="cust_no", values=values[:10], create=False
            )
            == {}
        )
        created = identity.resolve_many(session=session, project_id=1, key="cust_no", values=values)
    assert len(created) == 3000 and len(set(created.values())) == 3000
    identity.cache_for_engine(store.db.engine).clear()
    with store.db.unit_of_work() as session:
        again = identity.resolve_many(
            session=session, project_id=1, key="cust_no", values=[*values, "NEW"], create=False
        )
        assert again == created
        assert (
            identity.find_user_id(session=session, project_id=1, key="cust_no", value="C00042")
            == created["C00042"]
        )
        assert session.scalar(select(func.count()).select_from(Identity)) == 3000


def test_pipeline_merge_conflict_and_profiles(store: Runtime) -> None:
    apply(
        store,
        rec(event="$AppStart", anonymous_id="d1"),
        rec(identities={LOGIN: "u1", ANON: "d1"}),
        rec(identities={LOGIN: "u2", ANON: "d1"}),
        rec("profile_set", login_id="u1", properties={"branch": "BR001", "score": 1}),
        rec("profile_increment", login_id="u1", properties={"score": 4}),
        rec("profile_append", login_id="u1", properties={"funds": ["F1"]}),
        rec("item_set", item_type="fund", item_id="F1", properties={"risk_level": "R2"}),
    )
    # a second batch repeats the conflict: one row, two occurrences
    apply(store, rec(identities={LOGIN: "u2", ANON: "d1"}))
    with store.db.unit_of_work() as session:
        u1 = identity.find_user_id(session=session, project_id=1, key=LOGIN, value="u1")
        u2 = identity.find_user_id(session=session, project_id=1, key=LOGIN, value="u2")
        assert identity.find_user_id(session=session, project_id=1, key=ANON, value="d1") == u1
        (conflict,) = session.scalars(select(IdentityConflict)).all()
        assert (conflict.user_id, conflict.other_user_id, conflict.occurrences) == (u2, u1, 2)
        assert profiles.get_profile(session=session, project_id=1, user_id=u1 or 0) == {
            "branch": "BR001",
            "score": 5,
            "funds": ["F1"],
        }
        assert profiles.get_item(session=session, project_id=1, item_type="fund", item_id="F1") == {
            "risk_level": "R2"
        }
    users = [e["user_id"] for e in all_events(store)]
    assert users == [u1, u1, u2, u2]


def test_unbind_and_key_rules_round_trip(store: Runtime) -> None:
    now = store.clock()
    with store.db.unit_of_work() as session:
        rules = identity.key_rules(session=session, project_id=1)
        identity.set_key_rules(
            session=session,
            project_id=1,
            rules=[*rules.values(), identity.KeyRule(key="wecom_id", priority=65)],
        )
        result = identity.bind(
            session=session, project_id=1, identities={LOGIN: "v1", "wecom_id": "w1"}, now=now
        )
    with store.db.unit_of_work() as session:
        assert "wecom_id" in identity.key_rules(session=session, project_id=1)
        assert identity.unbind(session=session, project_id=1, key="wecom_id", value="w1") == (
            result.user_id
        )
    with store.db.unit_of_work() as session:
        assert (
            identity.find_user_id(session=session, project_id=1, key="wecom_id", value="w1") is None
        )
        assert identity.user_identities(session=session, project_id=1, user_id=result.user_id) == {
            LOGIN: ["v1"]
        }


def test_processor_on_both_stores(store: Runtime) -> None:
    records = [
        rec(event="Deposit", login_id=f"q{i % 7}", properties={"amount": i}) for i in range(40)
    ]
    with store.db.unit_of_work() as session:
        ingest_service.enqueue(session=session, project_id=1, records=records, source="sensors")
        ingest_service.enqueue(session=session, project_id=1, records=records[:5], source="sensors")
    processor = IngestProcessor(store)
    processor.batch_size = 30
    assert processor.run_once() == 30
    assert processor.run_once() == 15
    assert processor.run_once() == 0
    events = all_events(store)
    assert len(events) == 40 and len({e["user_id"] for e in events}) == 7
