"""A tiny real OIDC provider for tests: discovery, authorize (auto-consent), token, JWKS.

It signs id_tokens with a fresh RS256 key, checks the client secret and the PKCE verifier,
and serves over real HTTP (uvicorn on a free port) — no mocks.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Form, HTTPException
from fastapi.responses import RedirectResponse
from joserfc import jwt
from joserfc.jwk import RSAKey


@dataclass
class Provider:
    issuer: str = ""
    client_id: str = "flywheel-console"
    client_secret: str = "idp-secret-123"
    #: Claims of the person who "signs in" at the IdP.
    claims: dict[str, Any] = field(default_factory=dict)
    #: Set to corrupt the nonce in the next id_token.
    wrong_nonce: bool = False
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1"}))
    codes: dict[str, dict[str, str]] = field(default_factory=dict)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        def discovery() -> dict[str, Any]:
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "response_types_supported": ["code"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/authorize")
        def authorize(
            client_id: str,
            redirect_uri: str,
            state: str,
            nonce: str,
            code_challenge: str,
            code_challenge_method: str,
            response_type: str,
        ) -> RedirectResponse:
            if client_id != self.client_id or response_type != "code":
                raise HTTPException(400, "bad client")
            assert code_challenge_method == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {
                "nonce": nonce,
                "challenge": code_challenge,
                "redirect": redirect_uri,
            }
            return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, 'state': state})}")

        @app.post("/token")
        def token(
            grant_type: str = Form(),
            code: str = Form(),
            redirect_uri: str = Form(),
            client_id: str = Form(),
            client_secret: str = Form(),
            code_verifier: str = Form(),
        ) -> dict[str, Any]:
            grant = self.codes.pop(code, None)
            if grant is None or client_secret != self.client_secret or client_id != self.client_id:
                raise HTTPException(400, "invalid_grant")
            digest = hashlib.sha256(code_verifier.encode()).digest()
            if base64.urlsafe_b64encode(digest).decode().rstrip("=") != grant["challenge"]:
                raise HTTPException(400, "invalid_grant: PKCE")
            assert grant_type == "authorization_code" and redirect_uri == grant["redirect"]
            now = int(time.time())
            claims = {
                "iss": self.issuer,
                "aud": self.client_id,
                "iat": now,
                "exp": now + 300,
                "nonce": "forged" if self.wrong_nonce else grant["nonce"],
                **self.claims,
            }
            id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key)
            return {"access_token": "at", "token_type": "Bearer", "id_token": id_token}

        @app.get("/jwks")
        def jwks() -> dict[str, Any]:
            return {"keys": [self.key.as_dict(private=False)]}

        return app


@contextmanager
def running_provider() -> Iterator[Provider]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    provider = Provider(issuer=f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(provider.app(), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("OIDC provider did not start")
        time.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        thread.join(10)
