"""Outbox rows and customers for channel tests, made through the real services."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from flywheel.channels import outbox
from flywheel.channels.models import Message
from flywheel.identity import service as identity
from flywheel.projects import service as projects
from flywheel.runtime import Runtime


def project_id(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        return projects.get_by_name(session=session, name="default").id


def customer(runtime: Runtime, now: datetime, **identities: str) -> int:
    """A customer holding ``identities`` (e.g. ``{"$identity_mobile": "138…"}``)."""
    with runtime.db.unit_of_work() as session:
        pid = projects.get_by_name(session=session, name="default").id
        return identity.bind(
            session=session, project_id=pid, identities=identities, now=now
        ).user_id


def message(
    runtime: Runtime,
    now: datetime,
    *,
    user_id: int,
    channel: str,
    key: str,
    status: str = "prepared",
    **values: Any,
) -> int:
    """One outbox message (then forced to ``status`` with ``values``)."""
    with runtime.db.unit_of_work() as session:
        pid = projects.get_by_name(session=session, name="default").id
        spec = outbox.register_spec(
            session=session,
            project_id=pid,
            owner=f"test:{channel}",
            channel=channel,
            purpose="marketing",
            content_id=None,
            template={"text": "x"},
            config={},
        )
        ids = outbox.enqueue(
            session=session,
            project_id=pid,
            messages=[
                outbox.NewMessage(
                    key=key,
                    user_id=user_id,
                    spec_id=spec,
                    channel=channel,
                    purpose="marketing",
                    journey_id=values.pop("journey_id", 7),
                    version_id=values.pop("version_id", 1),
                    node_id=values.pop("node_id", "send"),
                    variant=values.pop("variant", "A"),
                )
            ],
            now=now,
        )
        message_id = ids[key]
        session.execute(
            update(Message).where(Message.id == message_id).values(status=status, **values)
        )
        return message_id
