"""Sign-in and self-service: login (bearer and cookie), logout, me, password, API tokens, OIDC."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse

from flywheel.auth import oidc, service
from flywheel.auth.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    SignedIn,
    csrf_token_for,
    current_token,
)
from flywheel.auth.ratelimit import Limit, RateLimiter, TokenBuckets, enforce
from flywheel.auth.schemas import (
    ApiTokenIn,
    ApiTokenOut,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    TokenOut,
)
from flywheel.config import Settings
from flywheel.core.errors import Unauthenticated
from flywheel.core.ids import sha256_hex
from flywheel.http.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

#: Routes anyone may call: signing in needs no prior credentials.
PUBLIC_ROUTES = frozenset(
    {
        ("POST", "/api/v1/auth/login"),
        ("GET", "/api/v1/auth/oidc/login"),
        ("GET", "/api/v1/auth/oidc/callback"),
    }
)

_fallback_limiter = TokenBuckets()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = getattr(request.app.state, "rate_limiter", _fallback_limiter)
    return limiter


def _per_minute(count: int) -> Limit | None:
    return Limit.per_minute(count) if count > 0 else None


def _set_session(response: Response, settings: Settings, token: str) -> str:
    """Session and CSRF cookies for ``token``: browser-session cookies (no Max-Age), so closing
    the browser ends them; the token itself expires on the server at its own lifetime."""
    csrf = csrf_token_for(settings.secret_key, token)
    common = {"secure": settings.cookie_secure, "path": "/"}
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", **common)  # type: ignore[arg-type]
    # Readable by the console's JS, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(CSRF_COOKIE, csrf, httponly=False, samesite="strict", **common)  # type: ignore[arg-type]
    return csrf


@router.post("/login", response_model=TokenOut)
def login(body: LoginIn, request: Request, response: Response, runtime: RuntimeDep) -> TokenOut:
    """Exchange username + password for a bearer token (and optionally a session cookie)."""
    settings = runtime.settings
    ip = client_ip(request)
    limiter = _limiter(request)
    enforce(
        limiter,
        f"login:user:{sha256_hex(body.username)[:32]}",
        _per_minute(settings.login_rate_per_user_per_minute),
        "login attempts for this user",
    )
    enforce(
        limiter,
        f"login:ip:{ip}",
        _per_minute(settings.login_rate_per_ip_per_minute),
        "login attempts from this address",
    )
    with runtime.db.unit_of_work() as session:
        outcome = service.login(
            session=session,
            username=body.username,
            password=body.password,
            now=runtime.clock(),
            token_minutes=settings.access_token_minutes,
            client_ip=ip,
        )
    if outcome.error:
        raise Unauthenticated(outcome.error)
    csrf = _set_session(response, settings, outcome.token) if body.session_cookie else None
    return TokenOut(access_token=outcome.token, expires_in=outcome.expires_in, csrf_token=csrf)


@router.post("/logout", status_code=204)
def logout(
    principal: SignedIn,
    token: Annotated[str, Depends(current_token)],
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
) -> Response:
    """Revoke the token of this request and clear the session cookies."""
    service.logout(session=session, principal=principal, token=token, now=runtime.clock())
    response.status_code = 204
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=MeOut)
def me(principal: SignedIn) -> MeOut:
    return MeOut(
        username=principal.username,
        role=principal.role,
        permissions=sorted(principal.permissions),
        branch_scope=list(principal.branch_scope) if principal.branch_scope is not None else None,
        advisor_id=principal.advisor_id,
    )


@router.post("/password", status_code=204)
def change_password(
    body: PasswordChangeIn, principal: SignedIn, session: SessionDep, runtime: RuntimeDep
) -> Response:
    """Change one's own password; every token of the user is revoked (sign in again)."""
    service.change_password(
        session=session,
        principal=principal,
        current_password=body.current_password,
        new_password=body.new_password,
        now=runtime.clock(),
    )
    return Response(status_code=204)


@router.get("/tokens", response_model=list[ApiTokenOut])
def list_tokens(principal: SignedIn, session: SessionDep) -> list[ApiTokenOut]:
    return service.list_api_tokens(session=session, principal=principal)


@router.post("/tokens", response_model=ApiTokenOut, status_code=201)
def create_token(
    body: ApiTokenIn, principal: SignedIn, session: SessionDep, runtime: RuntimeDep
) -> ApiTokenOut:
    """A named API token with the caller's own role; its value is shown only here."""
    return service.create_api_token(
        session=session, principal=principal, name=body.name, days=body.days, now=runtime.clock()
    )


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: int, principal: SignedIn, session: SessionDep, runtime: RuntimeDep
) -> Response:
    service.revoke_api_token(
        session=session, principal=principal, token_id=token_id, now=runtime.clock()
    )
    return Response(status_code=204)


# -- OIDC ------------------------------------------------------------------------------------
def _oidc_config(settings: Settings) -> oidc.OidcConfig | None:
    if not settings.oidc_issuer:
        return None
    return oidc.OidcConfig(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        redirect_uri=settings.oidc_redirect_uri,
        scopes=settings.oidc_scopes,
        username_claim=settings.oidc_username_claim,
    )


@router.get("/oidc/login", status_code=302, response_class=Response)
def oidc_login(runtime: RuntimeDep) -> Response:
    """Redirect to the configured OIDC provider (404 when OIDC is not configured)."""
    settings = runtime.settings
    config = oidc.require_config(_oidc_config(settings))
    url, flow = oidc.start_login(
        config, secret_key=settings.secret_key, now=runtime.clock().timestamp()
    )
    response = Response(status_code=302, headers={"Location": url})
    # Lax, not Strict: the IdP sends the browser back with a cross-site top-level GET.
    response.set_cookie(
        oidc.FLOW_COOKIE,
        flow,
        max_age=oidc.FLOW_SECONDS,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/api/v1/auth/oidc",
    )
    return response


@router.get("/oidc/callback", response_class=HTMLResponse)
def oidc_callback(
    request: Request,
    runtime: RuntimeDep,
    code: Annotated[str, Query(max_length=2048)],
    state: Annotated[str, Query(max_length=256)],
) -> Response:
    """Finish the OIDC flow: verify, map to a console user, set the session cookie.

    Answers a tiny same-origin page that moves on to the console, so the SameSite=Strict
    session cookie is sent on the next navigation.
    """
    settings = runtime.settings
    config = oidc.require_config(_oidc_config(settings))
    identity = oidc.finish_login(
        config,
        code=code,
        state=state,
        flow_cookie=request.cookies.get(oidc.FLOW_COOKIE, ""),
        secret_key=settings.secret_key,
        now=runtime.clock().timestamp(),
    )
    with runtime.db.unit_of_work() as session:
        outcome = service.login_external(
            session=session,
            username=identity.username,
            email=identity.email,
            now=runtime.clock(),
            token_minutes=settings.access_token_minutes,
            method="oidc",
            client_ip=client_ip(request),
        )
    if outcome.error:
        raise Unauthenticated(outcome.error)
    target = settings.oidc_post_login_redirect
    response = HTMLResponse(
        '<!doctype html><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="0;url={_html_attr(target)}">'
        "<title>Signed in</title>"
    )
    _set_session(response, settings, outcome.token)
    response.delete_cookie(oidc.FLOW_COOKIE, path="/api/v1/auth/oidc")
    return response


def _html_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
