"""The dispatcher: delivers due messages from the outbox through the channel adapters.

One :meth:`Dispatcher.run_once` is one batch, in three steps:

1. **claim** (own transaction): ``status IN ('prepared','sending') AND due_at <= now`` — a
   ``sending`` message whose lease (``due_at``) has expired was claimed by a dispatcher that
   died — ordered by ``due_at``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent
   dispatchers never claim one message twice), set to ``sending`` with ``due_at = now +
   lease`` and ``attempts + 1``, committed;
2. **gate, render, address, send**: the compliance gate for the whole batch
   (:func:`flywheel.compliance.service.evaluate`), rendering (approved content only, or the
   spec's inline template), the recipient address, then every adapter's batch send run
   concurrently on the dispatcher's event loop;
3. **record** (one transaction): status, reason, attempts, provider id, timestamps of every
   message, the rows of storing channels (slot cards, advisor tasks) and the system events.

Delivery contract (at-least-once with an idempotency key): a message is handed to its
provider at least once; it is handed more than once only when the dispatcher died (or its
lease ran out) between step 2 and the commit of step 3, and every hand-over of one message
carries the same ``Idempotency-Key`` (webhook header, email Message-ID, provider
``out_id``). Storing channels (in_app, advisor) are exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from flywheel.channels import catalog, links, resilience, system_events, unsubscribe
from flywheel.channels.base import (
    REGISTRY,
    Channel,
    ChannelContext,
    Outcome,
    OutcomeKind,
    Outgoing,
    StoringChannel,
    family_of,
)
from flywheel.channels.models import Message, SendSpec
from flywheel.compliance import service as compliance
from flywheel.compliance.schemas import Candidate, Contact, Decision, Reason, Verdict
from flywheel.config import Settings
from flywheel.content import checker, templates
from flywheel.content import service as content_service
from flywheel.core.clock import Clock, to_utc, utc_naive
from flywheel.core.loops import LoopService
from flywheel.core.memory import gc_paused
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.runtime import Runtime
from flywheel.store import Database
from flywheel.warehouse import Warehouse

log = structlog.get_logger(__name__)

#: Statuses that count against frequency caps.
CONTACT_STATUSES = ("sending", "sent", "delivered", "opened", "clicked")
#: Loads a project's channel account (provider credentials) for an adapter; H1 wires it.
AccountLoader = Callable[[Session, int, str], dict[str, Any]]
_CLAIM_COLUMNS = (
    Message.id,
    Message.project_id,
    Message.idempotency_key,
    Message.spec_id,
    Message.journey_id,
    Message.version_id,
    Message.node_id,
    Message.user_id,
    Message.variant,
    Message.channel,
    Message.purpose,
    Message.priority,
    Message.context,
    Message.attempts,
)
_CLAIMS_CHECK_TTL = 60.0


@dataclass
class Claimed:
    """A claimed message (the columns the dispatcher needs)."""

    id: int
    project_id: int
    key: str
    spec_id: int | None
    journey_id: int | None
    version_id: int | None
    node_id: str | None
    user_id: int
    variant: str | None
    channel: str
    purpose: str
    priority: int
    context: dict[str, Any]
    attempts: int


@dataclass
class Spec:
    id: int
    channel: str
    fallback_channel: str | None
    purpose: str
    content_id: int | None
    template: dict[str, Any]
    config: dict[str, Any]
    product_risk_level: int | None


@dataclass
class _Result:
    """What happens to one claimed message."""

    status: str
    reason: str | None = None
    due_at: datetime | None = None
    channel: str | None = None
    attempts: int | None = None
    provider_message_id: str | None = None
    last_error: str | None = None
    sent: bool = False
    delivered: bool = False


@dataclass
class _Pending:
    message: Claimed
    outgoing: Outgoing
    adapter: Channel


@dataclass
class BatchReport:
    claimed: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Dispatcher:
    """Claims, gates, renders and sends batches of due messages (see the module doc).

    ``worker`` names this dispatcher in logs. ``accounts`` loads a project's channel account
    for an adapter (default: none, adapters use process settings).
    """

    def __init__(
        self,
        *,
        db: Database,
        warehouse: Warehouse | None,
        settings: Settings,
        clock: Clock,
        accounts: AccountLoader | None = None,
        batch_size: int | None = None,
        rng: random.Random | None = None,
    ) -> None:
        catalog.channel_names()  # every adapter module registered
        self.db = db
        self.warehouse = warehouse
        self.settings = settings
        self.clock = clock
        self.accounts = accounts
        self.batch_size = batch_size or settings.dispatch_batch_size
        self.rng = rng or random.Random()
        self._loop = asyncio.new_event_loop()
        self._adapters: dict[tuple[int, str], Channel] = {}
        self._specs: dict[int, Spec] = {}
        self._claims_checked: dict[int, tuple[float, bool]] = {}

    # -- step 1 -----------------------------------------------------------------------------
    def claim(self) -> list[Claimed]:
        """Claim up to ``batch_size`` due messages (committed before anything is sent)."""
        now = utc_naive(self.clock())
        lease = now + timedelta(seconds=self.settings.dispatch_lease_seconds)
        with self.db.unit_of_work() as session:
            due = (
                select(Message.id)
                .where(Message.status.in_(("prepared", "sending")), Message.due_at <= now)
                .order_by(Message.due_at)
                .limit(self.batch_size)
            )
            if self.db.is_postgres:
                due = due.with_for_update(skip_locked=True)
            rows = session.execute(
                update(Message)
                .where(Message.id.in_(due.scalar_subquery()))
                .values(
                    status="sending", due_at=lease, updated_at=now, attempts=Message.attempts + 1
                )
                .returning(*_CLAIM_COLUMNS)
                .execution_options(synchronize_session=False)
            ).all()
        return [
            Claimed(
                id=int(r[0]),
                project_id=int(r[1]),
                key=r[2],
                spec_id=r[3],
                journey_id=r[4],
                version_id=r[5],
                node_id=r[6],
                user_id=int(r[7]),
                variant=r[8],
                channel=r[9],
                purpose=r[10],
                priority=int(r[11] or 0),
                context=dict(r[12] or {}),
                attempts=int(r[13]),
            )
            for r in sorted(rows, key=lambda r: int(r[0]))
        ]

    # -- the loop ---------------------------------------------------------------------------
    def run_once(self) -> int:
        """One batch: claim, process, record. Returns the number of messages claimed."""
        claimed = self.claim()
        if claimed:
            self.process(claimed)
        return len(claimed)

    def run_until_idle(self, max_batches: int = 1000) -> int:
        """Batches until nothing is due (tests, ``flywheel channels dispatch --once``)."""
        total = 0
        for _ in range(max_batches):
            handled = self.run_once()
            total += handled
            if handled == 0:
                break
        return total

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            for adapter in self._adapters.values():
                self._loop.run_until_complete(adapter.aclose())
        finally:
            self._adapters.clear()
            self._loop.close()

    # -- step 2 and 3 -----------------------------------------------------------------------
    @gc_paused()
    def process(self, claimed: Sequence[Claimed]) -> dict[int, _Result]:
        """Gate, render, send and record ``claimed``; message id → what happened."""
        results: dict[int, _Result] = {}
        pending: list[_Pending] = []
        stored: list[_Pending] = []
        by_project: dict[int, list[Claimed]] = defaultdict(list)
        for m in claimed:
            by_project[m.project_id].append(m)
        with self.db.unit_of_work() as session:
            profile_cache: dict[int, dict[int, dict[str, Any]]] = {}
            for project_id, messages in by_project.items():
                profiles_by_user = profiles.load_profiles(
                    session=session, project_id=project_id, user_ids=[m.user_id for m in messages]
                )
                profile_cache[project_id] = profiles_by_user
                self._prepare(
                    session, project_id, messages, profiles_by_user, results, pending, stored
                )
        now = self.clock()
        sendable = [p for p in pending if not isinstance(p.adapter, StoringChannel)]
        if sendable:
            outcomes = self._loop.run_until_complete(self._send_all(sendable))
            for p, outcome in zip(sendable, outcomes, strict=True):
                results[p.message.id] = self._apply(p.message, outcome, now)
        self._record(claimed, results, stored, now)
        return results

    def _spec(self, session: Session, spec_id: int | None) -> Spec | None:
        if spec_id is None:
            return None
        cached = self._specs.get(spec_id)
        if cached is None:
            row = session.get(SendSpec, spec_id)
            if row is None:
                return None
            cached = Spec(
                id=row.id,
                channel=row.channel,
                fallback_channel=row.fallback_channel,
                purpose=row.purpose,
                content_id=row.content_id,
                template=dict(row.template or {}),
                config=dict(row.config or {}),
                product_risk_level=row.product_risk_level,
            )
            self._specs[spec_id] = cached
        return cached

    def adapter(self, session: Session, project_id: int, channel: str) -> Channel | None:
        """The adapter instance for (project, channel); None for an unknown channel."""
        key = (project_id, channel)
        found = self._adapters.get(key)
        if found is None:
            factory = REGISTRY.get(channel)
            if factory is None:
                return None
            account = self.accounts(session, project_id, channel) if self.accounts else {}
            found = resilience.guard(
                factory(
                    ChannelContext(settings=self.settings, project_id=project_id, account=account)
                )
            )
            self._adapters[key] = found
        return found

    def _recent_contacts(
        self, session: Session, project_id: int, user_ids: Sequence[int], since: datetime
    ) -> list[Contact]:
        customer_facing = [
            name for name, factory in REGISTRY.items() if getattr(factory, "customer_facing", True)
        ]
        found: list[Contact] = []
        moment = utc_naive(since)
        for start in range(0, len(user_ids), 900):
            rows = session.execute(
                select(
                    Message.id,
                    Message.user_id,
                    Message.channel,
                    Message.purpose,
                    Message.sent_at,
                    Message.updated_at,
                ).where(
                    Message.project_id == project_id,
                    Message.user_id.in_(list(user_ids[start : start + 900])),
                    Message.status.in_(CONTACT_STATUSES),
                    Message.purpose == compliance.MARKETING,
                    Message.channel.in_(customer_facing),
                    Message.updated_at >= moment,
                )
            ).all()
            found.extend(
                Contact(int(i), int(u), ch, pu, sent or upd, family_of(ch))
                for i, u, ch, pu, sent, upd in rows
                if (sent or upd) >= moment
            )
        return found

    def _prohibited(self, session: Session, project_id: int, spec: Spec) -> bool:
        """Whether the spec's inline template trips the claims checker (cached a minute)."""
        clock = self._loop.time()
        cached = self._claims_checked.get(spec.id)
        if cached is not None and cached[0] > clock:
            return cached[1]
        text = "\n".join(
            str(spec.template.get(k) or "") for k in ("subject", "title", "text", "html")
        )
        findings = content_service.check_text(
            session=session, project_id=project_id, text=text, now=self.clock()
        )
        # Only prohibited claims block at send time: a missing risk warning is the reviewer's
        # call at approval (a service notice such as "thanks for your purchase" needs none).
        blocked = any(f.rule == checker.PROHIBITED_CLAIM for f in findings)
        self._claims_checked[spec.id] = (clock + _CLAIMS_CHECK_TTL, blocked)
        return blocked

    def _prepare(
        self,
        session: Session,
        project_id: int,
        messages: Sequence[Claimed],
        profiles_by_user: Mapping[int, dict[str, Any]],
        results: dict[int, _Result],
        pending: list[_Pending],
        stored: list[_Pending],
    ) -> None:
        now = self.clock()
        specs = {m.id: self._spec(session, m.spec_id) for m in messages}
        live: list[Claimed] = []
        for m in messages:
            adapter = self.adapter(session, project_id, m.channel)
            if adapter is None:
                results[m.id] = _Result("failed", reason="unknown_channel", attempts=m.attempts - 1)
            elif specs[m.id] is None:
                results[m.id] = _Result("failed", reason="spec_missing", attempts=m.attempts - 1)
            else:
                live.append(m)
        candidates = []
        for m in live:
            spec = specs[m.id]
            assert spec is not None
            adapter = self._adapters[(project_id, m.channel)]
            recs = m.context.get("recommendations")
            candidates.append(
                Candidate(
                    ref=m.id,
                    user_id=m.user_id,
                    channel=m.channel,
                    purpose=m.purpose,
                    priority=m.priority,
                    customer_facing=type(adapter).customer_facing,
                    family=family_of(m.channel),
                    product_risk_level=spec.product_risk_level,
                    recommendations=[r for r in recs if isinstance(r, Mapping)]
                    if isinstance(recs, list)
                    else [],
                )
            )
        decisions = compliance.evaluate(
            session=session,
            project_id=project_id,
            candidates=candidates,
            now=now,
            recent_contacts=partial(self._recent_contacts, session, project_id),
            profiles_by_user=profiles_by_user,
        )
        allowed: list[Claimed] = []
        for m, decision in zip(live, decisions, strict=True):
            if decision.allowed:
                allowed.append(m)
            else:
                results[m.id] = self._gated(m, decision)
        need_ids = {
            m.user_id
            for m in allowed
            if type(self._adapters[(project_id, m.channel)]).needs_identities
        }
        held = (
            identity.identities_of(
                session=session, project_id=project_id, user_ids=sorted(need_ids)
            )
            if need_ids
            else {}
        )
        for m in allowed:
            spec = specs[m.id]
            assert spec is not None
            adapter = self._adapters[(project_id, m.channel)]
            profile = profiles_by_user.get(m.user_id, {})
            grouped: dict[str, list[str]] = defaultdict(list)
            for key, value, _ in held.get(m.user_id, []):
                grouped[key].append(value)
            address = adapter.address(profile=profile, identities=grouped, config=spec.config)
            if address is None:
                results[m.id] = self._fallback_or(m, spec, "blocked", Reason.NO_ADDRESS.value)
                continue
            rendered = self._render(session, project_id, m, spec, profile)
            if isinstance(rendered, _Result):
                results[m.id] = rendered
                continue
            outgoing = Outgoing(
                message_id=m.id,
                idempotency_key=m.key,
                project_id=project_id,
                user_id=m.user_id,
                channel=m.channel,
                purpose=m.purpose,
                address=address,
                body=rendered["text"],
                subject=rendered.get("subject"),
                html=rendered.get("html"),
                title=rendered.get("title"),
                link=rendered.get("link"),
                fields=rendered.get("fields") or {},
                config=spec.config,
                context=m.context,
                journey_id=m.journey_id,
                version_id=m.version_id,
                node_id=m.node_id,
                variant=m.variant,
                attempt=m.attempts,
                profile=profile,
            )
            self._track_and_unsubscribe(session, outgoing)
            item = _Pending(m, outgoing, adapter)
            (stored if isinstance(adapter, StoringChannel) else pending).append(item)

    def _track_and_unsubscribe(self, session: Session, outgoing: Outgoing) -> None:
        """Links become tracked short links; marketing email gets one-click unsubscribe."""
        public_url, secret = self.settings.public_url, self.settings.secret_key
        links.rewrite_message(
            session, message=outgoing, public_url=public_url, secret_key=secret, now=self.clock()
        )
        if outgoing.channel == "email" and outgoing.purpose == "marketing":
            headers = unsubscribe.list_unsubscribe_headers(
                outgoing, public_url=public_url, secret_key=secret
            )
            outgoing.config = {
                **outgoing.config,
                "headers": {**outgoing.config.get("headers", {}), **headers},
            }

    def _render(
        self,
        session: Session,
        project_id: int,
        m: Claimed,
        spec: Spec,
        profile: Mapping[str, Any],
    ) -> dict[str, Any] | _Result:
        recs = m.context.get("recommendations")
        recommendations = recs if isinstance(recs, list) else []
        try:
            if spec.content_id is not None:
                out = content_service.render_for_customer(
                    session=session,
                    project_id=project_id,
                    content_id=spec.content_id,
                    user_id=m.user_id,
                    now=self.clock(),
                    warehouse=self.warehouse,
                    recommendations=recommendations,
                )
                return {
                    "text": out.body,
                    "subject": out.subject or None,
                    "html": out.html,
                    "title": out.fields.get("title") or out.subject or None,
                    "link": out.fields.get("link"),
                    "fields": out.fields,
                }
            if self._prohibited(session, project_id, spec):
                return _Result(
                    "blocked", reason=Reason.PROHIBITED_CLAIMS.value, attempts=m.attempts - 1
                )
            context = {
                "user": profile,
                "tags": {},
                "recommendations": recommendations,
                "event": m.context.get("event") or {},
            }
            template = spec.template
            out_text = {
                key: templates.render_text(str(template[key]), context)
                for key in ("text", "subject", "title", "link")
                if template.get(key)
            }
            if template.get("html"):
                out_text["html"] = templates.render_text(str(template["html"]), context, html=True)
            fields = {
                str(k): templates.render_text(str(v), context)
                for k, v in dict(template.get("fields") or {}).items()
            }
            return {**out_text, "text": out_text.get("text", ""), "fields": fields}
        except content_service.NotApproved:
            return _Result(
                "blocked", reason=Reason.CONTENT_NOT_APPROVED.value, attempts=m.attempts - 1
            )
        except templates.TemplateRejected as exc:
            return _Result("failed", reason="template_rejected", last_error=exc.message[:500])

    def _gated(self, m: Claimed, decision: Decision) -> _Result:
        reason = decision.reason.value if decision.reason else None
        if decision.verdict is Verdict.DEFER:
            assert decision.until is not None
            return _Result(
                "prepared", reason=reason, due_at=utc_naive(decision.until), attempts=m.attempts - 1
            )
        return _Result("blocked", reason=reason, attempts=m.attempts - 1)

    def _fallback_or(self, m: Claimed, spec: Spec, status: str, reason: str) -> _Result:
        fallback = spec.fallback_channel
        if fallback and fallback != m.channel and fallback in REGISTRY:
            # Re-queued now on the fallback channel: gated again for that channel.
            return _Result(
                "prepared",
                reason=f"fallback:{reason}",
                channel=fallback,
                due_at=utc_naive(self.clock()),
                attempts=m.attempts - 1,
            )
        return _Result(
            status, reason=reason, attempts=m.attempts - 1 if status == "blocked" else None
        )

    async def _send_all(self, pending: Sequence[_Pending]) -> list[Outcome]:
        groups: dict[int, list[int]] = defaultdict(list)
        adapters: dict[int, Channel] = {}
        for index, p in enumerate(pending):
            groups[id(p.adapter)].append(index)
            adapters[id(p.adapter)] = p.adapter

        async def run(key: int) -> list[Outcome]:
            batch = [pending[i].outgoing for i in groups[key]]
            try:
                outcomes = await adapters[key].send(batch)
            except Exception as exc:  # an adapter bug must not lose the batch
                log.exception("channel_send_crashed", channel=batch[0].channel)
                return [
                    Outcome(OutcomeKind.RETRY, reason="adapter_error", detail=str(exc)[:200])
                ] * len(batch)
            if len(outcomes) != len(batch):
                return [Outcome(OutcomeKind.RETRY, reason="adapter_error")] * len(batch)
            return outcomes

        keys = list(groups)
        answers = await asyncio.gather(*(run(k) for k in keys))
        flat: list[Outcome | None] = [None] * len(pending)
        for key, outcomes in zip(keys, answers, strict=True):
            for index, outcome in zip(groups[key], outcomes, strict=True):
                flat[index] = outcome
        return [o for o in flat if o is not None]

    def backoff(self, attempts: int, retry_after: float | None) -> float:
        """Seconds before the next attempt: exponential with jitter, ``Retry-After`` honoured."""
        s = self.settings
        exponent = float(2 ** max(attempts - 1, 0))
        delay = min(s.dispatch_retry_max_seconds, s.dispatch_retry_base_seconds * exponent)
        delay *= self.rng.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, s.dispatch_retry_max_seconds))
        return delay

    def _apply(self, m: Claimed, outcome: Outcome, now: datetime) -> _Result:
        kind = outcome.kind
        if kind is OutcomeKind.DELIVERED:
            return _Result(
                "delivered",
                provider_message_id=outcome.provider_message_id,
                sent=True,
                delivered=True,
            )
        if kind is OutcomeKind.SENT:
            return _Result("sent", provider_message_id=outcome.provider_message_id, sent=True)
        if kind is OutcomeKind.RETRY:
            if m.attempts >= self.settings.dispatch_max_attempts:
                return _Result(
                    "dead", reason=outcome.reason or "retries_exhausted", last_error=outcome.detail
                )
            delay = self.backoff(m.attempts, outcome.retry_after)
            return _Result(
                "prepared",
                reason=outcome.reason,
                due_at=utc_naive(to_utc(now) + timedelta(seconds=delay)),
                last_error=outcome.detail,
            )
        if kind is OutcomeKind.UNAVAILABLE:
            spec = self._specs.get(m.spec_id or -1)
            if spec is not None:
                return self._fallback_or(m, spec, "failed", outcome.reason or "channel_unavailable")
            return _Result("failed", reason=outcome.reason or "channel_unavailable")
        return _Result("failed", reason=outcome.reason, last_error=outcome.detail)

    def _record(
        self,
        claimed: Sequence[Claimed],
        results: dict[int, _Result],
        stored: Sequence[_Pending],
        now: datetime,
    ) -> None:
        at = utc_naive(now)
        with self.db.unit_of_work() as session:
            by_adapter: dict[int, list[_Pending]] = defaultdict(list)
            for p in stored:
                by_adapter[id(p.adapter)].append(p)
            for group in by_adapter.values():
                adapter = group[0].adapter
                assert isinstance(adapter, StoringChannel)
                outcomes = adapter.store(session, [p.outgoing for p in group], now)
                for p, outcome in zip(group, outcomes, strict=True):
                    results[p.message.id] = self._apply(p.message, outcome, now)
            rows: list[dict[str, Any]] = []
            events: dict[int, list[system_events.SystemEvent]] = defaultdict(list)
            for m in claimed:
                r = results.get(m.id) or _Result("prepared", reason="not_processed", due_at=at)
                row: dict[str, Any] = {
                    "id": m.id,
                    "status": r.status,
                    "reason": r.reason,
                    "updated_at": at,
                    "due_at": r.due_at or at,
                }
                if r.attempts is not None:
                    row["attempts"] = max(r.attempts, 0)
                if r.channel is not None:
                    row["channel"] = r.channel
                if r.provider_message_id is not None:
                    row["provider_message_id"] = r.provider_message_id[:128]
                if r.last_error is not None:
                    row["last_error"] = r.last_error
                if r.sent:
                    row["sent_at"] = at
                if r.delivered:
                    row["delivered_at"] = at
                rows.append(row)
                events[m.project_id].extend(self._events(m, r, now))
            # Bulk UPDATE by primary key, grouped by the set of columns each row changes.
            shapes: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
            for row in rows:
                shapes[tuple(sorted(row))].append(row)
            for group_rows in shapes.values():
                session.execute(update(Message), group_rows)
            for project_id, staged in events.items():
                system_events.emit(session=session, project_id=project_id, events=staged, now=now)
        counts: dict[str, int] = defaultdict(int)
        for r in results.values():
            counts[r.status] += 1
        log.info("messages_dispatched", claimed=len(claimed), **counts)

    def _events(self, m: Claimed, r: _Result, now: datetime) -> list[system_events.SystemEvent]:
        props: dict[str, Any] = {
            "message_id": m.id,
            "channel": r.channel or m.channel,
        }
        if m.journey_id is not None:
            props["journey_id"] = m.journey_id
        if m.version_id is not None:
            props["journey_version"] = m.version_id
        if m.node_id is not None:
            props["node_id"] = m.node_id
        if m.variant is not None:
            props["variant"] = m.variant

        def event(suffix: str, name: str, **extra: Any) -> system_events.SystemEvent:
            return system_events.SystemEvent(
                id=f"msg{m.id}-{suffix}",
                user_id=m.user_id,
                event=name,
                time=now,
                properties={**props, **extra},
            )

        if r.status == "sent":
            return [event("sent", system_events.MESSAGE_SENT)]
        if r.status == "delivered":
            return [
                event("sent", system_events.MESSAGE_SENT),
                event("delivered", system_events.MESSAGE_DELIVERED),
            ]
        if r.status in ("failed", "dead"):
            return [event("failed", system_events.MESSAGE_FAILED, reason=r.reason or r.status)]
        if r.status == "blocked":
            return [event("blocked", system_events.MESSAGE_BLOCKED, reason=r.reason or "blocked")]
        return []


class DispatcherLoop(LoopService):
    """The dispatcher as a loop service of ``flywheel serve`` / ``flywheel worker``."""

    name = "dispatcher"

    def __init__(self, runtime: Runtime, *, accounts: AccountLoader | None = None) -> None:
        self.interval_seconds = runtime.settings.dispatch_interval_seconds
        self.dispatcher = Dispatcher(
            db=runtime.db,
            warehouse=runtime.warehouse,
            settings=runtime.settings,
            clock=runtime.clock,
            accounts=accounts,
        )

    def run_once(self) -> int:
        return self.dispatcher.run_once()

    def close(self) -> None:
        self.dispatcher.close()
