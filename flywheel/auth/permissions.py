"""Fine-grained permissions and the built-in roles made of them.

A permission is ``<resource>:<action>``. Routes declare the one they need with
``Depends(require("segments:write"))``; nothing else decides access.
"""

from __future__ import annotations

PERMISSIONS: dict[str, str] = {
    "projects:read": "see projects",
    "projects:admin": "create projects and change their settings",
    "ingest:read": "see ingest rejections, keys and identity conflicts",
    "schema:read": "see the event, profile and item property schema (for rule builders)",
    "ingest:admin": "create and revoke ingest keys",
    "customers:read": "look up customers, their profiles and events (within data scope)",
    "customers:write": "bind/unbind identities, edit profiles",
    "pii:view": "see unmasked personal data (audited)",
    "users:export": "export customer lists (audited)",
    "tags:read": "see tags",
    "tags:write": "create and run tags",
    "segments:read": "see segments",
    "segments:write": "create and refresh segments",
    "journeys:read": "see journeys and their statistics",
    "journeys:write": "design journeys",
    "journeys:publish": "publish, pause and stop journeys",
    "journeys:approve": "approve or reject a journey's publication (four-eyes setting)",
    "content:read": "see content",
    "content:write": "write content and submit it for review",
    "content:approve": "approve or reject content",
    "channels:read": "see channel settings",
    "channels:admin": "configure channels",
    "recommend:read": "see recommendations",
    "recommend:write": "configure scenes and strategies",
    "analytics:read": "run analyses and reports",
    "analytics:write": "save, edit and delete analyses and dashboard metrics",
    "advisor:tasks": "work the advisor task inbox",
    "compliance:read": "see compliance settings, consents, opt-outs and black/white lists",
    "compliance:admin": "change compliance settings, consents, opt-outs and lists (audited)",
    "slots:read": "serve in-app slot content to app users and record shows, clicks, dismissals",
    "audit:read": "read the audit log",
    "admin:users": "manage console users and roles",
}

ALL = frozenset(PERMISSIONS)

ROLES: dict[str, frozenset[str]] = {
    "admin": ALL,
    "marketer": frozenset(
        {
            "projects:read",
            "schema:read",
            "customers:read",
            "tags:read",
            "tags:write",
            "segments:read",
            "segments:write",
            "journeys:read",
            "journeys:write",
            "journeys:publish",
            "content:read",
            "content:write",
            "channels:read",
            "recommend:read",
            "recommend:write",
            "analytics:read",
            "analytics:write",
            "compliance:read",
        }
    ),
    "analyst": frozenset(
        {
            "projects:read",
            "schema:read",
            "ingest:read",
            "customers:read",
            "tags:read",
            "segments:read",
            "journeys:read",
            "content:read",
            "recommend:read",
            "analytics:read",
            "analytics:write",
        }
    ),
    "compliance": frozenset(
        {
            "projects:read",
            "journeys:read",
            "journeys:approve",
            "content:read",
            "content:approve",
            "channels:read",
            "analytics:read",
            "compliance:read",
            "compliance:admin",
        }
    ),
    "advisor": frozenset({"projects:read", "customers:read", "advisor:tasks", "recommend:read"}),
    "auditor": frozenset({"projects:read", "audit:read"}),
    #: An app backend (mobile app / web site server) serving in-app slots with an API token.
    "app_backend": frozenset({"projects:read", "slots:read"}),
}
