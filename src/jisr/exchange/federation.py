"""Cross-border exchange: what a registry shares with, and learns from, federated instances.

Design
------
Trust across the border starts from the federation agreement (``jisr.core.federation``):
both registries sign it, and each pins the other's *federation key* by its thumbprint. Like
X-Road's "shared parameters", each registry publishes the part of its global configuration
another instance needs to reach its gateways, signed with that pinned key
(``GET /exchange/federation/shared-params``, a compact JWS, ``typ``
``jisr-shared-params+json``): instance, version and times, CA certificate, CRL and revoked
serials, members, subsystems and gateways (addresses, TLS and signing certificates), never
service URLs or access rights.

A registry downloads the shared parameters of each peer it has an agreement with in force
(from the peer's public URL the agreement's signature header names, or one given),
verifies them with the pinned key and keeps the newest (``exchange_peer_confs``). It puts
the agreement and those parameters into its own signed global configuration
(``federations``); every gateway verifies both again (the agreement's two signatures, the
parameters against the key the agreement pins), so a gateway accepts a foreign certificate
only through an agreement its own registry signed and distributed. Parameters are
downloaded again when half their validity has passed (at most once per
``exchange_globalconf_refresh_seconds`` and peer, when gateways ask for the configuration),
or at once with ``jisr exchange federation sync``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core import federation as agreements
from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.core.logging import get_logger
from jisr.exchange import globalconf
from jisr.exchange.errors import PeerConfRefused
from jisr.exchange.models import PeerConf

SHARED_PATH = "/exchange/federation/shared-params"
STALE_FETCH_TIMEOUT = 3.0
log = get_logger("jisr.exchange")


@dataclass(frozen=True)
class PeerConfInfo:
    peer: str
    agreement_id: str
    version: int
    expires_at: dt.datetime
    fetched_at: dt.datetime


def _info(row: PeerConf) -> PeerConfInfo:
    return PeerConfInfo(
        row.peer_instance, row.agreement_id, row.version, row.expires_at, row.fetched_at
    )


# --- what this registry shares ---------------------------------------------------------------


def shared_params(session: Session, *, node: Node) -> str:
    """This instance's shared parameters, from its current global configuration, signed
    with the registry's federation key (the one federation agreements pin)."""
    settings = node.settings
    signed = globalconf.current(
        session,
        node.keys,
        instance=settings.instance_code,
        validity_seconds=settings.exchange_globalconf_validity_seconds,
        crl_validity_hours=settings.crl_validity_hours,
    )
    document = json.loads(keystore.b64url_decode(signed.token.split(".")[1]))
    agreements.registry_key_thumbprint(session, node=node)  # made on first use
    key = keystore.active_key(session, node.keys, purpose=agreements.FEDERATION_PURPOSE)
    return jws.sign_compact(globalconf.shared_document(document), key, typ=globalconf.SHARED_TYP)


# --- what it learns from its peers -----------------------------------------------------------


def store_peer_conf(session: Session, *, node: Node, peer: str, token: str) -> PeerConfInfo:
    """Verify ``peer``'s shared parameters against the agreement in force and keep them
    (never an older version than the one held)."""
    agreement = agreements.agreement_with(session, peer=peer)
    party = agreement.peer_of(node.settings.instance_code)
    conf = globalconf.verify_shared(token, peer=party)
    row = session.scalars(sa.select(PeerConf).where(PeerConf.peer_instance == peer)).one_or_none()
    if row is not None and conf.version < row.version:
        raise PeerConfRefused(
            _(
                "The shared parameters of {peer}, version {version}, are older than version "
                "{held} held."
            ),
            peer=peer,
            version=conf.version,
            held=row.version,
        )
    if row is None:
        row = PeerConf(peer_instance=peer)
        session.add(row)
    row.agreement_id = agreement.id
    row.version = conf.version
    row.expires_at = conf.expires_at
    row.fetched_at = utcnow()
    row.token = token
    session.flush()
    node.record(
        session,
        "exchange.federation.peer-conf",
        {"peer": peer, "agreement": agreement.id, "version": conf.version},
    )
    return _info(row)


def peer_url(session: Session, *, node: Node, peer: str) -> str:
    """Where ``peer``'s registry publishes (the public URL its agreement signature names)."""
    agreement = agreements.agreement_with(session, peer=peer)
    url = agreement.peer_of(node.settings.instance_code).public_url
    if not url:
        raise PeerConfRefused(_("The agreement names no public URL for {peer}."), peer=peer)
    return url


def fetch_shared(base_url: str, *, timeout: float = 10.0) -> str:
    """Download a peer's shared parameters (unverified: ``store_peer_conf`` verifies)."""
    url = base_url.rstrip("/") + SHARED_PATH
    try:
        response = httpx.get(url, timeout=timeout)
    except httpx.HTTPError as error:
        raise PeerConfRefused(
            _("The registry at {url} cannot be reached: {reason}"), url=url, reason=repr(error)
        ) from error
    if response.status_code != 200:
        raise PeerConfRefused(
            _("The registry at {url} answered {status}."), url=url, status=response.status_code
        )
    return response.text.strip()


def refresh_peer(
    node: Node, *, peer: str, base_url: str | None = None, timeout: float = 10.0
) -> PeerConfInfo:
    """Download, verify and keep ``peer``'s shared parameters now (no transaction is open
    while the peer answers)."""
    if base_url is None:
        with node.session() as session:
            base_url = peer_url(session, node=node, peer=peer)
    token = fetch_shared(base_url, timeout=timeout)
    with node.session() as session:
        return store_peer_conf(session, node=node, peer=peer, token=token)


def list_peer_confs(session: Session) -> list[PeerConfInfo]:
    rows = session.scalars(sa.select(PeerConf).order_by(PeerConf.peer_instance))
    return [_info(row) for row in rows]


_attempts: dict[tuple[str, str], float] = {}
_attempts_lock = threading.Lock()


def refresh_stale(node: Node) -> list[str]:
    """Download again the shared parameters of every peer in force that has none or has
    passed half their validity, at most once per refresh interval and peer; failures are
    logged (the held parameters serve until they expire). Returns the peers refreshed."""
    now = utcnow()
    code = node.settings.instance_code
    with node.session() as session:
        held = {row.peer_instance: row for row in session.scalars(sa.select(PeerConf))}
        stale = []
        for agreement in agreements.list_agreements(session):
            if not agreement.valid_at(now):
                continue
            peer = agreement.peer_of(code).instance
            row = held.get(peer)
            if row is None or row.expires_at - now < (row.expires_at - row.fetched_at) / 2:
                stale.append(peer)
    refreshed = []
    interval = node.settings.exchange_globalconf_refresh_seconds
    for peer in sorted(set(stale)):
        key = (node.database_url, peer)
        with _attempts_lock:
            if time.monotonic() - _attempts.get(key, -interval - 1) < interval:
                continue
            _attempts[key] = time.monotonic()
        try:
            # short: a gateway is waiting for its configuration meanwhile
            refresh_peer(node, peer=peer, timeout=STALE_FETCH_TIMEOUT)
            refreshed.append(peer)
        except agreements.FederationError as error:
            log.warning("federation.peer-conf-failed", peer=peer, reason=error.detail)
        except PeerConfRefused as error:
            log.warning("federation.peer-conf-failed", peer=peer, reason=error.detail)
    return refreshed


__all__ = [
    "SHARED_PATH",
    "PeerConfInfo",
    "fetch_shared",
    "list_peer_confs",
    "peer_url",
    "refresh_peer",
    "refresh_stale",
    "shared_params",
    "store_peer_conf",
]
