"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from jisr.core import db

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: every served node's database answers and is migrated",
    responses={503: {"description": "A node is not ready; `nodes` says which and why."}},
)
def readyz(request: Request) -> JSONResponse:
    report: dict[str, Any] = {}
    ready = True
    for name, node in request.app.state.nodes.items():
        try:
            with node.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
            if db.is_up_to_date(node.engine):
                report[name] = {"status": "ok"}
            else:
                ready = False
                report[name] = {"status": "migrations-pending", "detail": "run `jisr db upgrade`"}
        except sa.exc.SQLAlchemyError as error:
            ready = False
            report[name] = {"status": "database-unreachable", "detail": type(error).__name__}
    return JSONResponse(
        {"status": "ok" if ready else "not-ready", "nodes": report},
        status_code=200 if ready else 503,
    )
