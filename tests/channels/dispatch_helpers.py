"""Shared by the dispatcher, gate, webhook, email, slot, advisor and kill tests: customers,
send specs, outbox messages, and a local webhook sink that checks signatures."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import select

from flywheel.channels import outbox
from flywheel.channels.dispatch import Dispatcher
from flywheel.channels.models import Message
from flywheel.core.clock import Clock
from flywheel.identity import service as identity
from flywheel.profiles import service as profiles
from flywheel.projects import service as projects
from flywheel.runtime import Runtime

SECRET = "s3cret"


def project_id(runtime: Runtime) -> int:
    with runtime.db.unit_of_work() as session:
        return projects.get_by_name(session=session, name="default").id


def customers(runtime: Runtime, people: Sequence[dict[str, Any]], now: datetime) -> list[int]:
    """Create one customer per profile; their user ids, in order."""
    pid = project_id(runtime)
    with runtime.db.unit_of_work() as session:
        ids = identity.create_users(session=session, project_id=pid, count=len(people), now=now)
        profiles.save_profiles(
            session=session, project_id=pid, profiles=dict(zip(ids, people, strict=True)), now=now
        )
    return ids


def spec(
    runtime: Runtime,
    owner: str,
    *,
    channel: str = "webhook",
    purpose: str = "marketing",
    config: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    content_id: int | None = None,
    fallback: str | None = None,
    product_risk_level: int | None = None,
) -> int:
    with runtime.db.unit_of_work() as session:
        return outbox.register_spec(
            session=session,
            project_id=project_id(runtime),
            owner=owner,
            channel=channel,
            purpose=purpose,
            content_id=content_id,
            template=template if template is not None else {"text": "您好{{ user.name }}"},
            config=config or {},
            fallback_channel=fallback,
            product_risk_level=product_risk_level,
        )


def enqueue(
    runtime: Runtime,
    spec_id: int,
    user_ids: Sequence[int],
    now: datetime,
    *,
    channel: str = "webhook",
    purpose: str = "marketing",
    journey_id: int = 1,
    node_id: str = "send",
    priority: int = 0,
    context: dict[str, Any] | None = None,
    key_prefix: str | None = None,
) -> dict[str, int]:
    prefix = key_prefix or f"j{journey_id}:{node_id}"
    with runtime.db.unit_of_work() as session:
        return outbox.enqueue(
            session=session,
            project_id=project_id(runtime),
            messages=[
                outbox.NewMessage(
                    key=f"{prefix}:{u}",
                    user_id=u,
                    spec_id=spec_id,
                    channel=channel,
                    purpose=purpose,
                    journey_id=journey_id,
                    version_id=1,
                    node_id=node_id,
                    priority=priority,
                    context=context or {},
                )
                for u in user_ids
            ],
            now=now,
        )


def dispatcher(runtime: Runtime, clock: Clock, **kwargs: Any) -> Dispatcher:
    return Dispatcher(
        db=runtime.db,
        warehouse=runtime.warehouse,
        settings=kwargs.pop("settings", runtime.settings),
        clock=clock,
        **kwargs,
    )


def messages(runtime: Runtime) -> dict[int, Message]:
    with runtime.db.unit_of_work() as session:
        return {m.user_id: m for m in session.scalars(select(Message).order_by(Message.id))}


def by_key(runtime: Runtime) -> dict[str, Message]:
    with runtime.db.unit_of_work() as session:
        return {m.idempotency_key: m for m in session.scalars(select(Message))}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    signature_ok: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """A real HTTP server on 127.0.0.1 that checks the HMAC of every request it receives.

    ``answers`` is a list of status codes served in turn (then 200 forever).
    """

    secret: str = SECRET
    answers: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    on_request: Callable[[Received], None] | None = None

    def __post_init__(self) -> None:
        sink = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                expected = (
                    "sha256=" + hmac.new(sink.secret.encode(), body, hashlib.sha256).hexdigest()
                )
                got = self.headers.get("X-Flywheel-Signature", "")
                item = Received(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    hmac.compare_digest(expected, got),
                )
                with lock:
                    sink.received.append(item)
                    status = sink.answers.pop(0) if sink.answers else 200
                if sink.on_request is not None:
                    sink.on_request(item)
                payload = b"{}"
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "7")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
