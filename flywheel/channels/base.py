"""The channel interface: what every adapter (webhook, email, SMS, WeCom, push …) implements.

The dispatcher claims due messages from the outbox, runs the compliance gate, renders the
content, resolves each customer's address with :meth:`Channel.address`, then hands a batch to
:meth:`Channel.send` and records one :class:`Outcome` per message. Adapters never touch the
database: retries, backoff, dead-lettering, fallback channels and system events are the
dispatcher's job, driven by the outcome kind.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from flywheel.config import Settings


@dataclass
class Outgoing:
    """One rendered message ready for a provider."""

    message_id: int
    idempotency_key: str
    project_id: int
    user_id: int
    channel: str
    purpose: str
    #: The recipient on this channel (mobile, email, openid, registration id, webhook URL …).
    address: str
    body: str
    subject: str | None = None
    html: str | None = None
    title: str | None = None
    link: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    #: The send spec's channel options (decrypted), e.g. webhook secret, SMS template code.
    config: dict[str, Any] = field(default_factory=dict)
    #: The customer's data the payload may carry (webhook body, advisor task, slot card).
    context: dict[str, Any] = field(default_factory=dict)
    journey_id: int | None = None
    version_id: int | None = None
    node_id: str | None = None
    variant: str | None = None
    #: Send attempt number (1 for the first); a re-send after a crash keeps the key.
    attempt: int = 1
    #: The customer's profile properties, for adapters that need more than the address
    #: (advisor task: branch). Personal data: never log it or add it to payloads by default.
    profile: dict[str, Any] = field(default_factory=dict)


class OutcomeKind(StrEnum):
    #: Accepted by the provider (receipt may follow).
    SENT = "sent"
    #: Delivered now (in-app slot stored, advisor task created, webhook answered 2xx).
    DELIVERED = "delivered"
    #: Try again later (timeout, 5xx, 429, throttled); ``retry_after`` seconds when known.
    RETRY = "retry"
    #: Will never succeed (4xx, invalid recipient, template rejected).
    FAILED = "failed"
    #: The channel cannot send now (circuit open, not configured): use the fallback channel.
    UNAVAILABLE = "unavailable"


@dataclass
class Outcome:
    kind: OutcomeKind
    provider_message_id: str | None = None
    #: Short machine code (``http_503``, ``timeout``, ``quota_exceeded`` …).
    reason: str | None = None
    detail: str | None = None
    retry_after: float | None = None


@dataclass
class ChannelContext:
    """What an adapter is built with: process settings and the project's channel account
    (provider credentials and options, decrypted; empty when the channel needs none)."""

    settings: Settings
    project_id: int
    account: dict[str, Any] = field(default_factory=dict)


class Channel(ABC):
    """A way to reach a customer. One instance per (project, channel) in a dispatcher."""

    name: ClassVar[str]
    #: The family compliance rules may name instead of each adapter (``wechat`` for the
    #: template and subscribe messages, ``wecom``, ``push``); None: the adapter's own name.
    family: ClassVar[str | None] = None
    #: Customer-facing channels pass the whole gate; internal ones (advisor tasks) skip quiet
    #: hours, caps and consent but keep suitability and content approval.
    customer_facing: ClassVar[bool] = True
    #: Whether the adapter talks to a provider account that rate limits, retries and a
    #: circuit breaker protect (``resilience.guard``); not webhooks (one endpoint per
    #: journey, the dispatcher's backoff applies) nor SMTP relays configured in settings.
    provider_guarded: ClassVar[bool] = True
    #: Whether :meth:`address` reads ``identities`` (the dispatcher loads them only then).
    needs_identities: ClassVar[bool] = True

    def __init__(self, context: ChannelContext) -> None:
        self.context = context

    @abstractmethod
    def address(
        self,
        *,
        profile: Mapping[str, Any],
        identities: Mapping[str, Sequence[str]],
        config: Mapping[str, Any],
    ) -> str | None:
        """The customer's recipient on this channel, or None when the customer has none
        (the dispatcher then tries the fallback channel)."""

    @abstractmethod
    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        """Send a batch; exactly one outcome per message, in order. Never raises for a
        provider problem: classify it as RETRY / FAILED / UNAVAILABLE."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


class StoringChannel(Channel):
    """A channel whose delivery is a row in Flywheel's own database (in-app slot card,
    advisor task). The dispatcher calls :meth:`store` inside the transaction that records the
    outcomes, so the row and the message status commit together (exactly once)."""

    @abstractmethod
    def store(self, session: Session, messages: Sequence[Outgoing], now: datetime) -> list[Outcome]:
        """Write the rows for ``messages`` (flush only); one outcome per message, in order."""

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        raise NotImplementedError("a storing channel is delivered with store()")


ChannelFactory = Callable[[ChannelContext], Channel]
REGISTRY: dict[str, ChannelFactory] = {}


def register(name: str) -> Callable[[type[Channel]], type[Channel]]:
    """Class decorator: make an adapter available under ``name``."""

    def wrap(cls: type[Channel]) -> type[Channel]:
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


def family_of(name: str) -> str:
    """The channel family of adapter ``name`` (its own name when it has none or is unknown)."""
    family = getattr(REGISTRY.get(name), "family", None)
    return family if isinstance(family, str) and family else name


def known_channels() -> list[str]:
    return sorted(REGISTRY)
