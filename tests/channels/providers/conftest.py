"""One provider simulator per test session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flywheel.channels.base import Outgoing
from tests.channels.providers.sim import Simulator, running_simulator


@pytest.fixture(scope="session")
def _simulator() -> Iterator[Simulator]:
    with running_simulator() as sim:
        yield sim


@pytest.fixture
def sim(_simulator: Simulator) -> Simulator:
    _simulator.reset()
    from flywheel.channels.providers.tokens import TOKENS

    TOKENS._entries.clear()
    return _simulator


def outgoing(message_id: int, address: str, channel: str = "sms", **extra: Any) -> Outgoing:
    """A rendered message as the dispatcher hands it to an adapter."""
    values: dict[str, Any] = {
        "message_id": message_id,
        "idempotency_key": f"j1:v1:send:{message_id}",
        "project_id": 1,
        "user_id": 100 + message_id,
        "channel": channel,
        "purpose": "marketing",
        "address": address,
        "body": f"您好，第{message_id}号通知",
        "fields": {"name": f"客户{message_id}", "fund": "沪深300指数"},
        "config": {"template": "notice"},
    }
    values.update(extra)
    return Outgoing(**values)
