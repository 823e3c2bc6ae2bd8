"""Federated peers' Status List Tokens, kept in this node's database.

A verifier checks a peer credential's status against the copy stored here, never by calling
the peer: ``store`` keeps a token the caller verified (``jisr.credentials.trust.refresh_peer``
fetches and verifies them when it refreshes the peer's trust list), ``PeerStatus`` reads the
stored copy. A copy is usable until ``stale_at`` (fetch time plus the token's ``ttl``, capped
by ``credentials_status_ttl_seconds``: a revocation reaches this verifier within one TTL of
refreshes) and never past the token's ``exp``; otherwise the status check fails with
``status-list-expired``, and with ``status-list-unavailable`` when no copy is stored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.credentials import sdjwt
from jisr.credentials.models import PeerStatusList
from jisr.credentials.status_list import StatusUnavailable, decode_list, get_status


def store(
    session: Session,
    *,
    uri: str,
    peer: str,
    issuer: str,
    token: str,
    payload: dict[str, Any],
    max_ttl: int,
    now: dt.datetime | None = None,
) -> PeerStatusList:
    """Keep (insert or replace) the verified ``token`` of ``uri``; ``payload`` is its claims."""
    moment = now or utcnow()
    ttl = payload.get("ttl")
    keep = min(int(ttl), max_ttl) if isinstance(ttl, int | float) and ttl > 0 else max_ttl
    expires = dt.datetime.fromtimestamp(int(payload["exp"]), dt.UTC)
    row = session.scalars(sa.select(PeerStatusList).where(PeerStatusList.uri == uri)).one_or_none()
    if row is None:
        row = PeerStatusList(uri=uri)
        session.add(row)
    row.peer, row.issuer, row.token = peer, issuer, token
    row.fetched_at = moment
    row.stale_at = min(moment + dt.timedelta(seconds=keep), expires)
    row.expires_at = expires
    session.flush()
    return row


def stored(session: Session, *, peer: str | None = None) -> list[PeerStatusList]:
    query = sa.select(PeerStatusList).order_by(PeerStatusList.uri)
    if peer is not None:
        query = query.where(PeerStatusList.peer == peer)
    return list(session.scalars(query))


class PeerStatus:
    """The ``StatusSource`` of peer status lists: the stored copies only (decoded once per
    instance, which lives for one request or one command)."""

    def __init__(self, session: Session, *, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._session = session
        self._clock = clock
        self._lists: dict[str, tuple[bytes, int]] = {}

    def _load(self, uri: str) -> tuple[bytes, int]:
        row = self._session.scalars(
            sa.select(PeerStatusList).where(PeerStatusList.uri == uri)
        ).one_or_none()
        if row is None:
            raise StatusUnavailable(
                "status-list-unavailable",
                f"no stored copy of the status list {uri}: refresh the peer's trust list",
            )
        now = self._clock()
        if now >= row.expires_at:
            raise StatusUnavailable(
                "status-list-expired", f"the stored status list {uri} is past its exp"
            )
        if now >= row.stale_at:
            raise StatusUnavailable(
                "status-list-expired",
                f"the stored status list {uri} is older than its ttl: refresh the peer's "
                "trust list",
            )
        try:  # verified when stored; decoded here
            payload = sdjwt.decode_segment(row.token.split(".")[1])
            return decode_list(payload.get("status_list") or {})
        except (ValueError, IndexError, AttributeError) as error:
            raise StatusUnavailable("status-list-invalid", str(error)) from error

    def status(self, uri: str, index: int) -> int:
        found = self._lists.get(uri)
        if found is None:
            found = self._lists[uri] = self._load(uri)
        data, bits = found
        try:
            return get_status(data, index, bits)
        except IndexError as error:
            raise StatusUnavailable("status-index-out-of-range", str(error)) from error


__all__ = ["PeerStatus", "store", "stored"]
