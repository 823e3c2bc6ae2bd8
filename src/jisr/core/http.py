"""FastAPI dependencies that every block's routers may use without importing ``jisr.web``.

The app factory (``jisr.web.app.create_app``) puts the served nodes in
``app.state.nodes``; these dependencies read them, so a block's ``api.py`` can say
``Annotated[Session, session_of("idp")]`` and stay independent of the web layer (an
import-linter contract). ``jisr.web.deps`` re-exports them.

Always take a session through ``session_of``: it commits BEFORE the response is sent. FastAPI's
default for dependencies with ``yield`` ("request" scope) runs their exit code after the
client already has its answer, so a write could be acknowledged and then fail to commit, and
a client's next request could miss what it was just told was done (seen: a login form posted
right after the page that created its transaction was refused on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from jisr.core.i18n import negotiate
from jisr.core.instance import Node


def node(node_name: str) -> Callable[[Request], Node]:
    """A dependency returning the served node ``node_name`` (its keys, its audit signer)."""

    def dependency(request: Request) -> Node:
        served: Node = request.app.state.nodes[node_name]
        return served

    return dependency


def node_session(node_name: str) -> Callable[..., Iterator[Session]]:
    """A dependency yielding a session of ``node_name``'s database: one transaction per
    request, committed when the handler returns, rolled back when it raises."""

    def dependency(request: Request) -> Iterator[Session]:
        served: Node = request.app.state.nodes[node_name]
        with served.session() as session:
            yield session

    return dependency


def session_of(node_name: str) -> Any:
    """``Depends`` for a session of ``node_name`` committed before the response leaves."""
    return Depends(node_session(node_name), scope="function")


def request_language(request: Request) -> str:
    """The request's language from ``Accept-Language`` (ar, fr or en; Arabic by default)."""
    return negotiate(request.headers.get("accept-language"))


__all__ = ["node", "node_session", "request_language", "session_of"]
