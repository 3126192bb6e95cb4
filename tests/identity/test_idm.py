"""ID-Mapping through the ingest pipeline: merges, conflicts, rules, unbind."""

from __future__ import annotations

from sqlalchemy import select

from flywheel.identity import service as identity
from flywheel.identity.models import IdentityConflict
from flywheel.identity.schemas import KeyRule
from flywheel.runtime import Runtime
from tests.identity.factory import all_events, apply, events_of, rec

LOGIN = "$identity_login_id"
ANON = "$identity_anonymous_id"


def user_of(runtime: Runtime, key: str, value: str) -> int | None:
    with runtime.db.unit_of_work() as session:
        return identity.find_user_id(session=session, project_id=1, key=key, value=value)


def conflicts(runtime: Runtime) -> list[IdentityConflict]:
    with runtime.db.unit_of_work() as session:
        return list(session.scalars(select(IdentityConflict).order_by(IdentityConflict.id)))


def test_anonymous_then_login_merges_and_keeps_history(runtime: Runtime) -> None:
    apply(
        runtime,
        rec(event="$AppStart", distinct_id="dev-1", anonymous_id="dev-1"),
        rec(event="ViewFundDetail", distinct_id="dev-1", anonymous_id="dev-1"),
    )
    anon_user = user_of(runtime, ANON, "dev-1")
    assert anon_user is not None
    # IDM 2 sign-up: distinct_id = login id, original_id = the anonymous id
    apply(runtime, rec("track_signup", event="$SignUp", distinct_id="u1", original_id="dev-1"))
    assert user_of(runtime, LOGIN, "u1") == anon_user
    apply(
        runtime, rec(event="BuyFund", distinct_id="u1", login_id="u1", properties={"amount": 1000})
    )
    events = events_of(runtime, anon_user)
    assert [e["event"] for e in events] == ["$AppStart", "ViewFundDetail", "$SignUp", "BuyFund"]
    assert {e["user_id"] for e in all_events(runtime)} == {anon_user}


def test_idm3_identities_bind_custom_account_keys(runtime: Runtime) -> None:
    apply(
        runtime,
        rec(identities={ANON: "dev-2"}),
        rec(identities={LOGIN: "u2", ANON: "dev-2", "fund_account": "F100", "cust_no": "C9"}),
    )
    user = user_of(runtime, ANON, "dev-2")
    assert user is not None
    assert user_of(runtime, "fund_account", "F100") == user
    with runtime.db.unit_of_work() as session:
        ids = identity.user_identities(session=session, project_id=1, user_id=user)
    assert ids == {ANON: ["dev-2"], LOGIN: ["u2"], "fund_account": ["F100"], "cust_no": ["C9"]}


def test_device_of_another_login_is_refused_and_event_kept(runtime: Runtime) -> None:
    apply(runtime, rec(identities={LOGIN: "alice", ANON: "shared-pad"}))
    alice = user_of(runtime, LOGIN, "alice")
    # bob logs in on alice's device: the device cannot join bob, and bob cannot join alice
    result = apply(runtime, rec(event="BuyFund", identities={LOGIN: "bob", ANON: "shared-pad"}))
    assert result.accepted == 1 and result.conflicts == 1
    bob = user_of(runtime, LOGIN, "bob")
    assert bob is not None and bob != alice
    assert user_of(runtime, ANON, "shared-pad") == alice
    assert [e["event"] for e in events_of(runtime, bob)] == ["BuyFund"]
    (conflict,) = conflicts(runtime)
    assert (conflict.key, conflict.user_id, conflict.other_user_id) == (ANON, bob, alice)
    assert f"already bound to user {alice}" in conflict.reason
    # the same clash again bumps the count instead of piling rows up
    apply(runtime, rec(identities={LOGIN: "bob", ANON: "shared-pad"}))
    (again,) = conflicts(runtime)
    assert again.occurrences == 2


def test_second_login_for_a_user_is_refused(runtime: Runtime) -> None:
    apply(runtime, rec(identities={LOGIN: "carol", "fund_account": "F1"}))
    carol = user_of(runtime, LOGIN, "carol")
    # fund account F1 (one value key) arrives with another login: the login would be a second
    # login id of carol's user → refused; the event goes to the strongest id's (new) user.
    apply(runtime, rec(identities={LOGIN: "carol2", "fund_account": "F1"}))
    other = user_of(runtime, LOGIN, "carol2")
    assert other is not None and other != carol
    reasons = [c.reason for c in conflicts(runtime)]
    assert any("fund_account is already bound" in r for r in reasons)
    # a second fund account for carol (one value per user) is refused too
    apply(runtime, rec(identities={LOGIN: "carol", "fund_account": "F2"}))
    assert user_of(runtime, "fund_account", "F2") is None
    assert any("one value per user" in c.reason and c.user_id == carol for c in conflicts(runtime))


def test_many_value_key_limit_refuse_and_replace_oldest(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        identity.set_key_rules(
            session=session,
            project_id=1,
            rules=[
                KeyRule(key=LOGIN, priority=1),
                KeyRule(key="$identity_mobile", priority=5, multi=True, value_limit=2),
                KeyRule(key=ANON, priority=9, multi=True, value_limit=2, overflow="replace_oldest"),
            ],
        )
    apply(
        runtime,
        rec(identities={LOGIN: "dan", "$identity_mobile": "13800000001", ANON: "d1"}),
        rec(identities={LOGIN: "dan", "$identity_mobile": "13800000002", ANON: "d2"}),
        rec(identities={LOGIN: "dan", "$identity_mobile": "13800000003", ANON: "d3"}),
    )
    dan = user_of(runtime, LOGIN, "dan")
    with runtime.db.unit_of_work() as session:
        ids = identity.user_identities(session=session, project_id=1, user_id=dan or 0)
    assert ids["$identity_mobile"] == ["13800000001", "13800000002"]  # refuse: third not bound
    assert ids[ANON] == ["d2", "d3"]  # replace oldest: d1 dropped
    assert user_of(runtime, ANON, "d1") is None
    assert any("limit reached" in c.reason for c in conflicts(runtime))


def test_disabled_key_is_ignored_and_record_without_identity_rejected(runtime: Runtime) -> None:
    with runtime.db.unit_of_work() as session:
        identity.set_key_rules(
            session=session,
            project_id=1,
            rules=[
                KeyRule(key=LOGIN, priority=1),
                KeyRule(key="openid", priority=2, enabled=False),
            ],
        )
    result = apply(
        runtime, rec(identities={"openid": "o1"}), rec(identities={"openid": "o2", LOGIN: "e1"})
    )
    assert result.accepted == 1
    assert "no identity" in result.rejected[0][0]
    assert user_of(runtime, "openid", "o2") is None
    assert user_of(runtime, LOGIN, "e1") is not None


def test_unbind_makes_the_id_start_a_new_customer(runtime: Runtime) -> None:
    apply(runtime, rec(identities={LOGIN: "erin", ANON: "phone"}))
    erin = user_of(runtime, LOGIN, "erin")
    assert user_of(runtime, ANON, "phone") == erin  # cached now
    apply(runtime, rec("track_id_unbind", event="$UnbindID", identities={ANON: "phone"}))
    assert user_of(runtime, ANON, "phone") is None
    assert [e["event"] for e in events_of(runtime, erin or 0)][-1] == "$UnbindID"
    apply(runtime, rec(event="$AppStart", identities={ANON: "phone"}))
    stranger = user_of(runtime, ANON, "phone")
    assert stranger is not None and stranger != erin


def test_unbind_then_rebind_in_one_batch(runtime: Runtime) -> None:
    apply(runtime, rec(identities={LOGIN: "fay", ANON: "tab"}))
    fay = user_of(runtime, LOGIN, "fay")
    apply(
        runtime,
        rec("track_id_unbind", identities={ANON: "tab"}),
        rec(identities={LOGIN: "gus", ANON: "tab"}),
    )
    gus = user_of(runtime, LOGIN, "gus")
    assert gus != fay
    assert user_of(runtime, ANON, "tab") == gus


def test_bind_api_service_refuses_conflicts(runtime: Runtime) -> None:
    now = runtime.clock()
    with runtime.db.unit_of_work() as session:
        first = identity.bind(
            session=session, project_id=1, identities={LOGIN: "h1", "cust_no": "C1"}, now=now
        )
        assert first.conflicts == []
        second = identity.bind(
            session=session, project_id=1, identities={LOGIN: "h1", "cust_no": "C2"}, now=now
        )
        assert second.user_id == first.user_id
        assert second.conflicts and "one value per user" in second.conflicts[0]


def test_rolled_back_batch_leaves_no_cached_identity(runtime: Runtime) -> None:
    try:
        with runtime.db.unit_of_work() as session:
            found = identity.resolve_many(
                session=session, project_id=1, key=LOGIN, values=["ghost"]
            )
            assert (
                identity.find_user_id(session=session, project_id=1, key=LOGIN, value="ghost")
                == found["ghost"]
            )
            raise RuntimeError("crash")
    except RuntimeError:
        pass
    assert user_of(runtime, LOGIN, "ghost") is None
