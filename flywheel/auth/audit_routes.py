"""Reading the audit trail (``audit:read``). The log itself lives in ``flywheel.audit``; its
routes sit here because access decisions belong to ``auth``, which ``audit`` may not import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flywheel.audit import service as audit
from flywheel.audit.schemas import AuditFilter, AuditPage, VerifyReport
from flywheel.auth.deps import require
from flywheel.auth.schemas import Principal
from flywheel.http.deps import SessionDep

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, Depends(require("audit:read"))]


@router.get("", response_model=AuditPage)
def search_audit(
    _: Auditor, session: SessionDep, filters: Annotated[AuditFilter, Query()]
) -> AuditPage:
    """Audit entries, newest first, filtered by actor, action, target prefix, project, time."""
    return audit.search(session=session, filters=filters)


@router.get("/verify", response_model=VerifyReport)
def verify_audit(_: Auditor, session: SessionDep) -> VerifyReport:
    """Walk the hash chain; ``ok`` false names the first edited or deleted row."""
    return audit.verify(session=session)
