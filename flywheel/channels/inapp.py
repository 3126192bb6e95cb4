"""The in-app channel: the rendered card is stored in a slot for the customer.

The app backend reads it with ``GET /api/v1/slots/{slot}?user=…`` (see ``slot_routes``).
Spec config: ``{"slot": "home_banner", "expires_hours": 72, "recommend_scene": "home"}``.
Delivery is a row written in the dispatcher's outcome transaction, so a card is stored
exactly once per message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from flywheel.channels.base import Outcome, OutcomeKind, Outgoing, StoringChannel, register
from flywheel.channels.models import SlotMessage
from flywheel.core.clock import utc_naive

DEFAULT_SLOT = "inbox"


@register("in_app")
class InAppChannel(StoringChannel):
    needs_identities = False

    def address(
        self,
        *,
        profile: Mapping[str, Any],  # noqa: ARG002
        identities: Mapping[str, Sequence[str]],  # noqa: ARG002
        config: Mapping[str, Any],
    ) -> str | None:
        slot = config.get("slot") or DEFAULT_SLOT
        return str(slot)

    def store(self, session: Session, messages: Sequence[Outgoing], now: datetime) -> list[Outcome]:
        at = utc_naive(now)
        for m in messages:
            hours = m.config.get("expires_hours")
            expires = at + timedelta(hours=float(hours)) if hours else None
            recommendations = m.context.get("recommendations") or []
            session.add(
                SlotMessage(
                    project_id=m.project_id,
                    message_id=m.message_id,
                    user_id=m.user_id,
                    slot=m.address,
                    title=(m.title or m.subject or "")[:256],
                    body=m.body,
                    link=m.link,
                    fields=dict(m.fields),
                    recommend_scene=m.config.get("recommend_scene"),
                    recommendations=list(recommendations)
                    if isinstance(recommendations, list)
                    else [],
                    created_at=at,
                    expires_at=expires,
                )
            )
        session.flush()
        return [
            Outcome(OutcomeKind.DELIVERED, provider_message_id=f"slot:{m.address}")
            for m in messages
        ]
