"""Webhook delivery through the dispatcher: signature, headers, retries, dead-letter, SSRF."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import timedelta

import pytest

from flywheel.channels.webhook import parse_allow, target_allowed
from flywheel.config import Settings
from flywheel.core.clock import FrozenClock
from flywheel.runtime import Runtime
from tests.channels import dispatch_helpers as h


@pytest.fixture
def sink() -> Iterator[h.Sink]:
    server = h.Sink()
    yield server
    server.close()


def test_webhook_signed_delivery_and_system_events(
    runtime: Runtime, clock: FrozenClock, sink: h.Sink
) -> None:
    users = h.customers(runtime, [{"name": "张三"}, {"name": "李四"}], clock())
    spec_id = h.spec(
        runtime,
        "journey:1:v1:send",
        purpose="service",
        config={"url": sink.url, "secret": h.SECRET, "headers": {"X-Tenant": "acme"}},
        template={"text": "感谢{{ user.name | default('客户') }}的首次申购 {{ event.fund }}"},
    )
    h.enqueue(
        runtime, spec_id, users, clock(), purpose="service", context={"event": {"fund": "F1"}}
    )
    with h.dispatcher(runtime, clock) as d:
        assert d.run_until_idle() == 2
    assert len(sink.received) == 2
    for item in sink.received:
        assert item.signature_ok
        assert item.headers["idempotency-key"].startswith("j1:send:")
        assert item.headers["content-type"] == "application/json"
        assert item.headers["x-tenant"] == "acme"
        assert item.json["idempotency_key"] == item.headers["idempotency-key"]
    texts = sorted(r.json["text"] for r in sink.received)
    assert texts == ["感谢张三的首次申购 F1", "感谢李四的首次申购 F1"]
    stored = h.messages(runtime)
    assert {m.status for m in stored.values()} == {"delivered"}
    assert all(m.attempts == 1 and m.sent_at and m.delivered_at for m in stored.values())
    # system events staged in the warehouse outbox with deterministic ids
    from flywheel.ingest.tasks import IngestProcessor

    IngestProcessor(runtime).run_once()
    table = f"p{h.project_id(runtime)}_events"
    rows = runtime.warehouse.fetch(
        f"SELECT id FROM {table} WHERE event LIKE '$Message%' ORDER BY id"
    )
    ids = [r[0] for r in rows]
    assert len(ids) == 4 and all(i.startswith("msg") for i in ids)


def _settings(runtime: Runtime, **changes: object) -> Settings:
    return runtime.settings.model_copy(update=changes)


def test_retry_503_then_200_same_key_and_backoff(
    runtime: Runtime, clock: FrozenClock, sink: h.Sink
) -> None:
    sink.answers = [503, 429]
    (user,) = h.customers(runtime, [{"name": "王五"}], clock())
    spec_id = h.spec(
        runtime, "r:1", purpose="service", config={"url": sink.url, "secret": h.SECRET}
    )
    h.enqueue(runtime, spec_id, [user], clock(), purpose="service")
    with h.dispatcher(
        runtime, clock, settings=_settings(runtime, dispatch_retry_base_seconds=10)
    ) as d:
        assert d.run_once() == 1
        m = h.messages(runtime)[user]
        assert (m.status, m.reason, m.attempts) == ("prepared", "http_503", 1)
        first_delay = (m.due_at - clock().replace(tzinfo=None)).total_seconds()
        assert 5 <= first_delay <= 10  # base 10 s with jitter in [0.5, 1]
        assert d.run_once() == 0  # not due yet
        clock.advance(timedelta(seconds=11))
        assert d.run_once() == 1
        m = h.messages(runtime)[user]
        assert (m.status, m.reason, m.attempts) == ("prepared", "http_429", 2)
        assert (m.due_at - clock().replace(tzinfo=None)).total_seconds() >= 7  # Retry-After: 7
        clock.advance(timedelta(seconds=30))
        assert d.run_once() == 1
    m = h.messages(runtime)[user]
    assert (m.status, m.attempts) == ("delivered", 3)
    keys = {r.headers["idempotency-key"] for r in sink.received}
    assert len(sink.received) == 3 and keys == {m.idempotency_key}
    assert [r.json["attempt"] for r in sink.received] == [1, 2, 3]


def test_dead_letter_after_max_attempts_and_4xx_fails(
    runtime: Runtime, clock: FrozenClock, sink: h.Sink
) -> None:
    sink.answers = [500, 500, 500, 404]
    a, b = h.customers(runtime, [{"name": "甲"}, {"name": "乙"}], clock())
    spec_id = h.spec(
        runtime, "r:2", purpose="service", config={"url": sink.url, "secret": h.SECRET}
    )
    h.enqueue(runtime, spec_id, [a], clock(), purpose="service")
    settings = _settings(runtime, dispatch_max_attempts=3, dispatch_retry_base_seconds=1)
    with h.dispatcher(runtime, clock, settings=settings) as d:
        for _ in range(3):
            d.run_once()
            clock.advance(timedelta(seconds=5))
        m = h.messages(runtime)[a]
        assert (m.status, m.reason, m.attempts) == ("dead", "http_500", 3)
        h.enqueue(runtime, spec_id, [b], clock(), purpose="service")
        d.run_once()
    assert (h.messages(runtime)[b].status, h.messages(runtime)[b].reason) == ("failed", "http_404")


@pytest.mark.parametrize(
    ("url", "allow", "refused"),
    [
        ("http://10.0.0.1:9/hook", "127.0.0.0/8", True),
        ("http://169.254.169.254/latest/meta-data", "127.0.0.0/8", True),
        ("http://[::1]:9/hook", "127.0.0.0/8", True),
        ("http://224.0.0.1/hook", "127.0.0.0/8", True),
        ("http://0.0.0.0:9/hook", "127.0.0.0/8", True),
        ("http://127.0.0.1:9/hook", "", True),
        ("http://localhost:9/hook", "10.0.0.0/8", True),
    ],
)
def test_ssrf_refused(
    runtime: Runtime, clock: FrozenClock, url: str, allow: str, refused: bool
) -> None:
    (user,) = h.customers(runtime, [{"name": "丙"}], clock())
    spec_id = h.spec(runtime, f"ssrf:{url}:{allow}", purpose="service", config={"url": url})
    h.enqueue(runtime, spec_id, [user], clock(), purpose="service")
    with h.dispatcher(runtime, clock, settings=_settings(runtime, webhook_allow=allow)) as d:
        d.run_once()
    m = h.messages(runtime)[user]
    assert (m.status, m.reason) == ("failed", "ssrf_refused")
    assert refused


def test_allow_list_opens_a_private_target(
    runtime: Runtime, clock: FrozenClock, sink: h.Sink
) -> None:
    """::1 is refused by default and reached once ``::1/128`` is allowed; 127.0.0.1 likewise."""
    assert not target_allowed(ipaddress.ip_address("::1"), parse_allow("127.0.0.0/8"))
    assert target_allowed(ipaddress.ip_address("::1"), parse_allow("127.0.0.0/8, ::1/128"))
    assert not target_allowed(ipaddress.ip_address("10.0.0.1"), parse_allow("127.0.0.0/8"))
    assert target_allowed(ipaddress.ip_address("10.0.0.1"), parse_allow("10.0.0.0/8"))
    assert target_allowed(ipaddress.ip_address("8.8.8.8"), [])
    assert not target_allowed(ipaddress.ip_address("::ffff:169.254.169.254"), [])
    a, b = h.customers(runtime, [{"name": "丁"}, {"name": "戊"}], clock())
    spec_id = h.spec(
        runtime, "allow", purpose="service", config={"url": sink.url, "secret": h.SECRET}
    )
    h.enqueue(runtime, spec_id, [a], clock(), purpose="service")
    with h.dispatcher(runtime, clock, settings=_settings(runtime, webhook_allow="10.0.0.0/8")) as d:
        d.run_once()
    assert h.messages(runtime)[a].reason == "ssrf_refused" and not sink.received
    h.enqueue(runtime, spec_id, [b], clock(), purpose="service", key_prefix="again")
    with h.dispatcher(runtime, clock) as d:  # default 127.0.0.0/8
        d.run_once()
    assert h.messages(runtime)[b].status == "delivered" and len(sink.received) == 1


def test_unreachable_target_retries(runtime: Runtime, clock: FrozenClock) -> None:
    (user,) = h.customers(runtime, [{"name": "己"}], clock())
    spec_id = h.spec(runtime, "down", purpose="service", config={"url": "http://127.0.0.1:9/x"})
    h.enqueue(runtime, spec_id, [user], clock(), purpose="service")
    with h.dispatcher(runtime, clock) as d:
        d.run_once()
    m = h.messages(runtime)[user]
    assert (m.status, m.reason) == ("prepared", "connect_error")
