"""Data scopes: which customers a principal may see.

A principal limited to branches sees customers whose ``branch`` property is one of them; an
advisor sees only customers whose ``advisor_id`` is theirs. Services apply the scope; routes
only pass the principal along.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flywheel.auth.schemas import Principal

BRANCH_PROPERTY = "branch"
ADVISOR_PROPERTY = "advisor_id"


def is_unrestricted(principal: Principal) -> bool:
    return principal.branch_scope is None and principal.advisor_id is None


def in_scope(principal: Principal, properties: Mapping[str, Any]) -> bool:
    """Whether a customer with these profile properties is visible to ``principal``."""
    if principal.branch_scope is not None and properties.get(BRANCH_PROPERTY) not in set(
        principal.branch_scope
    ):
        return False
    return not (
        principal.advisor_id is not None
        and properties.get(ADVISOR_PROPERTY) != principal.advisor_id
    )


def scope_predicate(principal: Principal, *, alias: str = "u") -> tuple[str, list[Any]]:
    """A SQL predicate over the warehouse users table (alias ``alias``) and its parameters.

    ``("TRUE", [])`` for an unrestricted principal. The predicate refers to columns that may not
    exist yet in an empty project; callers add them with ``Warehouse.ensure_columns`` first.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if principal.branch_scope is not None:
        if not principal.branch_scope:
            return "FALSE", []
        marks = ", ".join("?" for _ in principal.branch_scope)
        clauses.append(f'{alias}."{BRANCH_PROPERTY}" IN ({marks})')
        params.extend(principal.branch_scope)
    if principal.advisor_id is not None:
        clauses.append(f'{alias}."{ADVISOR_PROPERTY}" = ?')
        params.append(principal.advisor_id)
    return (" AND ".join(clauses) or "TRUE"), params
