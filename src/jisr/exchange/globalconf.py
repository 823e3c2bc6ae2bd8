"""The signed global configuration: what every gateway of an instance must agree on.

Design
------
The registry builds one JSON document from its tables and signs it as a compact JWS
(``typ: jisr-globalconf+json``) with its node's active ``signing`` key::

    {"format": "jisr-globalconf/1", "instance": "MA", "version": 7,
     "generated_at": "2026-…Z", "expires_at": "2026-…Z",
     "ca": PEM, "crl": PEM, "revoked": ["serial hex", …],
     "members": [{"id": "MA/GOV/CIVIL-REGISTRY", "name": …}],
     "subsystems": ["MA/GOV/CIVIL-REGISTRY/BIRTHS", …],
     "services": [{"id": ".../BIRTHS/birth-record", "url": base URL, "openapi": bool,
                   "openapi_sha256": SHA-256 hex of its OpenAPI document, or null}],
     "gateways": [{"name", "member", "address", "tls_certificate", "signing_certificate"}],
     "access_rights": [{"service", "client", "method", "path"[, "group"]}],
     "federations": [{"instance": peer, "agreement": doubly signed agreement,
                      "shared": the peer's shared parameters (compact JWS)}]}

A right granted to a local group is listed once per subsystem in the group (with ``group``);
a client may be a subsystem of a federated instance. ``federations`` (see
``jisr.exchange.federation``) is verified again by each gateway into ``Federation`` objects.

``current`` returns the newest stored document while its content is unchanged and more than
half of its validity remains; otherwise it signs a new version (version + 1). Before signing
it publishes a new CRL when the last one does not cover the document's validity or misses a
revocation, so a gateway can always check certificates against the CRL it received.

A gateway is bootstrapped with an *anchor*: the instance code, the registry's JWKS and the
instance CA certificate (``ca.pem``). ``verify`` refuses a document that is not a JWS signed
by an anchor key with that ``typ``, names another instance, carries another CA, is older
than the copy already held, or has expired. The gateway keeps the last verified document in
``exchange_cached_confs`` and works from it (``GlobalConf``) while the registry is down, until
``expires_at``; after that it refuses calls with ``OutdatedGlobalConf``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from jisr.core import federation
from jisr.core.audit import canonical_json
from jisr.core.clock import utcnow
from jisr.core.crypto import ca, jws, keystore
from jisr.core.errors import CryptoError, JisrError
from jisr.core.i18n import _
from jisr.core.logging import get_logger
from jisr.exchange.errors import GlobalConfRefused, PeerConfRefused
from jisr.exchange.models import (
    AccessRight,
    CachedGlobalConf,
    Member,
    PeerConf,
    Service,
    SignedGlobalConf,
)
from jisr.exchange.models import Gateway as GatewayRow
from jisr.exchange.service import (
    group_clients,
    member_id,
    right_client,
    service_id,
    subsystem_id,
)

FORMAT = "jisr-globalconf/1"
log = get_logger("jisr.exchange")
TYP = "jisr-globalconf+json"
MEDIA_TYPE = "application/jose"


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> dt.datetime:
    if not isinstance(text, str):
        raise ValueError("not a timestamp")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


# --- building and signing (registry) ---------------------------------------------------------


def openapi_sha256(document: str) -> str:
    """What the configuration says of a service's OpenAPI document (gateways check it)."""
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def build_content(session: Session, *, instance: str | None = None) -> dict[str, Any]:
    """The configuration's content (without version and times), from the registry tables;
    with ``instance``, also the federations in force (``federated_content``)."""
    members = sorted(
        ({"id": str(member_id(m)), "name": m.name} for m in session.scalars(sa.select(Member))),
        key=lambda m: m["id"],
    )
    subsystems = sorted(
        str(subsystem_id(s)) for m in session.scalars(sa.select(Member)) for s in m.subsystems
    )
    services = sorted(
        (
            {
                "id": str(service_id(s)),
                "url": s.base_url,
                "openapi": s.openapi is not None,
                "openapi_sha256": openapi_sha256(s.openapi) if s.openapi is not None else None,
            }
            for s in session.scalars(sa.select(Service))
        ),
        key=lambda s: str(s["id"]),
    )
    gateways = sorted(
        (
            {
                "name": g.name,
                "member": str(member_id(g.member)),
                "address": g.address,
                "tls_certificate": g.tls_certificate,
                "signing_certificate": g.signing_certificate,
            }
            for g in session.scalars(sa.select(GatewayRow))
        ),
        key=lambda g: g["name"],
    )
    listed: list[dict[str, Any]] = []
    for r in session.scalars(sa.select(AccessRight)):
        rule = {"service": str(service_id(r.service)), "method": r.method, "path": r.path}
        if r.group is not None:  # a local group: once per subsystem in it
            listed += [
                {**rule, "client": client, "group": r.group.code}
                for client in group_clients(session, r.group.id)
            ]
        else:
            listed.append({**rule, "client": right_client(r)})
    rights = sorted(
        listed,
        key=lambda r: (r["service"], r["client"], r["method"], r["path"], r.get("group", "")),
    )
    revoked = sorted(c.serial for c in ca.list_certificates(session) if c.revoked_at is not None)
    return {
        "format": FORMAT,
        "ca": ca.to_pem(ca.ca_certificate(session)).decode("ascii"),
        "revoked": revoked,
        "members": members,
        "subsystems": subsystems,
        "services": services,
        "gateways": gateways,
        "access_rights": rights,
        "federations": federated_content(session, instance) if instance else [],
    }


def federated_content(session: Session, instance: str) -> list[dict[str, Any]]:
    """Per agreement in force whose peer's shared parameters are held and not expired: the
    doubly signed agreement and those parameters (each gateway verifies both again)."""
    held = {row.peer_instance: row for row in session.scalars(sa.select(PeerConf))}
    now = utcnow()
    found: dict[str, dict[str, Any]] = {}
    for agreement in federation.list_agreements(session):
        if not agreement.valid_at(now):
            continue
        try:
            peer = agreement.peer_of(instance).instance
        except federation.FederationError:
            continue
        row = held.get(peer)
        if peer in found or row is None or row.expires_at <= now:
            continue
        found[peer] = {"instance": peer, "agreement": agreement.document, "shared": row.token}
    return [found[peer] for peer in sorted(found)]


def _fresh_crl(
    session: Session,
    backend: keystore.KeyBackend,
    *,
    revoked: list[str],
    until: dt.datetime,
    crl_validity_hours: int,
) -> x509.CertificateRevocationList:
    crl = ca.latest_crl(session)
    listed = sorted(ca.serial_hex(entry.serial_number) for entry in crl) if crl else None
    if crl is None or listed != revoked or (crl.next_update_utc or utcnow()) < until:
        hours = max(crl_validity_hours, int((until - utcnow()).total_seconds() // 3600) + 1)
        crl = ca.publish_crl(session, backend, validity_hours=hours)
    return crl


def current(
    session: Session,
    backend: keystore.KeyBackend,
    *,
    instance: str,
    validity_seconds: int,
    crl_validity_hours: int = 24,
) -> SignedGlobalConf:
    """The global configuration to publish now, signing a new version when needed."""
    content = build_content(session, instance=instance)
    content_hash = hashlib.sha256(canonical_json(content).encode("utf-8")).hexdigest()
    latest = session.scalars(
        sa.select(SignedGlobalConf).order_by(SignedGlobalConf.version.desc()).limit(1)
    ).first()
    now = utcnow()
    if (
        latest is not None
        and latest.content_hash == content_hash
        and latest.expires_at - now > (latest.expires_at - latest.generated_at) / 2
    ):
        return latest
    expires_at = now + dt.timedelta(seconds=validity_seconds)
    crl = _fresh_crl(
        session,
        backend,
        revoked=content["revoked"],
        until=expires_at,
        crl_validity_hours=crl_validity_hours,
    )
    version = (latest.version if latest else 0) + 1
    document = {
        **content,
        "instance": instance,
        "version": version,
        "generated_at": _iso(now),
        "expires_at": _iso(expires_at),
        "crl": ca.to_pem(crl).decode("ascii"),
    }
    key = keystore.active_key(session, backend, purpose="signing")
    row = SignedGlobalConf(
        version=version,
        content_hash=content_hash,
        generated_at=now,
        expires_at=expires_at,
        token=jws.sign_compact(document, key, typ=TYP),
    )
    session.add(row)
    session.flush()
    return row


# --- the verified view (gateways) ------------------------------------------------------------


def _load_cert(pem: Any) -> x509.Certificate:
    if not isinstance(pem, str):
        raise ValueError("a certificate is not PEM text")
    return ca.load_certificate(pem.encode("ascii"))


@dataclass(frozen=True)
class PeerGateway:
    """A gateway as the configuration lists it, certificates parsed."""

    name: str
    member: str
    address: str
    tls_certificate: x509.Certificate
    signing_certificate: x509.Certificate

    @cached_property
    def tls_der(self) -> bytes:
        """The TLS certificate, DER-encoded (computed once)."""
        return self.tls_certificate.public_bytes(Encoding.DER)

    @cached_property
    def signing_jwk(self) -> dict[str, Any]:
        public_key = self.signing_certificate.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
            raise ValueError("unsupported signing key type")
        jwk: dict[str, Any] = dict(keystore.public_jwk_of(public_key))
        jwk["kid"] = keystore.jwk_thumbprint(jwk)
        return jwk


@dataclass(frozen=True)
class GlobalConf:
    """A verified global configuration, indexed for the gateway's checks."""

    token: str
    document: dict[str, Any] = field(repr=False)
    instance: str
    version: int
    generated_at: dt.datetime
    expires_at: dt.datetime
    ca_certificate: x509.Certificate = field(repr=False)
    crl: x509.CertificateRevocationList = field(repr=False)
    subsystems: frozenset[str]
    services: dict[str, str]  # service id -> provider base URL
    gateways: dict[str, PeerGateway]  # by name
    gateway_of_member: dict[str, str]  # member id -> gateway name
    access_rights: dict[tuple[str, str], list[tuple[str, str]]]  # (service, client) -> rules
    member_names: dict[str, str] = field(default_factory=dict)  # member id -> name
    openapi_hashes: dict[str, str] = field(default_factory=dict)  # service id -> SHA-256
    federations: dict[str, Federation] = field(default_factory=dict)  # peer instance -> …

    @classmethod
    def parse(cls, token: str, document: Mapping[str, Any]) -> GlobalConf:
        try:
            gateways = {
                g["name"]: PeerGateway(
                    name=g["name"],
                    member=g["member"],
                    address=g["address"],
                    tls_certificate=_load_cert(g["tls_certificate"]),
                    signing_certificate=_load_cert(g["signing_certificate"]),
                )
                for g in document["gateways"]
            }
            rights: dict[tuple[str, str], list[tuple[str, str]]] = {}
            for right in document["access_rights"]:
                key = (str(right["service"]), str(right["client"]))
                rights.setdefault(key, []).append((str(right["method"]), str(right["path"])))
            return cls(
                token=token,
                document=dict(document),
                instance=str(document["instance"]),
                version=int(document["version"]),
                generated_at=_parse_time(document["generated_at"]),
                expires_at=_parse_time(document["expires_at"]),
                ca_certificate=_load_cert(document["ca"]),
                crl=ca.load_crl(str(document["crl"]).encode("ascii")),
                subsystems=frozenset(str(s) for s in document["subsystems"]),
                services={str(s["id"]): str(s["url"]) for s in document["services"]},
                gateways=gateways,
                gateway_of_member={g.member: g.name for g in gateways.values()},
                access_rights=rights,
                member_names={str(m["id"]): str(m["name"]) for m in document["members"]},
                openapi_hashes={
                    str(s["id"]): str(s["openapi_sha256"])
                    for s in document["services"]
                    if s.get("openapi_sha256")
                },
                federations=_federations(str(document["instance"]), document.get("federations")),
            )
        except (KeyError, TypeError, ValueError, CryptoError) as error:
            raise GlobalConfRefused(
                _("The global configuration is malformed: {reason}"), reason=repr(error)
            ) from error

    def is_expired(self, at: dt.datetime | None = None) -> bool:
        return (at or utcnow()) >= self.expires_at

    def gateway_by_tls_certificate(self, der: bytes) -> PeerGateway | None:
        return self._gateways_by_tls_der.get(der)

    def federated_gateway(self, der: bytes) -> tuple[PeerGateway, Federation] | None:
        """A gateway of a federated instance presenting TLS certificate ``der``, and the
        federation it belongs to."""
        for federated in self.federations.values():
            found = federated.peer.gateway_by_tls_certificate(der)
            if found is not None:
                return found, federated
        return None

    @cached_property
    def _gateways_by_tls_der(self) -> dict[bytes, PeerGateway]:
        # Each call encoded every gateway's certificate again (measured: py-spy on the
        # provider's gateway under load).
        return {gateway.tls_der: gateway for gateway in self.gateways.values()}


# --- federation: shared parameters of another instance ---------------------------------------

SHARED_FORMAT = "jisr-shared-params/1"
SHARED_TYP = "jisr-shared-params+json"
# What an instance shares with the instances it federates with (X-Road's "shared
# parameters"): who its gateways are and how to check their certificates; never its service
# URLs or access rights.
SHARED_KEYS = (
    "instance",
    "version",
    "generated_at",
    "expires_at",
    "ca",
    "crl",
    "revoked",
    "members",
    "subsystems",
    "gateways",
)


def shared_document(document: Mapping[str, Any]) -> dict[str, Any]:
    """The shared parameters of a signed global configuration's ``document``."""
    return {"format": SHARED_FORMAT, **{key: document[key] for key in SHARED_KEYS}}


@dataclass(frozen=True)
class Federation:
    """A federation in force, as a gateway sees it: from the doubly signed agreement, what
    each side opens to the other, and the peer's shared parameters verified with the peer
    registry's key the agreement pins."""

    instance: str  # the peer instance
    agreement_id: str
    valid_from: dt.datetime
    valid_until: dt.datetime
    opens: frozenset[str]  # this instance's services the peer's subsystems may call
    peer_opens: frozenset[str]  # the peer's services this instance's subsystems may call
    peer: GlobalConf = field(repr=False)

    def usable(self, at: dt.datetime | None = None) -> bool:
        moment = at or utcnow()
        return self.valid_from <= moment < self.valid_until and not self.peer.is_expired(moment)


def verify_shared(
    token: str, *, peer: federation.Party, at: dt.datetime | None = None, expired: bool = False
) -> GlobalConf:
    """Verify a peer's shared parameters with the key its registry signed the agreement with
    (its thumbprint is the one pinned in the agreement); ``PeerConfRefused`` otherwise. The
    result is a ``GlobalConf`` without services or access rights. ``expired``: accept one
    that has expired (the caller checks at use)."""
    if not peer.registry_jwk:
        raise PeerConfRefused(_("The agreement carries no key for {peer}."), peer=peer.instance)
    try:
        verified = jws.verify_compact(token, {"keys": [dict(peer.registry_jwk)]}, typ=SHARED_TYP)
        document = verified.json()
    except CryptoError as error:
        raise PeerConfRefused(
            _("The shared parameters of {peer} are not signed with its pinned key: {reason}"),
            peer=peer.instance,
            reason=error.detail,
        ) from error
    if not isinstance(document, dict) or document.get("format") != SHARED_FORMAT:
        raise PeerConfRefused(_("The shared parameters have an unknown format."))
    try:
        conf = GlobalConf.parse(
            token, {**document, "services": [], "access_rights": [], "federations": []}
        )
    except GlobalConfRefused as error:
        raise PeerConfRefused(
            _("The shared parameters of {peer} are malformed: {reason}"),
            peer=peer.instance,
            reason=error.detail,
        ) from error
    if conf.instance != peer.instance:
        raise PeerConfRefused(
            _("The shared parameters are of instance {found}, not {expected}."),
            found=conf.instance,
            expected=peer.instance,
        )
    if not expired and conf.is_expired(at):
        raise PeerConfRefused(
            _("The shared parameters of {peer} expired at {expires_at}."),
            peer=peer.instance,
            expires_at=_iso(conf.expires_at),
        )
    return conf


def _federations(instance: str, items: Any) -> dict[str, Federation]:
    """The federations a configuration lists, each verified; one that does not verify is
    left out (and logged), so it never stops the instance's own traffic."""
    found: dict[str, Federation] = {}
    for item in items or []:
        try:
            agreement = federation.verify_agreement(item["agreement"])
            me, peer = agreement.party(instance), agreement.peer_of(instance)
            shared = verify_shared(str(item["shared"]), peer=peer, expired=True)
        except (KeyError, TypeError, ValueError, JisrError) as error:
            log.warning("globalconf.federation-refused", instance=instance, reason=repr(error))
            continue
        found[peer.instance] = Federation(
            instance=peer.instance,
            agreement_id=agreement.id,
            valid_from=agreement.valid_from,
            valid_until=agreement.valid_until,
            opens=frozenset(me.opens_services),
            peer_opens=frozenset(peer.opens_services),
            peer=shared,
        )
    return found


def verify(
    token: str,
    *,
    jwks: Mapping[str, Any],
    instance: str,
    ca_pem: bytes,
    at: dt.datetime | None = None,
    newer_than: int = 0,
) -> GlobalConf:
    """Verify a downloaded configuration against the anchor; see the module docstring."""
    try:
        verified = jws.verify_compact(token, jwks, typ=TYP)
        document = verified.json()
    except CryptoError as error:
        raise GlobalConfRefused(
            _("The global configuration's signature does not verify: {reason}"),
            reason=error.detail,
        ) from error
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise GlobalConfRefused(_("The global configuration has an unknown format."))
    conf = GlobalConf.parse(token, document)
    if conf.instance != instance:
        raise GlobalConfRefused(
            _("The global configuration is for instance {found}, not {expected}."),
            found=conf.instance,
            expected=instance,
        )
    if conf.ca_certificate != ca.load_certificate(ca_pem):
        raise GlobalConfRefused(_("The global configuration names another CA than the anchor."))
    if conf.version < newer_than:
        raise GlobalConfRefused(
            _("The global configuration version {version} is older than the one held ({held})."),
            version=conf.version,
            held=newer_than,
        )
    if conf.is_expired(at):
        raise GlobalConfRefused(
            _("The global configuration expired at {expires_at}."),
            expires_at=_iso(conf.expires_at),
        )
    return conf


# --- the gateway's cache ---------------------------------------------------------------------


def store_cached(session: Session, conf: GlobalConf) -> bool:
    """Keep a verified configuration; False when this version is already cached."""
    exists = session.scalar(
        sa.select(CachedGlobalConf.id).where(CachedGlobalConf.version == conf.version)
    )
    if exists is not None:
        return False
    session.add(
        CachedGlobalConf(
            version=conf.version,
            generated_at=conf.generated_at,
            expires_at=conf.expires_at,
            fetched_at=utcnow(),
            token=conf.token,
        )
    )
    session.flush()
    return True


def latest_cached_token(session: Session) -> str | None:
    return session.scalar(
        sa.select(CachedGlobalConf.token).order_by(CachedGlobalConf.version.desc()).limit(1)
    )
