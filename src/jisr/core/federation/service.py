"""Federation agreements between two sovereign instances: offer, countersign, install, read.

The document
------------
A JWS JSON general serialization (RFC 7515 §7.2.1) with exactly two signatures over one
payload (canonical JSON: sorted keys, no whitespace, UTF-8)::

    {"payload": b64url(terms), "signatures": [{"protected": …, "signature": …}, ×2]}

``terms``: ``typ`` ``jisr-federation-agreement``, ``version`` 1, ``id`` (UUID), ``iat``,
``nbf``, ``exp`` and two ``parties``, each ``{instance, registry_key_thumbprint,
accepts_credential_types, opens_services}``: the types that side accepts *from the other*,
the services it opens *to the other* (for exchange). Each registry pins the other's key by
its RFC 7638 thumbprint, learnt out of band (like certificate pinning), inside the terms
both sign.

Each signature's protected header (``typ`` ``jisr-federation+jws``) carries what its signer
asserts about itself: ``jisr_instance``, ``jisr_name``, ``jisr_public_url``, ``jwk`` (its
registry federation key; its thumbprint is the ``kid`` and must equal the pinned one) and
``jisr_trust_list_jwks`` (the keys that sign its trust lists). So the peer's trust-list keys
are authenticated by a key pinned in the doubly signed terms. One general serialization
rather than two compact JWS: one file, one payload, no doubt that both signed the same bytes.

Workflow (no shared disk): ``make_offer`` (the offerer's registry signs), ``countersign``
(the peer checks the offer against the offerer's thumbprint it got out of band and adds its
signature), ``install_agreement`` on each side (both signatures, both pins, this side's own
key, validity). Keys live in the registry keystore, purposes ``federation`` and
``trust-list``, generated on first use.

Errors: ``FederationError`` (400) → ``AgreementRefused`` (400: a signature, a pin, the
terms), ``AgreementExpired`` (409), ``AgreementNotFound`` (404).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.core.errors import CryptoError, InvalidInput, JisrError, NotFound
from jisr.core.federation.models import FederationAgreement
from jisr.core.i18n import _
from jisr.core.instance import Node

AGREEMENT_TYP = "jisr-federation-agreement"
SIGNATURE_TYP = "jisr-federation+jws"
FEDERATION_PURPOSE = "federation"
TRUST_LIST_PURPOSE = "trust-list"


class FederationError(JisrError):
    status_code = 400
    code = "federation-error"
    title = _("The federation request cannot be completed")


class AgreementRefused(FederationError):
    code = "agreement-refused"
    title = _("The federation agreement is refused")


class AgreementExpired(FederationError):
    status_code = 409
    code = "agreement-expired"
    title = _("The federation agreement is not valid now")


class AgreementNotFound(FederationError):
    status_code = 404
    code = "agreement-not-found"
    title = _("No federation agreement")


@dataclass(frozen=True)
class Party:
    """One side of an agreement: the terms it signed and what it asserts about itself."""

    instance: str
    registry_key_thumbprint: str
    accepts_credential_types: tuple[str, ...]
    opens_services: tuple[str, ...]
    name: str = ""
    public_url: str = ""
    registry_jwk: Mapping[str, Any] | None = None
    trust_list_jwks: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Agreement:
    """A verified agreement (both signatures and pins checked)."""

    id: str
    parties: tuple[Party, Party]
    issued_at: dt.datetime
    valid_from: dt.datetime
    valid_until: dt.datetime
    document: Mapping[str, Any]

    def party(self, instance: str) -> Party:
        for party in self.parties:
            if party.instance == instance:
                return party
        raise AgreementRefused(
            _("Instance {instance} is not a party to agreement {id}."),
            instance=instance,
            id=self.id,
        )

    def peer_of(self, instance: str) -> Party:
        self.party(instance)
        return next(p for p in self.parties if p.instance != instance)

    def valid_at(self, now: dt.datetime) -> bool:
        return self.valid_from <= now < self.valid_until


# --- keys ------------------------------------------------------------------------------------


def _key(session: Session, node: Node, purpose: str) -> keystore.SigningKey:
    try:
        return keystore.active_key(session, node.keys, purpose=purpose)
    except NotFound:
        keystore.generate_key(
            session, node.keys, purpose=purpose, algorithm=node.settings.key_algorithm
        )
        return keystore.active_key(session, node.keys, purpose=purpose)


def registry_key_thumbprint(session: Session, *, node: Node) -> str:
    """The thumbprint to hand to peers out of band (the registry's federation key)."""
    return _key(session, node, FEDERATION_PURPOSE).kid


def trust_list_key(session: Session, *, node: Node) -> keystore.SigningKey:
    """The registry key that signs this instance's trust lists."""
    return _key(session, node, TRUST_LIST_PURPOSE)


# --- signing and verifying -------------------------------------------------------------------


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _signature(session: Session, node: Node, payload_b64: str) -> dict[str, str]:
    key = _key(session, node, FEDERATION_PURPOSE)
    settings = node.settings
    _key(session, node, TRUST_LIST_PURPOSE)
    header = {
        "alg": key.algorithm,
        "kid": key.kid,
        "typ": SIGNATURE_TYP,
        "jisr_instance": settings.instance_code,
        "jisr_name": settings.instance_name,
        "jisr_public_url": settings.public_url,
        "jwk": {**key.public_jwk, "kid": key.kid},
        "jisr_trust_list_jwks": keystore.public_jwks(session, purpose=TRUST_LIST_PURPOSE),
    }
    protected = keystore.b64url_encode(_canonical(header))
    signature = key.sign(f"{protected}.{payload_b64}".encode("ascii"))
    return {"protected": protected, "signature": keystore.b64url_encode(signature)}


def _terms(document: Mapping[str, Any]) -> dict[str, Any]:
    try:
        terms = json.loads(keystore.b64url_decode(str(document["payload"])))
        parties = terms["parties"]
        if (
            terms.get("typ") != AGREEMENT_TYP
            or not isinstance(parties, list)
            or len(parties) != 2
            or parties[0]["instance"] == parties[1]["instance"]
        ):
            raise ValueError("not the terms of an agreement between two instances")
        for name in ("nbf", "exp", "iat"):
            if not isinstance(terms[name], int):
                raise ValueError(f"{name} is not a number")
    except (KeyError, TypeError, ValueError) as error:
        raise AgreementRefused(
            _("This is not a federation agreement: {reason}"), reason=str(error)
        ) from error
    return dict(terms)


def _verified_signature(
    document: Mapping[str, Any], signature: Mapping[str, Any], party: Mapping[str, Any]
) -> dict[str, Any]:
    """The protected header of ``signature`` once it verifies with the key pinned for
    ``party``; ``AgreementRefused`` otherwise."""
    instance = party.get("instance")
    try:
        header = json.loads(keystore.b64url_decode(str(signature["protected"])))
        jwk = header["jwk"]
        pinned = party["registry_key_thumbprint"]
        if keystore.jwk_thumbprint(jwk) != pinned or header.get("kid") != pinned:
            raise AgreementRefused(
                _("The signature of {instance} is not made with its pinned key {pinned}."),
                instance=instance,
                pinned=pinned,
            )
        compact = f"{signature['protected']}.{document['payload']}.{signature['signature']}"
        jws.verify_compact(compact, {"keys": [jwk]}, typ=SIGNATURE_TYP)
    except (KeyError, TypeError, ValueError, InvalidInput, CryptoError) as error:
        raise AgreementRefused(
            _("The signature of {instance} does not verify: {reason}"),
            instance=instance,
            reason=str(error),
        ) from error
    if header.get("jisr_instance") != instance:
        raise AgreementRefused(
            _("A signature claims to be by {claimed}, not {instance}."),
            claimed=str(header.get("jisr_instance")),
            instance=instance,
        )
    return dict(header)


def _party(terms: Mapping[str, Any], header: Mapping[str, Any] | None) -> Party:
    header = header or {}
    return Party(
        instance=str(terms["instance"]),
        registry_key_thumbprint=str(terms["registry_key_thumbprint"]),
        accepts_credential_types=tuple(terms.get("accepts_credential_types") or ()),
        opens_services=tuple(terms.get("opens_services") or ()),
        name=str(header.get("jisr_name", "")),
        public_url=str(header.get("jisr_public_url", "")),
        registry_jwk=header.get("jwk"),
        trust_list_jwks=header.get("jisr_trust_list_jwks"),
    )


def _timestamp(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def verify_agreement(document: Mapping[str, Any], *, signatures: int = 2) -> Agreement:
    """Verify an agreement (``signatures=1``: an offer, signed by its first party only):
    every signature with the key its party pinned. Validity is the caller's check."""
    terms = _terms(document)
    sigs = document.get("signatures")
    if not isinstance(sigs, list) or len(sigs) != signatures:
        raise AgreementRefused(
            _("The agreement needs {expected} signatures, it has {count}."),
            expected=signatures,
            count=len(sigs) if isinstance(sigs, list) else 0,
        )
    headers = [
        _verified_signature(document, s, p) for s, p in zip(sigs, terms["parties"], strict=False)
    ]
    headers += [{}] * (2 - len(headers))
    parties = (_party(terms["parties"][0], headers[0]), _party(terms["parties"][1], headers[1]))
    return Agreement(
        id=str(terms["id"]),
        parties=parties,
        issued_at=_timestamp(terms["iat"]),
        valid_from=_timestamp(terms["nbf"]),
        valid_until=_timestamp(terms["exp"]),
        document=dict(document),
    )


# --- the workflow ----------------------------------------------------------------------------


def make_offer(
    session: Session,
    *,
    node: Node,
    peer: str,
    peer_key_thumbprint: str,
    accept_types: Collection[str] = (),
    open_services: Collection[str] = (),
    peer_accept_types: Collection[str] = (),
    peer_open_services: Collection[str] = (),
    validity: dt.timedelta = dt.timedelta(days=365),
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """An offer to ``peer`` signed by this registry (``node``): the whole terms, both sides."""
    code = node.settings.instance_code
    if peer == code:
        raise InvalidInput(_("An instance cannot federate with itself."))
    issued = (now or utcnow()).replace(microsecond=0)
    terms = {
        "typ": AGREEMENT_TYP,
        "version": 1,
        "id": str(uuid.uuid4()),
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "exp": int((issued + validity).timestamp()),
        "parties": [
            {
                "instance": code,
                "registry_key_thumbprint": registry_key_thumbprint(session, node=node),
                "accepts_credential_types": sorted(accept_types),
                "opens_services": sorted(open_services),
            },
            {
                "instance": peer,
                "registry_key_thumbprint": peer_key_thumbprint,
                "accepts_credential_types": sorted(peer_accept_types),
                "opens_services": sorted(peer_open_services),
            },
        ],
    }
    payload = keystore.b64url_encode(_canonical(terms))
    node.record(session, "federation.offered", {"id": terms["id"], "peer": peer})
    return {"payload": payload, "signatures": [_signature(session, node, payload)]}


def countersign(
    session: Session, *, node: Node, offer: Mapping[str, Any], peer_key_thumbprint: str
) -> dict[str, Any]:
    """Check ``offer`` (its signer's pinned key must be ``peer_key_thumbprint``, learnt out
    of band; it must pin this registry's key) and add this registry's signature."""
    offered = verify_agreement(offer, signatures=1)
    offerer, me = offered.parties
    if offerer.registry_key_thumbprint != peer_key_thumbprint:
        raise AgreementRefused(
            _("The offer is signed by key {kid}, not by the pinned key {pinned}."),
            kid=offerer.registry_key_thumbprint,
            pinned=peer_key_thumbprint,
        )
    code = node.settings.instance_code
    if me.instance != code or me.registry_key_thumbprint != registry_key_thumbprint(
        session, node=node
    ):
        raise AgreementRefused(
            _("The offer is not addressed to this registry ({instance})."), instance=code
        )
    if offered.valid_until <= utcnow():
        raise AgreementExpired(_("The offer {id} has expired."), id=offered.id)
    signatures = [*offer["signatures"], _signature(session, node, str(offer["payload"]))]
    node.record(session, "federation.countersigned", {"id": offered.id, "peer": offerer.instance})
    return {"payload": offer["payload"], "signatures": signatures}


def install_agreement(
    session: Session, *, node: Node, document: Mapping[str, Any], now: dt.datetime | None = None
) -> Agreement:
    """Verify and store a doubly signed agreement on this registry; idempotent."""
    agreement = verify_agreement(document)
    code = node.settings.instance_code
    me = agreement.party(code)
    if me.registry_key_thumbprint not in {
        k["kid"] for k in keystore.public_jwks(session, purpose=FEDERATION_PURPOSE)["keys"]
    }:
        raise AgreementRefused(
            _("The agreement pins a key that is not this registry's for {instance}."),
            instance=code,
        )
    if (now or utcnow()) >= agreement.valid_until:
        raise AgreementExpired(_("The agreement {id} has expired."), id=agreement.id)
    found = session.scalars(
        sa.select(FederationAgreement).where(FederationAgreement.agreement_id == agreement.id)
    ).one_or_none()
    if found is None:
        peer = agreement.peer_of(code)
        session.add(
            FederationAgreement(
                agreement_id=agreement.id,
                local_instance=code,
                peer_instance=peer.instance,
                peer_key_thumbprint=peer.registry_key_thumbprint,
                document=json.dumps(dict(document), sort_keys=True),
                valid_from=agreement.valid_from,
                valid_until=agreement.valid_until,
                installed_at=utcnow(),
            )
        )
        session.flush()
        node.record(session, "federation.installed", {"id": agreement.id, "peer": peer.instance})
    return agreement


def _rows(session: Session, peer: str | None = None) -> list[FederationAgreement]:
    query = sa.select(FederationAgreement).order_by(FederationAgreement.installed_at.desc())
    if peer is not None:
        query = query.where(FederationAgreement.peer_instance == peer)
    return list(session.scalars(query))


def list_agreements(session: Session) -> list[Agreement]:
    """Every installed agreement, verified again, newest first."""
    return [verify_agreement(json.loads(row.document)) for row in _rows(session)]


def agreement_with(session: Session, *, peer: str, now: dt.datetime | None = None) -> Agreement:
    """The newest installed agreement with ``peer`` valid now; ``AgreementNotFound`` or
    ``AgreementExpired``."""
    rows = _rows(session, peer)
    if not rows:
        raise AgreementNotFound(_("No federation agreement with {peer}."), peer=peer)
    moment = now or utcnow()
    for row in rows:
        agreement = verify_agreement(json.loads(row.document))
        if agreement.valid_at(moment):
            return agreement
    raise AgreementExpired(_("The federation agreement with {peer} is not valid now."), peer=peer)


def store_peer_document(session: Session, *, agreement_id: str, token: str) -> None:
    """Keep the peer's last trust list with the agreement (the caller verified it)."""
    row = session.scalars(
        sa.select(FederationAgreement).where(FederationAgreement.agreement_id == agreement_id)
    ).one_or_none()
    if row is None:
        raise AgreementNotFound(_("No federation agreement {id}."), id=agreement_id)
    row.peer_trust_list = token
    row.peer_trust_list_updated_at = utcnow()
    session.flush()


def peer_documents(session: Session) -> list[tuple[str, str]]:
    """(agreement id, stored trust list) of every agreement that has one."""
    return [
        (row.agreement_id, row.peer_trust_list)
        for row in _rows(session)
        if row.peer_trust_list is not None
    ]
