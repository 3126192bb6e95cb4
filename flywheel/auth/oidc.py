"""Optional OIDC login (authorization-code flow with PKCE) through Authlib and joserfc.

``/api/v1/auth/oidc/login`` redirects the browser to the IdP with ``state``, ``nonce`` and a
PKCE challenge, keeping them in a short-lived signed cookie; ``/callback`` checks the state,
exchanges the code, verifies the id_token (signature against the IdP's JWKS, issuer, audience,
expiry, nonce) and hands back the claims. Mapping claims to a console user is
:func:`flywheel.auth.service.login_external`'s job.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from authlib.integrations.httpx_client import OAuth2Client  # type: ignore[import-untyped]
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from flywheel.core.errors import NotFound, Unauthenticated, Unavailable

FLOW_COOKIE = "flywheel_oidc"
FLOW_SECONDS = 600
_METADATA_TTL = 300.0


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    scopes: str = "openid email profile"
    username_claim: str = "preferred_username"


@dataclass(frozen=True)
class OidcIdentity:
    """What the IdP vouches for: the username claim and a verified email, when given."""

    subject: str
    username: str | None
    email: str | None


_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_metadata_lock = threading.Lock()


def require_config(config: OidcConfig | None) -> OidcConfig:
    if config is None:
        raise NotFound("OIDC login is not configured (FLYWHEEL_OIDC_ISSUER)")
    return config


def discover(issuer: str) -> dict[str, Any]:
    """The IdP's ``/.well-known/openid-configuration``, cached for five minutes."""
    with _metadata_lock:
        cached = _metadata.get(issuer)
        if cached and time.monotonic() - cached[0] < _METADATA_TTL:
            return cached[1]
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        answer = httpx.get(url, timeout=10.0)
        answer.raise_for_status()
        metadata: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise Unavailable(f"OIDC provider discovery failed: {type(exc).__name__}") from exc
    if metadata.get("issuer") != issuer:
        raise Unavailable("OIDC provider metadata names another issuer")
    with _metadata_lock:
        _metadata[issuer] = (time.monotonic(), metadata)
    return metadata


def _sign(secret_key: str, payload: bytes) -> str:
    mac = hmac.new(secret_key.encode(), b"oidc|" + payload, hashlib.sha256).digest()
    return (
        base64.urlsafe_b64encode(payload).decode().rstrip("=")
        + "."
        + base64.urlsafe_b64encode(mac).decode().rstrip("=")
    )


def _unsign(secret_key: str, value: str) -> dict[str, Any]:
    body = value.partition(".")[0]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        valid = hmac.compare_digest(_sign(secret_key, payload), value)
        flow: dict[str, Any] = orjson.loads(payload) if valid else {}
    except (ValueError, orjson.JSONDecodeError):
        valid = False
    if not valid:
        raise Unauthenticated("OIDC login flow cookie is invalid; start again")
    return flow


def start_login(config: OidcConfig, *, secret_key: str, now: float) -> tuple[str, str]:
    """The IdP authorization URL and the signed flow cookie value to set."""
    metadata = discover(config.issuer)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    verifier = secrets.token_urlsafe(48)
    with OAuth2Client(
        client_id=config.client_id,
        redirect_uri=config.redirect_uri,
        scope=config.scopes,
        code_challenge_method="S256",
    ) as client:
        url, _ = client.create_authorization_url(
            metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    flow = orjson.dumps({"s": state, "n": nonce, "v": verifier, "e": int(now) + FLOW_SECONDS})
    return str(url), _sign(secret_key, flow)


def finish_login(
    config: OidcConfig, *, code: str, state: str, flow_cookie: str, secret_key: str, now: float
) -> OidcIdentity:
    """Check the flow, exchange ``code``, verify the id_token and return the identity.

    :class:`Unauthenticated` on any mismatch (state, nonce, signature, issuer, audience,
    expiry); :class:`Unavailable` when the IdP cannot be reached.
    """
    flow = _unsign(secret_key, flow_cookie)
    if int(flow.get("e", 0)) < now:
        raise Unauthenticated("OIDC login took too long; start again")
    if not hmac.compare_digest(str(flow.get("s", "")), state):
        raise Unauthenticated("OIDC state mismatch")
    metadata = discover(config.issuer)
    try:
        with OAuth2Client(
            client_id=config.client_id,
            client_secret=config.client_secret,
            redirect_uri=config.redirect_uri,
            token_endpoint_auth_method="client_secret_post",
            timeout=10.0,
        ) as client:
            token = client.fetch_token(
                metadata["token_endpoint"], code=code, code_verifier=flow["v"]
            )
        keys = httpx.get(metadata["jwks_uri"], timeout=10.0).raise_for_status().json()
    except httpx.HTTPError as exc:
        raise Unavailable(f"OIDC provider unreachable: {type(exc).__name__}") from exc
    except Exception as exc:  # Authlib raises its own OAuthError family
        raise Unauthenticated("OIDC code exchange refused") from exc
    id_token = token.get("id_token")
    if not id_token:
        raise Unauthenticated("OIDC provider returned no id_token")
    try:
        decoded = jwt.decode(id_token, KeySet.import_key_set(keys), algorithms=["RS256", "ES256"])
        jwt.JWTClaimsRegistry(
            now=int(now),
            leeway=60,
            iss={"essential": True, "value": config.issuer},
            aud={"essential": True, "value": config.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": flow["n"]},
        ).validate(decoded.claims)
    except (JoseError, ValueError) as exc:
        raise Unauthenticated(f"OIDC id_token rejected: {type(exc).__name__}") from exc
    claims = decoded.claims
    username = claims.get(config.username_claim)
    email = claims.get("email") if claims.get("email_verified", True) is not False else None
    return OidcIdentity(
        subject=str(claims["sub"]),
        username=str(username) if username else None,
        email=str(email) if email else None,
    )
