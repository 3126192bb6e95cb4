"""The advisor channel: a task in the customer's advisor's inbox (``/api/v1/advisor/tasks``).

Internal, not customer-facing: the gate skips quiet hours, caps and consent, but opt-outs,
lists and suitability still apply. Address: the profile's ``advisor_id`` (none → fallback or
``no_address``). Spec config: ``{"title": "…", "due_days": 3}``; the rendered text is the
call script. The task is written in the dispatcher's outcome transaction (exactly once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from flywheel.channels.base import Outcome, OutcomeKind, Outgoing, StoringChannel, register
from flywheel.channels.models import AdvisorTask
from flywheel.core.clock import utc_naive

DEFAULT_DUE_DAYS = 3


@register("advisor")
class AdvisorChannel(StoringChannel):
    customer_facing = False
    needs_identities = False

    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],  # noqa: ARG002
        config: Mapping[str, Any],  # noqa: ARG002
    ) -> str | None:
        advisor = profile.get("advisor_id")
        return str(advisor) if advisor not in (None, "") else None

    def store(self, session: Session, messages: Sequence[Outgoing], now: datetime) -> list[Outcome]:
        at = utc_naive(now)
        tasks = []
        for m in messages:
            due_days = m.config.get("due_days", DEFAULT_DUE_DAYS)
            title = m.config.get("title") or m.title or m.subject or "客户跟进"
            branch = m.profile.get("branch")
            task = AdvisorTask(
                project_id=m.project_id,
                message_id=m.message_id,
                user_id=m.user_id,
                advisor_id=m.address,
                branch=str(branch) if branch is not None else None,
                title=str(title)[:256],
                script=m.body,
                due_at=at + timedelta(days=float(due_days)) if due_days is not None else None,
                status="open",
                notes="",
                history=[{"at": at.isoformat(), "by": "system", "status": "open"}],
                journey_id=m.journey_id,
                node_id=m.node_id,
                created_at=at,
                updated_at=at,
            )
            session.add(task)
            tasks.append(task)
        session.flush()
        return [Outcome(OutcomeKind.DELIVERED, provider_message_id=f"task:{t.id}") for t in tasks]
