"""Trust lists and the federated issuer-trust source.

Each instance publishes a signed list of its issuers at ``/.well-known/jisr-trust-list``: a
compact JWS (``typ: jisr-trust-list+jwt``) signed by the registry's ``trust-list`` key (the
key pinned by federation agreements, see ``jisr.core.federation``), whose payload is::

    {"instance": "MA", "iat", "exp",
     "issuers": [{"id": issuer identifier, "agency": …, "names": {"ar", "fr", "en"},
                  "types": [{"name", "vct", "display": {"ar", "fr", "en"}}…],
                  "jwks": {"keys": […]}, "status_lists": [status list URI…]}]}

A verifier trusts its own instance's issuers and, through each installed and valid
agreement, the issuers of the peer's last trust list (imported from a file or fetched over
HTTP beforehand, kept with the agreement, verified again against the pinned trust-list keys
each time a verifier is built): no call to the peer at verification time. A peer issuer is
trusted only for the types it may issue *and* this side accepts from that peer under the
agreement. Refused: a list signed by a key the agreement does not pin, another instance's
list, a list past its ``exp`` (``TrustListRefused``); at verification an issuer of an expired
agreement or list is an ``untrusted-issuer``, a type outside the agreement ``unaccepted-vct``.

The peer's status lists are kept too: ``refresh_peer`` fetches the trust list and then the
Status List Tokens it names, verified with the listed issuers' keys, into this node's
database (``jisr.credentials.peer_status``); verification reads only those copies. The API,
the CLI and the OpenID4VP verifier take their verifier from ``verifier_for``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy.orm import Session

from jisr.core import federation
from jisr.core.clock import utcnow
from jisr.core.crypto import jws
from jisr.core.errors import CryptoError
from jisr.core.http import node, session_of
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Node
from jisr.credentials import doctypes, peer_status, qr, service
from jisr.credentials.errors import CredentialsError
from jisr.credentials.status_list import StatusUnavailable, decode_list
from jisr.credentials.verify import (
    Check,
    IssuerTrust,
    StatusSource,
    TrustedKey,
    VerificationResult,
    Verifier,
    trusted_key,
)

TRUST_LIST_TYP = "jisr-trust-list+jwt"
TRUST_LIST_PATH = "/.well-known/jisr-trust-list"
TRUST_LIST_VALIDITY = dt.timedelta(days=7)


class TrustListRefused(CredentialsError):
    status_code = 400
    code = "trust-list-refused"
    title = _("The trust list is refused")


# --- publishing ------------------------------------------------------------------------------


def trust_list_payload(
    session: Session, *, node: Node, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The unsigned trust list of this instance's issuers (``session``: the portal's)."""
    settings = node.settings
    issued = (now or utcnow()).replace(microsecond=0)
    by_agency: dict[str, list[doctypes.DocumentType]] = {}
    for doc in doctypes.document_types().values():
        if doc.country == settings.instance_code[:2]:
            by_agency.setdefault(doc.agency, []).append(doc)
    for agency in by_agency:  # every agency of this instance is listed, keys made on first use
        service.issuer_key(session, node=node, agency=agency)
    issuers = []
    for issuer, jwks in sorted(service.issuers(session, public_url=settings.public_url).items()):
        agency = issuer.rsplit("/", 1)[1]
        issuers.append(
            {
                "id": issuer,
                "agency": agency,
                "names": by_agency[agency][0].agency_names if by_agency.get(agency) else {},
                "types": [
                    {
                        "name": d.name,
                        "vct": d.vct(settings.public_url),
                        "display": {lang: texts["name"] for lang, texts in d.display.items()},
                    }
                    for d in sorted(by_agency.get(agency, []), key=lambda d: d.name)
                ],
                "jwks": jwks,
                "status_lists": service.status_list_uris(session, node=node, agency=agency),
            }
        )
    return {
        "instance": settings.instance_code,
        "iat": int(issued.timestamp()),
        "exp": int((issued + TRUST_LIST_VALIDITY).timestamp()),
        "issuers": issuers,
    }


def signed_trust_list(
    session: Session, *, node: Node, registry: Session, registry_node: Node
) -> str:
    """This instance's trust list, signed by the registry's trust-list key."""
    key = federation.trust_list_key(registry, node=registry_node)
    return jws.sign_compact(trust_list_payload(session, node=node), key, typ=TRUST_LIST_TYP)


router = APIRouter(tags=["credentials"])


@router.get(
    TRUST_LIST_PATH,
    response_class=Response,
    responses={200: {"content": {"application/jwt": {}}, "description": "Signed trust list"}},
    summary="This instance's issuers and their keys, signed by the registry",
)
def trust_list_endpoint(
    session: Annotated[Session, session_of(service.ISSUER_NODE)],
    portal: Annotated[Node, Depends(node(service.ISSUER_NODE))],
    registry: Annotated[Session, session_of(REGISTRY_NODE)],
    registry_node: Annotated[Node, Depends(node(REGISTRY_NODE))],
) -> Response:
    token = signed_trust_list(session, node=portal, registry=registry, registry_node=registry_node)
    return Response(token, media_type="application/jwt", headers={"Cache-Control": "max-age=300"})


# --- importing -------------------------------------------------------------------------------


def verify_trust_list(
    token: str, *, agreement: federation.Agreement, local: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The payload of the peer's trust list, verified with the trust-list keys the
    agreement pins; ``TrustListRefused`` otherwise."""
    peer = agreement.peer_of(local)
    try:
        verified = jws.verify_compact(
            token.strip(), dict(peer.trust_list_jwks or {"keys": []}), typ=TRUST_LIST_TYP
        )
        payload = verified.json()
    except CryptoError as error:
        raise TrustListRefused(
            _("The trust list of {peer} does not verify with its pinned keys: {reason}"),
            peer=peer.instance,
            reason=str(error),
        ) from error
    if not isinstance(payload, dict) or payload.get("instance") != peer.instance:
        raise TrustListRefused(_("This is not the trust list of {peer}."), peer=peer.instance)
    exp = payload.get("exp")
    if not isinstance(exp, int) or exp <= (now or utcnow()).timestamp():
        raise TrustListRefused(_("The trust list of {peer} has expired."), peer=peer.instance)
    return payload


def import_trust_list(
    registry: Session, *, node: Node, peer: str, token: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Verify ``token`` against the agreement with ``peer`` and keep it with the agreement
    (``registry``: this instance's registry session)."""
    agreement = federation.agreement_with(registry, peer=peer, now=now)
    payload = verify_trust_list(
        token, agreement=agreement, local=node.settings.instance_code, now=now
    )
    federation.store_peer_document(registry, agreement_id=agreement.id, token=token.strip())
    node.record(
        registry,
        "federation.trust-list-imported",
        {"peer": peer, "agreement": agreement.id, "issuers": len(payload["issuers"])},
    )
    return payload


def fetch_trust_list(
    registry: Session,
    *,
    node: Node,
    peer: str,
    client: httpx.Client | None = None,
    base_url: str | None = None,
) -> dict[str, Any]:
    """Fetch the peer's trust list from ``base_url`` (default: the public URL the peer
    asserted in the agreement), then ``import_trust_list`` it."""
    agreement = federation.agreement_with(registry, peer=peer)
    base = base_url or agreement.peer_of(node.settings.instance_code).public_url
    url = base.rstrip("/") + TRUST_LIST_PATH
    owned = client is None
    http = client or httpx.Client(timeout=10)
    try:
        response = http.get(url)
        response.raise_for_status()
    except httpx.HTTPError as error:
        raise TrustListRefused(
            _("The trust list of {peer} cannot be fetched from {url}: {reason}"),
            peer=peer,
            url=url,
            reason=str(error),
        ) from error
    finally:
        if owned:
            http.close()
    return import_trust_list(registry, node=node, peer=peer, token=response.text)


# --- the federated trust source and verifier -------------------------------------------------


@dataclass(frozen=True)
class _Trusted:
    keys: tuple[TrustedKey, ...]
    vcts: frozenset[str] | None  # None: this instance's own issuer, any of its types


class FederatedTrust:
    """This instance's issuers plus the peer issuers of valid agreements and trust lists."""

    def __init__(
        self, issuers: Mapping[str, _Trusted], peer_types: Mapping[str, frozenset[str]] = {}
    ) -> None:
        self._issuers = dict(issuers)
        self._peer_types = dict(peer_types)

    def peer_vcts(self, name: str) -> frozenset[str]:
        """The ``vct`` values of document type ``name`` accepted from federated peers."""
        return self._peer_types.get(name, frozenset())

    def keys_for(self, issuer: str) -> Collection[TrustedKey] | None:
        found = self._issuers.get(issuer)
        return found.keys if found else None

    def allowed_vcts(self, issuer: str) -> frozenset[str] | None:
        found = self._issuers.get(issuer)
        return found.vcts if found else None

    @property
    def issuers(self) -> list[str]:
        return list(self._issuers)


def federated_trust(
    session: Session, *, node: Node, registry: Session, now: dt.datetime | None = None
) -> FederatedTrust:
    moment = now or utcnow()
    local = node.settings.instance_code
    trusted: dict[str, _Trusted] = {
        issuer: _Trusted(tuple(trusted_key(k) for k in jwks.get("keys", ())), None)
        for issuer, jwks in service.issuers(session, public_url=node.settings.public_url).items()
    }
    peer_types: dict[str, frozenset[str]] = {}
    for agreement_id, token in federation.peer_documents(registry):
        agreement = next(a for a in federation.list_agreements(registry) if a.id == agreement_id)
        if not agreement.valid_at(moment):
            continue
        try:
            payload = verify_trust_list(token, agreement=agreement, local=local, now=moment)
        except TrustListRefused:
            continue
        accepted = set(agreement.party(local).accepts_credential_types)
        for entry in payload.get("issuers", ()):
            types = [t for t in entry.get("types", ()) if t.get("name") in accepted]
            vcts = frozenset(t["vct"] for t in types)
            if vcts and entry.get("id") not in trusted:
                keys = tuple(trusted_key(k) for k in entry.get("jwks", {}).get("keys", ()))
                trusted[str(entry["id"])] = _Trusted(keys, vcts)
                for t in types:
                    peer_types[t["name"]] = peer_types.get(t["name"], frozenset()) | {t["vct"]}
    return FederatedTrust(trusted, peer_types)


class RoutedStatus:
    """Own status lists from the database, the others through ``remote`` (a TTL cache)."""

    def __init__(self, local: StatusSource, prefix: str, remote: StatusSource | None) -> None:
        self._local, self._prefix, self._remote = local, prefix, remote

    def status(self, uri: str, index: int) -> int:
        if uri.startswith(self._prefix):
            return self._local.status(uri, index)
        if self._remote is None:
            raise StatusUnavailable("status-list-unavailable", f"{uri} is not reachable here")
        return self._remote.status(uri, index)


class FederatedVerifier(Verifier):
    """The verifier with ``FederatedTrust``: a peer issuer's credential must also be of a
    type the agreement accepts from that peer (else ``type: unaccepted-vct``)."""

    trust: FederatedTrust

    def _restrict(self, result: VerificationResult) -> VerificationResult:
        issuer, vct = result.claims.get("iss"), result.claims.get("vct")
        if not isinstance(issuer, str) or not any(c.check == "type" for c in result.checks):
            return result
        allowed = self.trust.allowed_vcts(issuer)
        if allowed is None or vct in allowed:
            return result
        checks = [
            Check("type", False, "unaccepted-vct", f"{vct} is not accepted from {issuer}")
            if c.check == "type"
            else c
            for c in result.checks
        ]
        return replace(result, checks=checks)

    def verify(self, presentation: str, **kwargs: Any) -> VerificationResult:
        return self._restrict(super().verify(presentation, **kwargs))

    def verify_qr(self, text: str) -> VerificationResult:
        return self._restrict(qr.verify_qr(text, self))


# --- peer status lists: fetched with the trust list, read from the database ----------------


@dataclass(frozen=True)
class StatusRefresh:
    """What a refresh of a peer's status lists did: URIs stored, and those refused (why)."""

    peer: str
    stored: tuple[str, ...]
    refused: dict[str, str]


Fetch = Callable[[str], str]


def _http_fetch(client: httpx.Client) -> Fetch:
    def fetch(url: str) -> str:
        response = client.get(url, headers={"accept": "application/statuslist+jwt"})
        response.raise_for_status()
        return response.text

    return fetch


def refresh_status_lists(
    session: Session,
    *,
    node: Node,
    registry: Session,
    peer: str,
    fetch: Fetch | None = None,
    base_url: str | None = None,
    now: dt.datetime | None = None,
) -> StatusRefresh:
    """Fetch the Status List Tokens named in ``peer``'s stored trust list, verify each with
    the key of its issuer in that (pinned) list, and keep them in this node's database
    (``session``: the portal's). A list must lie on its issuer's origin (``base_url``
    replaces that origin for the fetch), have the issuer as ``iss`` and its own URI as
    ``sub``, and not be expired; a refused list keeps its previous copy."""
    moment = now or utcnow()
    local = node.settings.instance_code
    agreement = federation.agreement_with(registry, peer=peer, now=moment)
    token = dict(federation.peer_documents(registry)).get(agreement.id)
    if token is None:
        raise TrustListRefused(_("No trust list of {peer} is stored yet."), peer=peer)
    payload = verify_trust_list(token, agreement=agreement, local=local, now=moment)
    trusted = federated_trust(session, node=node, registry=registry, now=moment)
    checker = Verifier(trusted, clock=moment.timestamp)
    client: httpx.Client | None = None
    if fetch is None:
        client = httpx.Client(timeout=10)
        fetch = _http_fetch(client)
    get = fetch
    stored: list[str] = []
    refused: dict[str, str] = {}
    try:
        for entry in payload.get("issuers", ()):
            issuer = entry.get("id")
            if not isinstance(issuer, str) or trusted.allowed_vcts(issuer) is None:
                continue  # not trusted for any type here (or one of this instance's own)
            parts = urlsplit(issuer)
            prefix = f"{parts.scheme}://{parts.netloc}"
            for uri in entry.get("status_lists", ()):
                if not isinstance(uri, str) or not uri.startswith(prefix + "/"):
                    refused[str(uri)] = "outside-issuer-origin"
                    continue
                url = (base_url.rstrip("/") + uri[len(prefix) :]) if base_url else uri
                try:
                    fetched = get(url).strip()
                except Exception as error:  # a fetch may fail in any way: report it
                    refused[uri] = f"unavailable: {error}"
                    continue
                try:
                    claims = checker.verify_status_token(fetched)
                    if claims.get("sub") != uri or claims.get("iss") != issuer:
                        raise ValueError("its sub or iss is not the listed URI and issuer")
                    exp = claims.get("exp")
                    if not isinstance(exp, int) or exp <= moment.timestamp():
                        raise ValueError("it has no exp or has expired")
                    decode_list(claims.get("status_list") or {})
                except ValueError as error:
                    refused[uri] = f"invalid: {error}"
                    continue
                peer_status.store(
                    session,
                    uri=uri,
                    peer=peer,
                    issuer=issuer,
                    token=fetched,
                    payload=claims,
                    max_ttl=node.settings.credentials_status_ttl_seconds,
                    now=moment,
                )
                stored.append(uri)
    finally:
        if client is not None:
            client.close()
    node.record(
        session,
        "credentials.peer-status-refreshed",
        {"peer": peer, "stored": len(stored), "refused": sorted(refused)},
    )
    return StatusRefresh(peer=peer, stored=tuple(stored), refused=refused)


def refresh_peer(
    session: Session,
    *,
    node: Node,
    registry: Session,
    registry_node: Node,
    peer: str,
    token: str | None = None,
    client: httpx.Client | None = None,
    base_url: str | None = None,
) -> tuple[dict[str, Any], StatusRefresh]:
    """Refresh what this instance keeps of ``peer``: its trust list (``token``, or fetched
    from ``base_url``/the peer's public URL) and then its status lists, so that verifying
    the peer's credentials needs no call to the peer until the lists' TTL runs out."""
    if token is not None:
        payload = import_trust_list(registry, node=registry_node, peer=peer, token=token)
    else:
        payload = fetch_trust_list(
            registry, node=registry_node, peer=peer, client=client, base_url=base_url
        )
    fetch = _http_fetch(client) if client is not None else None
    refreshed = refresh_status_lists(
        session, node=node, registry=registry, peer=peer, fetch=fetch, base_url=base_url
    )
    return payload, refreshed


class _NoStatus:
    def status(self, uri: str, index: int) -> int:
        raise StatusUnavailable("status-list-unavailable", f"{uri} is not reachable here")


def federated_verifier(
    session: Session,
    *,
    node: Node,
    registry: Session | None,
    remote_status: StatusSource | None = None,
    now: dt.datetime | None = None,
) -> FederatedVerifier:
    """This instance's verifier: its issuers and its federated peers' (``session``: portal,
    ``registry``: the registry's session; without it, this instance's issuers only). Peer
    status lists come from ``remote_status``, by default the copies stored by
    ``refresh_status_lists``: verification makes no call to a peer."""
    settings = node.settings
    local = service.LocalStatus(session, public_url=settings.public_url)
    if remote_status is None:
        remote_status = (
            peer_status.PeerStatus(session, clock=(lambda: now) if now else utcnow)
            if registry is not None
            else _NoStatus()
        )
    if registry is None:
        trusted = FederatedTrust(
            {
                issuer: _Trusted(tuple(trusted_key(k) for k in jwks.get("keys", ())), None)
                for issuer, jwks in service.issuers(session, public_url=settings.public_url).items()
            }
        )
    else:
        trusted = federated_trust(session, node=node, registry=registry, now=now)
    return FederatedVerifier(
        trusted,
        status=RoutedStatus(local, service.status_list_uri(settings.public_url, ""), remote_status),
        kb_max_age=settings.credentials_key_binding_max_age_seconds,
    )


@contextmanager
def verifier_for(
    session: Session, *, node: Node, registry_node: Node | None
) -> Iterator[FederatedVerifier]:
    """The one trust choice of the API, the CLI and the OpenID4VP verifier: this instance's
    issuers, plus its federated peers' when the registry node is at hand (``registry_node``:
    served beside the portal, or opened by the CLI); ``None``: own issuers only."""
    if registry_node is None:
        yield federated_verifier(session, node=node, registry=None)
        return
    with registry_node.session() as registry:
        yield federated_verifier(session, node=node, registry=registry)


def trusted_issuer_count(trust: IssuerTrust) -> int:
    return len(getattr(trust, "issuers", ()))


__all__ = [
    "TRUST_LIST_PATH",
    "TRUST_LIST_TYP",
    "FederatedTrust",
    "FederatedVerifier",
    "TrustListRefused",
    "StatusRefresh",
    "federated_trust",
    "federated_verifier",
    "fetch_trust_list",
    "refresh_peer",
    "refresh_status_lists",
    "verifier_for",
    "import_trust_list",
    "router",
    "signed_trust_list",
    "trust_list_payload",
    "verify_trust_list",
]
