"""The compliance gate: every reason, quiet hours, caps across journeys, service notices,
suitability — through the dispatcher and through ``evaluate`` directly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.compliance import service as compliance
from flywheel.compliance.models import OptOut
from flywheel.compliance.schemas import (
    Candidate,
    Cap,
    ComplianceSettingsIn,
    ConsentIn,
    ListEntryIn,
    OptOutIn,
    QuietHours,
    Reason,
    Verdict,
)
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h

VALID = {"risk_tolerance": "C3", "risk_assessment_expiry": "2027-06-30"}
EXPIRED = {"risk_tolerance": "C5", "risk_assessment_expiry": "2026-01-31"}


@pytest.fixture
def sink() -> Iterator[h.Sink]:
    server = h.Sink()
    yield server
    server.close()


def _put(runtime: Runtime, clock: FrozenClock, **changes: object) -> None:
    with runtime.db.unit_of_work() as session:
        compliance.put_settings(
            session=session,
            project_id=h.project_id(runtime),
            settings_in=ComplianceSettingsIn().model_copy(update=changes),
            actor="user:test",
            now=clock(),
        )


def test_every_block_reason(runtime: Runtime, clock: FrozenClock, sink: h.Sink) -> None:
    names = ["opted", "black", "consentless", "r4", "expired", "none", "ok", "bymobile"]
    people = [{"name": n, **VALID} for n in names]
    people[4] = {"name": "expired", **EXPIRED}
    people[5] = {"name": "none"}
    users = dict(zip(names, h.customers(runtime, people, clock()), strict=True))
    pid = h.project_id(runtime)
    with runtime.db.unit_of_work() as session:
        compliance.opt_out(
            session=session,
            project_id=pid,
            user_id=users["opted"],
            opt_out_in=OptOutIn(channel="*", purpose="*"),
            actor="user:t",
            now=clock(),
        )
        compliance.add_entry(
            session=session,
            project_id=pid,
            entry_in=ListEntryIn(kind="black", key="user_id", value=str(users["black"])),
            actor="user:t",
            now=clock(),
        )
        for name in names:
            if name != "consentless":
                compliance.set_consent(
                    session=session,
                    project_id=pid,
                    user_id=users[name],
                    consent_in=ConsentIn(channel="webhook"),
                    actor="user:t",
                    now=clock(),
                )
    _put(runtime, clock, consent_required=["webhook"])
    config = {"url": sink.url, "secret": h.SECRET}
    r2 = h.spec(runtime, "gate:r2", config=config, product_risk_level=2)
    r4 = h.spec(runtime, "gate:r4", config=config, product_risk_level=4)
    bad = h.spec(runtime, "gate:claim", config=config, template={"text": "保本保息，稳赚不赔"})
    plain = [users[n] for n in names if n not in ("r4", "ok")]
    h.enqueue(runtime, r2, plain, clock())
    h.enqueue(runtime, r4, [users["r4"]], clock(), node_id="r4")
    h.enqueue(runtime, bad, [users["ok"]], clock(), node_id="claim")
    h.enqueue(
        runtime,
        r2,
        [users["ok"]],
        clock(),
        node_id="recs",
        context={"recommendations": [{"item_id": "X", "item_type": "fund", "risk_level": "R5"}]},
    )
    with h.dispatcher(runtime, clock) as d:
        d.run_until_idle()
    got = {(m.user_id, m.node_id): (m.status, m.reason) for m in h.by_key(runtime).values()}
    assert got[(users["opted"], "send")] == ("blocked", "opted_out")
    assert got[(users["black"], "send")] == ("blocked", "blacklisted")
    assert got[(users["consentless"], "send")] == ("blocked", "no_consent")
    assert got[(users["r4"], "r4")] == ("blocked", "unsuitable_product")
    assert got[(users["expired"], "send")] == ("blocked", "assessment_expired")
    assert got[(users["none"], "send")] == ("blocked", "no_assessment")
    assert got[(users["ok"], "claim")] == ("blocked", "prohibited_claims")
    assert got[(users["ok"], "recs")] == ("blocked", "unsuitable_product")
    assert got[(users["bymobile"], "send")] == ("delivered", None)
    assert len(sink.received) == 1


def test_identity_blacklist_and_whitelist_only(runtime: Runtime, clock: FrozenClock) -> None:
    a, b, c = h.customers(runtime, [{"name": "a"}, {"name": "b"}, {"name": "c"}], clock())
    pid = h.project_id(runtime)
    with runtime.db.unit_of_work() as session:
        from flywheel.identity.models import Identity

        session.add(
            Identity(
                project_id=pid,
                user_id=a,
                key="$identity_mobile",
                value="13800001111",
                bound_at=clock().replace(tzinfo=None),
            )
        )
        session.flush()
        compliance.add_entry(
            session=session,
            project_id=pid,
            entry_in=ListEntryIn(
                kind="black", key="$identity_mobile", value="13800001111", channel="sms"
            ),
            actor="user:t",
            now=clock(),
        )
        compliance.add_entry(
            session=session,
            project_id=pid,
            entry_in=ListEntryIn(kind="white", key="user_id", value=str(b)),
            actor="user:t",
            now=clock(),
        )
        cands = [
            Candidate(ref=i, user_id=u, channel=ch, purpose="service")
            for i, (u, ch) in enumerate([(a, "sms"), (a, "webhook"), (b, "sms"), (c, "sms")])
        ]
        open_ = compliance.evaluate(session=session, project_id=pid, candidates=cands, now=clock())
        strict = compliance.evaluate(
            session=session,
            project_id=pid,
            candidates=cands,
            now=clock(),
            settings=ComplianceSettingsIn(whitelist_only=True),
        )
    assert [d.reason for d in open_] == [Reason.BLACKLISTED, None, None, None]
    assert [d.reason for d in strict] == [
        Reason.BLACKLISTED,
        Reason.NOT_WHITELISTED,
        None,
        Reason.NOT_WHITELISTED,
    ]


def test_quiet_hours_defer_then_release_and_service_not_held(
    runtime: Runtime, sink: h.Sink
) -> None:
    clock = FrozenClock(datetime(2026, 11, 2, 14, 30, tzinfo=UTC))  # 22:30 in Shanghai
    m_user, s_user = h.customers(runtime, [{"name": "m"}, {"name": "s"}], clock())
    config = {"url": sink.url, "secret": h.SECRET}
    marketing = h.spec(runtime, "q:m", config=config)
    service = h.spec(runtime, "q:s", purpose="service", config=config)
    h.enqueue(runtime, marketing, [m_user], clock())
    h.enqueue(runtime, service, [s_user], clock(), purpose="service", node_id="svc")
    with h.dispatcher(runtime, clock) as d:
        d.run_until_idle()
        got = h.messages(runtime)
        assert got[s_user].status == "delivered"
        assert (got[m_user].status, got[m_user].reason) == ("prepared", "quiet_hours")
        assert got[m_user].due_at == datetime(2026, 11, 3, 0, 0)  # 08:00 Shanghai
        assert got[m_user].attempts == 0
        clock.set(datetime(2026, 11, 2, 23, 59, tzinfo=UTC))
        assert d.run_once() == 0
        clock.set(datetime(2026, 11, 3, 0, 0, tzinfo=UTC))
        assert d.run_once() == 1
    assert h.messages(runtime)[m_user].status == "delivered"
    assert len(sink.received) == 2


def test_quiet_window_arithmetic() -> None:
    config = ComplianceSettingsIn(quiet_hours=QuietHours(start="12:00", end="13:30"))
    noon = datetime(2026, 11, 2, 4, 10, tzinfo=UTC)  # 12:10 Shanghai
    assert compliance.quiet_until(config, noon) == datetime(2026, 11, 2, 5, 30, tzinfo=UTC)
    assert compliance.quiet_until(config, noon + timedelta(hours=2)) is None
    default = ComplianceSettingsIn()
    early = datetime(2026, 11, 1, 22, 0, tzinfo=UTC)  # 06:00 Shanghai
    assert compliance.quiet_until(default, early) == datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
    off = ComplianceSettingsIn(quiet_hours=QuietHours(enabled=False))
    assert compliance.quiet_until(off, early) is None


def test_caps_across_two_journeys_priority_wins(
    runtime: Runtime, clock: FrozenClock, sink: h.Sink
) -> None:
    _put(
        runtime, clock, channel_caps={"webhook": Cap(max=2, days=7)}, global_cap=Cap(max=3, days=7)
    )
    (user,) = h.customers(runtime, [{"name": "cap"}], clock())
    config = {"url": sink.url, "secret": h.SECRET}
    j1 = h.spec(runtime, "cap:j1", config=config)
    j2 = h.spec(runtime, "cap:j2", config=config)
    with h.dispatcher(runtime, clock) as d:
        h.enqueue(runtime, j1, [user], clock(), journey_id=1)
        d.run_until_idle()
        clock.advance(timedelta(days=1))
        # journey 2 sends two at once: one slot left in the 7-day cap; priority 5 wins
        h.enqueue(runtime, j2, [user], clock(), journey_id=2, node_id="low", priority=1)
        h.enqueue(runtime, j2, [user], clock(), journey_id=2, node_id="high", priority=5)
        d.run_until_idle()
        got = {m.node_id: (m.status, m.reason) for m in h.by_key(runtime).values()}
        assert got == {
            "send": ("delivered", None),
            "high": ("delivered", None),
            "low": ("blocked", "frequency_cap"),
        }
        # a service notice is not capped
        svc = h.spec(runtime, "cap:svc", purpose="service", config=config)
        h.enqueue(runtime, svc, [user], clock(), journey_id=3, purpose="service")
        d.run_until_idle()
        assert h.by_key(runtime)[f"j3:send:{user}"].status == "delivered"
        # 7 days after the first send, one slot frees up again
        clock.advance(timedelta(days=6, hours=1))
        h.enqueue(runtime, j1, [user], clock(), journey_id=1, node_id="later")
        d.run_until_idle()
    assert h.by_key(runtime)[f"j1:later:{user}"].status == "delivered"


def test_service_notice_needs_no_opt_out_and_suitability(
    runtime: Runtime, clock: FrozenClock
) -> None:
    a, b = h.customers(runtime, [{"name": "a", **EXPIRED}, {"name": "b"}], clock())
    pid = h.project_id(runtime)
    with runtime.db.unit_of_work() as session:
        compliance.opt_out(
            session=session,
            project_id=pid,
            user_id=b,
            opt_out_in=OptOutIn(channel="*", purpose="service"),
            actor="user:t",
            now=clock(),
        )
        cands = [
            Candidate(ref=1, user_id=a, channel="sms", purpose="service", product_risk_level=1),
            Candidate(ref=2, user_id=a, channel="sms", purpose="service"),
            Candidate(ref=3, user_id=b, channel="sms", purpose="service"),
            Candidate(ref=4, user_id=b, channel="sms", purpose="marketing"),
        ]
        decisions = compliance.evaluate(
            session=session, project_id=pid, candidates=cands, now=clock()
        )
    assert [d.reason for d in decisions] == [
        Reason.ASSESSMENT_EXPIRED,
        None,
        Reason.OPTED_OUT,
        Reason.NO_CONSENT,
    ]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(0, 23),
    end=st.integers(0, 23),
    enabled=st.booleans(),
    cap=st.integers(0, 5),
    whitelist_only=st.booleans(),
    consent=st.lists(st.sampled_from(["sms", "email", "webhook"]), max_size=3),
    hour=st.integers(0, 23),
    purpose=st.sampled_from(["marketing", "service"]),
    level=st.sampled_from([None, 1, 2, 3, 4, 5]),
    rec=st.sampled_from([None, "R1", "R3", "R5", ""]),
)
def test_nothing_unsuitable_or_opted_out_is_ever_allowed(
    runtime: Runtime,
    start: int,
    end: int,
    enabled: bool,
    cap: int,
    whitelist_only: bool,
    consent: list[str],
    hour: int,
    purpose: str,
    level: int | None,
    rec: str | None,
) -> None:
    now = datetime(2026, 11, 2, hour, 0, tzinfo=UTC)
    pid = h.project_id(runtime)
    config = ComplianceSettingsIn(
        quiet_hours=QuietHours(enabled=enabled, start=f"{start:02d}:00", end=f"{end:02d}:00"),
        channel_caps={"sms": Cap(max=cap, days=7)},
        consent_required=consent,
        whitelist_only=whitelist_only,
    )
    profiles_by_user = {
        1: {"risk_tolerance": "C2", "risk_assessment_expiry": "2027-01-01"},
        2: {"risk_tolerance": "C5", "risk_assessment_expiry": "2026-01-01"},
        3: {},
    }
    recs = [] if rec is None else [{"item_type": "fund", "risk_level": rec}]
    cands = [
        Candidate(
            ref=u,
            user_id=u,
            channel="sms",
            purpose=purpose,
            product_risk_level=level,
            recommendations=recs,
        )
        for u in (1, 2, 3, 4)
    ]
    profiles_by_user[4] = profiles_by_user[1]
    with runtime.db.unit_of_work() as session:
        if session.get(OptOut, 1) is None:
            session.add(
                OptOut(
                    id=1,
                    project_id=pid,
                    user_id=4,
                    channel="*",
                    purpose="*",
                    source="test",
                    at=now.replace(tzinfo=None),
                )
            )
            session.flush()
        decisions = compliance.evaluate(
            session=session,
            project_id=pid,
            candidates=cands,
            now=now,
            settings=config,
            profiles_by_user=profiles_by_user,
        )
    levels = [x for x in [level, None if rec is None else (9 if rec == "" else int(rec[1]))] if x]
    assert decisions[3].reason is Reason.OPTED_OUT
    for c, d in zip(cands, decisions, strict=True):
        if d.verdict is not Verdict.ALLOW:
            continue
        assert c.user_id != 4
        allowed_max = 2 if c.user_id == 1 else 0
        assert all(x <= allowed_max for x in levels), (c, d)
        if purpose == "marketing" and enabled and start != end:
            assert compliance.quiet_until(config, now) is None


def test_rules_naming_a_channel_family_apply_to_its_adapters(
    runtime: Runtime, clock: FrozenClock
) -> None:
    """Default caps name ``wechat``/``wecom``/``push``; adapters are ``wechat_template``,
    ``app_push``…: opt-outs, consents, lists and caps naming the family apply to them."""
    from flywheel.channels import catalog
    from flywheel.channels.base import family_of
    from flywheel.compliance.schemas import Contact

    catalog.channel_names()
    assert [family_of(n) for n in ("wechat_subscribe", "wecom_customer", "app_push", "sms")] == [
        "wechat",
        "wecom",
        "push",
        "sms",
    ]
    people = [{"name": n, **VALID} for n in ("opted", "consented", "none", "capped", "other")]
    opted, consented, none, capped, other = h.customers(runtime, people, clock())
    pid = h.project_id(runtime)
    now = clock()
    with runtime.db.unit_of_work() as session:
        compliance.opt_out(
            session=session,
            project_id=pid,
            user_id=opted,
            opt_out_in=OptOutIn(channel="wechat", purpose="*"),
            actor="user:t",
            now=now,
        )
        compliance.set_consent(
            session=session,
            project_id=pid,
            user_id=consented,
            consent_in=ConsentIn(channel="wechat"),
            actor="user:t",
            now=now,
        )
        config = ComplianceSettingsIn(
            quiet_hours=QuietHours(enabled=False),
            channel_caps={"push": Cap(max=2, days=7)},
            global_cap=None,
            consent_required=["wechat"],
        )

        def candidate(ref: int, user: int, channel: str) -> Candidate:
            return Candidate(ref=ref, user_id=user, channel=channel, family=family_of(channel))

        earlier = now - timedelta(days=1)
        history = [
            Contact(90, capped, "app_push", "marketing", earlier, "push"),
            Contact(91, capped, "app_push", "marketing", earlier, "push"),
            Contact(92, other, "sms", "marketing", earlier, "sms"),
            Contact(93, other, "sms", "marketing", earlier, "sms"),
        ]
        decisions = compliance.evaluate(
            session=session,
            project_id=pid,
            candidates=[
                candidate(1, opted, "wechat_template"),
                candidate(2, consented, "wechat_subscribe"),
                candidate(3, none, "wechat_template"),
                candidate(4, capped, "app_push"),
                candidate(5, other, "app_push"),
                candidate(6, other, "app_push"),
                candidate(7, other, "app_push"),
            ],
            now=now,
            settings=config,
            recent_contacts=lambda users, _since: [c for c in history if c.user_id in users],
        )
    assert [d.reason for d in decisions] == [
        Reason.OPTED_OUT,
        None,
        Reason.NO_CONSENT,
        Reason.FREQUENCY_CAP,  # two pushes this week already
        None,  # two SMS do not count against the push cap
        None,
        Reason.FREQUENCY_CAP,  # the third push of the batch
    ]


def test_the_most_specific_consent_decides(runtime: Runtime, clock: FrozenClock) -> None:
    """A withdrawal on the channel beats a grant on its family or on every channel."""
    from flywheel.channels import catalog
    from flywheel.channels.base import family_of

    catalog.channel_names()
    wechat_fan, everything_but_sms = h.customers(
        runtime, [{"name": "a", **VALID}, {"name": "b", **VALID}], clock()
    )
    pid = h.project_id(runtime)
    now = clock()
    with runtime.db.unit_of_work() as session:
        for user, channel, granted in [
            (wechat_fan, "wechat", True),
            (wechat_fan, "wechat_template", False),
            (everything_but_sms, "*", True),
            (everything_but_sms, "sms", False),
        ]:
            compliance.set_consent(
                session=session,
                project_id=pid,
                user_id=user,
                consent_in=ConsentIn(channel=channel, granted=granted),
                actor="user:t",
                now=now,
            )
        decisions = compliance.evaluate(
            session=session,
            project_id=pid,
            candidates=[
                Candidate(ref=i, user_id=u, channel=ch, family=family_of(ch))
                for i, (u, ch) in enumerate(
                    [
                        (wechat_fan, "wechat_template"),
                        (wechat_fan, "wechat_subscribe"),
                        (everything_but_sms, "sms"),
                        (everything_but_sms, "email"),
                    ]
                )
            ],
            now=now,
            settings=ComplianceSettingsIn(
                quiet_hours=QuietHours(enabled=False),
                channel_caps={},
                global_cap=None,
                consent_required=["wechat", "sms", "email"],
            ),
        )
    assert [d.reason for d in decisions] == [Reason.NO_CONSENT, None, Reason.NO_CONSENT, None]
