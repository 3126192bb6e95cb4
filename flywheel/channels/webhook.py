"""The signed webhook channel: one JSON POST per message.

Each request carries ``X-Flywheel-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes
with the spec's secret>`` and ``Idempotency-Key: <message key>`` (the same on every retry and
on a re-send after a crash, so the receiver can drop duplicates). 2xx = delivered; 408, 429,
5xx, timeouts and connection errors = retry (``Retry-After`` honoured); other answers = failed.

SSRF guard: the target host is resolved and every address must be public, or inside one of
the ``webhook_allow`` CIDRs (default ``127.0.0.0/8``); the request then goes to the checked
address (the Host header and TLS SNI keep the name), so a DNS answer cannot change between
the check and the connection. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson

from flywheel.channels.base import Channel, ChannelContext, Outcome, OutcomeKind, Outgoing, register

SIGNATURE_HEADER = "X-Flywheel-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
_RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "x-flywheel-signature", "idempotency-key"}
)
_DNS_TTL = 60.0

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=<hex>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def parse_allow(text: str) -> list[IPNetwork]:
    """``"127.0.0.0/8, 10.1.0.0/16"`` → networks (empty entries ignored)."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


def target_allowed(address: IPAddress, allow: Sequence[IPNetwork]) -> bool:
    """Public addresses always; private, loopback, link-local, multicast, reserved and
    unspecified ones only inside ``allow``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in net for net in allow if net.version == address.version):
        return True
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_link_local
    )


class SsrfRefused(Exception):
    """The target resolves to an address the guard refuses."""


def payload(message: Outgoing) -> bytes:
    """The exact JSON body posted for ``message`` (what the signature covers)."""
    return orjson.dumps(
        {
            "message_id": message.message_id,
            "idempotency_key": message.idempotency_key,
            "attempt": message.attempt,
            "user_id": message.user_id,
            "journey_id": message.journey_id,
            "journey_version": message.version_id,
            "node_id": message.node_id,
            "variant": message.variant,
            "channel": message.channel,
            "purpose": message.purpose,
            "text": message.body,
            "subject": message.subject,
            "title": message.title,
            "link": message.link,
            "fields": message.fields,
            "context": message.context,
        },
        option=orjson.OPT_NON_STR_KEYS,
    )


@register("webhook")
class WebhookChannel(Channel):
    """POSTs each message to the spec's ``url`` signed with its ``secret``.

    Spec config: ``{"url": "https://…", "secret": "…", "headers": {…}}``.
    """

    provider_guarded = False

    needs_identities = False

    def __init__(self, context: ChannelContext) -> None:
        super().__init__(context)
        settings = context.settings
        self.allow = parse_allow(settings.webhook_allow)
        self.timeout = settings.webhook_timeout_seconds
        self.concurrency = settings.webhook_concurrency
        self._client: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._dns: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}
        self._targets: dict[str, tuple[float, tuple[str, str, str]]] = {}

    def address(
        self,
        *,
        profile: Mapping[str, Any],  # noqa: ARG002
        identities: Mapping[str, Sequence[str]],  # noqa: ARG002
        config: Mapping[str, Any],
    ) -> str | None:
        url = config.get("url")
        return url if isinstance(url, str) and url else None

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx: httpcore's pool costs milliseconds of CPU per request
        # under concurrency (measured: 290 vs 3,000+ requests/s, see docs/benchmarks.md).
        if self._client is None:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency, use_dns_cache=False, enable_cleanup_closed=True
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                trust_env=False,
                auto_decompress=False,
            )
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._client

    async def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            return [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            pass
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        found = [ipaddress.ip_address(info[4][0]) for info in infos]
        self._dns[(host, port)] = (time.monotonic() + _DNS_TTL, found)
        return found

    async def _pinned(self, url: str) -> tuple[str, str, str]:
        """(url to the checked address, Host header, SNI name); :class:`SsrfRefused`."""
        cached = self._targets.get(url)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        pinned = await self._pin(url)
        self._targets[url] = (time.monotonic() + _DNS_TTL, pinned)
        return pinned

    async def _pin(self, url: str) -> tuple[str, str, str]:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webhook url must be http(s)://host/…")
        host = parts.hostname
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = await self._resolve(host, port)
        if not addresses or not all(target_allowed(a, self.allow) for a in addresses):
            raise SsrfRefused(host)
        chosen = addresses[0]
        literal = f"[{chosen}]" if chosen.version == 6 else str(chosen)
        netloc = f"{literal}:{port}" if parts.port else literal
        host_header = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=netloc)), host_header, host

    async def _post(self, message: Outgoing) -> Outcome:
        url = message.address
        try:
            target, host_header, sni = await self._pinned(url)
        except SsrfRefused:
            return Outcome(OutcomeKind.FAILED, reason="ssrf_refused", detail="target refused")
        except (ValueError, OSError) as exc:
            kind = OutcomeKind.RETRY if isinstance(exc, OSError) else OutcomeKind.FAILED
            return Outcome(kind, reason="bad_target", detail=type(exc).__name__)
        body = payload(message)
        headers = {
            str(k): str(v)
            for k, v in dict(message.config.get("headers") or {}).items()
            if str(k).lower() not in _RESERVED_HEADERS
        }
        headers.update(
            {
                "Host": host_header,
                "Content-Type": "application/json",
                "User-Agent": "flywheel-webhook/1",
                IDEMPOTENCY_HEADER: message.idempotency_key,
                "X-Flywheel-Message-Id": str(message.message_id),
            }
        )
        secret = message.config.get("secret")
        if isinstance(secret, str) and secret:
            headers[SIGNATURE_HEADER] = sign(body, secret)
        client = self._http()
        assert self._semaphore is not None
        try:
            async with (
                self._semaphore,
                client.post(
                    target,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    server_hostname=sni if target.startswith("https") else None,
                ) as answer,
            ):
                await answer.read()
                return classify(answer.status, answer.headers.get("Retry-After"))
        except TimeoutError:
            return Outcome(OutcomeKind.RETRY, reason="timeout")
        except aiohttp.ClientError as exc:
            return Outcome(OutcomeKind.RETRY, reason="connect_error", detail=type(exc).__name__)

    async def send(self, messages: Sequence[Outgoing]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._post(m) for m in messages)))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def classify(status: int, retry_after: str | None = None) -> Outcome:
    """2xx delivered; 408/429/5xx retry; anything else failed (``http_<status>``)."""
    reason = f"http_{status}"
    if 200 <= status < 300:
        return Outcome(OutcomeKind.DELIVERED, reason=None)
    if status in (408, 429) or status >= 500:
        delay: float | None = None
        if retry_after and retry_after.strip().isdigit():
            delay = float(retry_after.strip())
        return Outcome(OutcomeKind.RETRY, reason=reason, retry_after=delay)
    return Outcome(OutcomeKind.FAILED, reason=reason)
