"""Benchmark: send throughput per channel adapter against local provider servers, signatures on.

    uv run python bench/channels.py [--messages 2000] [--batch 200]

Starts the local provider server of the tests (``tests/channels/providers/sim.py``: Aliyun
ACS3-HMAC-SHA256 and Tencent TC3-HMAC-SHA256 signatures verified on every request, WeCom and
WeChat access tokens, JPush HTTP Basic) in a child process, then hands each channel's
adapter — wrapped by :func:`flywheel.channels.resilience.guard`, as the dispatcher does —
``--messages`` personalised messages in batches of ``--batch`` and prints messages/s, the p50 /
p99 of one batch's ``send`` and the peak RSS of the sending process. The server runs in a
separate process; on a 2-core machine both compete for the CPU, so the figures are lower bounds
of what one dispatcher achieves against a remote provider.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog

from flywheel.channels.base import REGISTRY, ChannelContext, OutcomeKind, Outgoing
from flywheel.channels.catalog import channel_names
from flywheel.channels.resilience import guard
from flywheel.config import Settings
from tests.channels.providers.sim import (
    Simulator,
    accounts,
    running_simulator,
)

#: (label, channel, account key, address of message i)
CASES: list[tuple[str, str, str, Any]] = [
    ("sms aliyun (SendBatchSms)", "sms", "sms_aliyun", lambda i: f"138{i:08d}"),
    ("sms tencent (SendSms)", "sms", "sms_tencent", lambda i: f"139{i:08d}"),
    ("wecom_app (message/send)", "wecom_app", "wecom_app", lambda i: f"adv{i % 50}"),
    ("wecom_customer (add_msg_template)", "wecom_customer", "wecom_customer", lambda i: f"wm{i}"),
    ("wechat_template (template/send)", "wechat_template", "wechat", lambda i: f"o{i:027d}"),
    ("wechat_subscribe (bizsend)", "wechat_subscribe", "wechat", lambda i: f"o{i:027d}"),
    ("app_push (JPush v3)", "app_push", "app_push", lambda i: f"registration_id:rid{i}"),
]


def _message(i: int, channel: str, address: str) -> Outgoing:
    return Outgoing(
        message_id=i + 1,
        idempotency_key=f"bench:{channel}:{i}",
        project_id=1,
        user_id=i + 1,
        channel=channel,
        purpose="marketing",
        address=address,
        body=f"尊敬的客户{i}，您关注的基金今日净值已更新。",
        title="净值提醒",
        fields={"name": f"客户{i}", "fund": "沪深300指数"},
        config={"template": "notice"},
    )


async def _run_case(channel: str, account: dict[str, Any], addresses: Any, n: int, batch: int):
    context = ChannelContext(settings=Settings(env="test"), project_id=1, account=account)
    adapter = guard(REGISTRY[channel](context))
    messages = [_message(i, channel, addresses(i)) for i in range(n)]
    latencies = []
    ok = 0
    started = time.perf_counter()
    try:
        for start in range(0, n, batch):
            chunk = messages[start : start + batch]
            t0 = time.perf_counter()
            outcomes = await adapter.send(chunk)
            latencies.append(time.perf_counter() - t0)
            ok += sum(o.kind is OutcomeKind.SENT for o in outcomes)
    finally:
        await adapter.aclose()
    return ok, time.perf_counter() - started, latencies


def _through_dispatcher(sim_url: str, n: int) -> tuple[int, float]:
    """``n`` SMS messages from the outbox through the dispatcher (gate, render, Aliyun adapter
    behind :func:`guard`, account loaded from the database); (sent, seconds)."""
    import tempfile

    from flywheel.bootstrap import open_runtime
    from flywheel.channels import accounts as channel_accounts
    from flywheel.channels import outbox
    from flywheel.channels.dispatch import Dispatcher
    from flywheel.identity import service as identity
    from flywheel.profiles import service as profiles
    from flywheel.projects import service as projects

    with tempfile.TemporaryDirectory() as folder:
        runtime = open_runtime(Settings(env="test", data_dir=Path(folder)))
        try:
            now = runtime.clock()
            raw = dict(accounts(Simulator(url=sim_url))["sms_aliyun"])
            credentials = {k: raw.pop(k) for k in ("access_key_id", "access_key_secret")}
            raw.pop("provider")
            with runtime.db.unit_of_work() as session:
                pid = projects.get_by_name(session=session, name="default").id
                channel_accounts.create_account(
                    session=session,
                    project_id=pid,
                    account_in=channel_accounts.AccountIn(
                        name="aliyun",
                        channel="sms",
                        provider="aliyun",
                        credentials=credentials,
                        options={**raw, "timeout_seconds": 30},
                    ),
                    actor="bench",
                    now=now,
                )
                users = identity.create_users(session=session, project_id=pid, count=n, now=now)
                profiles.save_profiles(
                    session=session,
                    project_id=pid,
                    profiles={u: {"name": f"客户{u}", "mobile": f"138{u:08d}"} for u in users},
                    now=now,
                )
                spec = outbox.register_spec(
                    session=session,
                    project_id=pid,
                    owner="bench:sms",
                    channel="sms",
                    purpose="service",
                    content_id=None,
                    template={"text": "{{ user.name }}您好", "fields": {"name": "{{ user.name }}"}},
                    config={"template": "notice"},
                )
                outbox.enqueue(
                    session=session,
                    project_id=pid,
                    messages=[
                        outbox.NewMessage(
                            key=f"bench:{u}",
                            user_id=u,
                            spec_id=spec,
                            channel="sms",
                            purpose="service",
                        )
                        for u in users
                    ],
                    now=now,
                )

            def loader(session: Any, project_id: int, channel: str) -> dict[str, Any]:
                return channel_accounts.load_account(session, project_id, channel)

            started = time.perf_counter()
            with Dispatcher(
                db=runtime.db,
                warehouse=runtime.warehouse,
                settings=runtime.settings,
                clock=runtime.clock,
                accounts=loader,
            ) as dispatcher:
                dispatcher.run_until_idle()
            seconds = time.perf_counter() - started
            with runtime.db.engine.connect() as conn:
                sent = conn.exec_driver_sql(
                    "SELECT count(*) FROM channel_messages WHERE status = 'sent'"
                ).scalar_one()
            return int(sent), seconds
        finally:
            runtime.close()


def _serve(urls: Any, stop: Any) -> None:
    """The provider server in its own process (so it does not share the client's GIL)."""
    with running_simulator() as sim:
        sim.stall_seconds = 0
        urls.put(sim.url)
        stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument(
        "--dispatcher", type=int, default=5000, help="SMS messages through the dispatcher (0: skip)"
    )
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    channel_names()
    print(f"messages per channel: {args.messages}, batch: {args.batch}")
    print(f"{'channel':38} {'sent':>6} {'msg/s':>8} {'p50 batch':>10} {'p99 batch':>10}")
    context = multiprocessing.get_context("spawn")
    urls, stop = context.Queue(), context.Event()
    server = context.Process(target=_serve, args=(urls, stop), daemon=True)
    server.start()
    sim = Simulator(url=urls.get(timeout=60))
    try:
        for label, channel, key, addresses in CASES:
            account = {**accounts(sim)[key], "timeout_seconds": 30, "concurrency": 32}
            ok, seconds, latencies = asyncio.run(
                _run_case(channel, account, addresses, args.messages, args.batch)
            )
            p50 = statistics.median(latencies) * 1000
            p99 = sorted(latencies)[max(0, int(len(latencies) * 0.99) - 1)] * 1000
            print(f"{label:38} {ok:>6} {ok / seconds:>8.0f} {p50:>8.0f}ms {p99:>8.0f}ms")
        if args.dispatcher:
            sent, seconds = _through_dispatcher(sim.url, args.dispatcher)
            print(
                f"dispatcher → sms aliyun: {sent}/{args.dispatcher} sent in {seconds:.1f} s "
                f"= {sent / seconds:.0f} msg/s (claim, gate, render, send, record)"
            )
    finally:
        stop.set()
        server.join(10)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
