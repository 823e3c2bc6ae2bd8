"""Issuing, revoking and publishing verifiable documents (node ``portal``).

Which node issues: the ``portal`` node, the public face of an instance. Each issuing agency
has its own issuer key in the portal's keystore, purpose ``issuer-<agency>``
(``issuer-civil-registry``…), generated on first issuance and rotated with ``jisr keys``;
its issuer identifier is ``<public_url>/credentials/issuers/<agency>``, whose JWT VC Issuer
Metadata (``issuer`` + ``jwks``) is served at ``/.well-known/jwt-vc-issuer/credentials/
issuers/<agency>``. Each agency has one Token Status List (``<agency>-1``), published at
``<public_url>/credentials/status/<agency>-1``.

Issuance reads the person from the population register through ``jisr.identity.service``
(the register lives on the idp node: callers pass a session of it as ``register``), builds
the claims of the document type, makes every claim selectively disclosable, signs through
the keystore and records ``credential.issued`` on the portal's audit chain (type, agency,
subject, credential id: no other personal data). ``revoke_credential`` flips the entry's bit
and records ``credential.revoked``.

Functions take the portal node's ``session`` first, only ``flush()``, and raise the block's
errors.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.core.errors import InvalidInput, NotFound
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.credentials import doctypes, sdjwt, vcjose
from jisr.credentials.errors import (
    CredentialAlreadyRevoked,
    CredentialNotFound,
    DocumentTypeNotIssuedHere,
    InvalidHolderKey,
    StatusListError,
    StatusListFull,
)
from jisr.credentials.models import IssuedCredential, StatusList
from jisr.credentials.status_list import (
    INVALID,
    STATUS_LIST_TYP,
    StatusUnavailable,
    get_status,
    set_status,
    token_payload,
)
from jisr.credentials.verify import StaticTrust, Verifier
from jisr.identity import service as register_service

ISSUER_NODE = "portal"
FORMATS = ("sd-jwt", "vc-jose")
STATUS_LIST_VALIDITY = dt.timedelta(days=1)


def issuer_purpose(agency: str) -> str:
    return f"issuer-{agency}"


def issuer_id(public_url: str, agency: str) -> str:
    return f"{public_url.rstrip('/')}/credentials/issuers/{agency}"


def status_list_uri(public_url: str, name: str) -> str:
    return f"{public_url.rstrip('/')}/credentials/status/{name}"


@dataclass(frozen=True)
class Issued:
    """A freshly issued credential: its id and the SD-JWT VC to hand to the holder."""

    credential_id: str
    format: str
    doc_type: str
    token: str
    issued_at: dt.datetime
    expires_at: dt.datetime


# --- holder keys -----------------------------------------------------------------------------


def holder_jwk(text: str | bytes) -> dict[str, str]:
    """The public JWK of a holder key given as a JWK (public or private: only the public
    members are kept) or a PEM public or private key; ``InvalidHolderKey`` otherwise."""
    raw = text.encode() if isinstance(text, str) else text
    try:
        if raw.lstrip().startswith(b"{"):
            data = json.loads(raw)
            jwk = keystore.public_jwk_of(keystore.public_key_from_jwk(data))
        elif b"PRIVATE KEY" in raw:
            private = serialization.load_pem_private_key(raw, password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise ValueError("unsupported key type")
            jwk = keystore.public_jwk_of(private.public_key())
        else:
            public = serialization.load_pem_public_key(raw)
            if not isinstance(public, ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
                raise ValueError("unsupported key type")
            jwk = keystore.public_jwk_of(public)
    except (ValueError, TypeError, InvalidInput) as error:
        raise InvalidHolderKey(
            _("The holder key is not a P-256 or Ed25519 key (JWK or PEM): {reason}"),
            reason=str(error),
        ) from error
    return jwk


# --- keys and status lists -------------------------------------------------------------------


def issuer_key(session: Session, *, node: Node, agency: str) -> keystore.SigningKey:
    """The agency's active issuer key, generated on first use."""
    purpose = issuer_purpose(agency)
    try:
        return keystore.active_key(session, node.keys, purpose=purpose)
    except NotFound:
        keystore.generate_key(
            session, node.keys, purpose=purpose, algorithm=node.settings.key_algorithm
        )
        node.record(session, "credentials.issuer-key-created", {"agency": agency})
        return keystore.active_key(session, node.keys, purpose=purpose)


def _status_list(session: Session, *, node: Node, agency: str) -> StatusList:
    name = f"{agency}-1"
    found = session.scalars(sa.select(StatusList).where(StatusList.name == name)).one_or_none()
    if found is not None:
        return found
    size = node.settings.credentials_status_list_size
    now = utcnow()
    created = StatusList(
        name=name,
        agency=agency,
        bits=1,
        size=size,
        data=bytes((size + 7) // 8),
        used=0,
        created_at=now,
        updated_at=now,
    )
    session.add(created)
    session.flush()
    return created


def _free_index(session: Session, status_list: StatusList) -> int:
    """A random unused index (so an index reveals nothing about issuance order)."""
    if status_list.used >= status_list.size:
        raise StatusListFull(
            _("The status list {name} has no free index left."), name=status_list.name
        )
    for _attempt in range(64):
        index = secrets.randbelow(status_list.size)
        taken = session.scalar(
            sa.select(sa.func.count())
            .select_from(IssuedCredential)
            .where(
                IssuedCredential.status_list_id == status_list.id,
                IssuedCredential.status_index == index,
            )
        )
        if not taken:
            return index
    raise StatusListFull(_("The status list {name} is nearly full."), name=status_list.name)


# --- issuing and revoking --------------------------------------------------------------------


def issue_credential(
    session: Session,
    *,
    node: Node,
    register: Session,
    doc_type: str,
    national_id: str,
    holder_key: Mapping[str, Any] | None = None,
    format: str = "sd-jwt",
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> Issued:
    """Issue ``doc_type`` to the person ``national_id`` as an SD-JWT VC (``format``
    ``sd-jwt``) or a W3C VC 2.0 ``vc+jwt`` (``vc-jose``, see ``jisr.credentials.vcjose``).

    ``register`` is a session of the node holding the population register (idp);
    ``holder_key`` is the holder's public JWK, bound with ``cnf.jwk``.
    """
    if format not in FORMATS:
        raise InvalidInput(_("Unknown format {format}; use sd-jwt or vc-jose."), format=format)
    doc = doctypes.get_type(doc_type)
    settings = node.settings
    if doc.country != settings.instance_code[:2]:
        raise DocumentTypeNotIssuedHere(
            _("{type} documents are issued by {country}, not by instance {instance}."),
            type=doc.name,
            country=doc.country,
            instance=settings.instance_code,
        )
    person = register_service.get_person_by_national_id(register, national_id)
    key = issuer_key(session, node=node, agency=doc.agency)
    status_list = _status_list(session, node=node, agency=doc.agency)
    index = _free_index(session, status_list)
    issued_at = (now or utcnow()).replace(microsecond=0)
    expires_at = issued_at + doc.validity
    public_url = settings.public_url
    clear: dict[str, Any] = {
        "iss": issuer_id(public_url, doc.agency),
        "iat": int(issued_at.timestamp()),
        "nbf": int(issued_at.timestamp()),
        "exp": int(expires_at.timestamp()),
        "vct": doc.vct(public_url),
        "status": {
            "status_list": {"idx": index, "uri": status_list_uri(public_url, status_list.name)}
        },
    }
    if holder_key is not None:
        clear["cnf"] = {"jwk": dict(holder_key)}
    credential_id = str(uuid.uuid4())
    if format == "vc-jose":
        document = vcjose.build_payload(
            credential_id=credential_id,
            issuer=clear["iss"],
            vct=clear["vct"],
            valid_from=issued_at,
            valid_until=expires_at,
            subject=doc.claims_for(person),
            status_uri=status_list_uri(public_url, status_list.name),
            status_index=index,
            holder_key=holder_key,
        )
        token = jws.sign_compact(document, key, typ=vcjose.VC_JWT_TYP, headers={"cty": "vc"})
    else:
        payload, disclosures = sdjwt.build_payload(
            sdjwt.all_disclosable(clear | doc.claims_for(person))
        )
        token = "~".join((jws.sign_compact(payload, key, typ=sdjwt.SD_JWT_VC_TYP), *disclosures))
        token += "~"
    session.add(
        IssuedCredential(
            credential_id=credential_id,
            doc_type=doc.name,
            agency=doc.agency,
            format=format,
            subject_national_id=person.national_id,
            issuer_kid=key.kid,
            holder_key_thumbprint=(
                keystore.jwk_thumbprint(holder_key) if holder_key is not None else None
            ),
            status_list_id=status_list.id,
            status_index=index,
            issued_at=issued_at,
            expires_at=expires_at,
        )
    )
    status_list.used += 1
    status_list.updated_at = utcnow()
    session.flush()
    node.record(
        session,
        "credential.issued",
        {"id": credential_id, "type": doc.name, "agency": doc.agency, "format": format},
        actor=actor,
        subject=person.national_id,
    )
    return Issued(
        credential_id=credential_id,
        format=format,
        doc_type=doc.name,
        token=token,
        issued_at=issued_at,
        expires_at=expires_at,
    )


def get_credential(session: Session, credential_id: str) -> IssuedCredential:
    found = session.scalars(
        sa.select(IssuedCredential).where(IssuedCredential.credential_id == credential_id)
    ).one_or_none()
    if found is None:
        raise CredentialNotFound(_("No credential {id} was issued here."), id=credential_id)
    return found


def revoke_credential(
    session: Session,
    *,
    node: Node,
    credential_id: str,
    reason: str | None = None,
    actor: str | None = None,
) -> IssuedCredential:
    """Revoke a credential: its status list bit becomes 1 (seen by verifiers within one
    TTL). ``CredentialAlreadyRevoked`` when it already is."""
    credential = get_credential(session, credential_id)
    if credential.revoked_at is not None:
        raise CredentialAlreadyRevoked(_("Credential {id} was already revoked."), id=credential_id)
    status_list = session.get(StatusList, credential.status_list_id, with_for_update=True)
    assert status_list is not None
    data = bytearray(status_list.data)
    set_status(data, credential.status_index, INVALID, status_list.bits)
    status_list.data = bytes(data)
    status_list.updated_at = utcnow()
    credential.revoked_at = utcnow()
    credential.revocation_reason = reason
    session.flush()
    node.record(
        session,
        "credential.revoked",
        {"id": credential_id, "type": credential.doc_type, "reason": reason or ""},
        actor=actor,
        subject=credential.subject_national_id,
    )
    return credential


# --- publishing ------------------------------------------------------------------------------


def _issuer_purposes(session: Session) -> list[str]:
    return sorted(
        {k.purpose for k in keystore.list_keys(session) if k.purpose.startswith("issuer-")}
    )


def issuer_jwks(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every issuer key of this node (active and retired), as one JWKS."""
    keys: list[dict[str, Any]] = []
    for purpose in _issuer_purposes(session):
        keys.extend(keystore.public_jwks(session, purpose=purpose)["keys"])
    return {"keys": keys}


def issuers(session: Session, *, public_url: str) -> dict[str, dict[str, Any]]:
    """issuer identifier -> JWKS, for every agency with a key here."""
    return {
        issuer_id(public_url, purpose.removeprefix("issuer-")): keystore.public_jwks(
            session, purpose=purpose
        )
        for purpose in _issuer_purposes(session)
    }


def jwt_vc_issuer_metadata(session: Session, *, public_url: str, agency: str) -> dict[str, Any]:
    """JWT VC Issuer Metadata (draft-ietf-oauth-sd-jwt-vc) of one agency."""
    jwks = keystore.public_jwks(session, purpose=issuer_purpose(agency))
    if not jwks["keys"]:
        raise NotFound(_("No issuer {agency} here."), agency=agency)
    return {"issuer": issuer_id(public_url, agency), "jwks": jwks}


def status_list_uris(session: Session, *, node: Node, agency: str) -> list[str]:
    """The URIs of an agency's status lists (its first list is made on first use)."""
    _status_list(session, node=node, agency=agency)
    names = session.scalars(
        sa.select(StatusList.name).where(StatusList.agency == agency).order_by(StatusList.name)
    )
    return [status_list_uri(node.settings.public_url, name) for name in names]


def _list_by_name(session: Session, name: str) -> StatusList:
    found = session.scalars(sa.select(StatusList).where(StatusList.name == name)).one_or_none()
    if found is None:
        raise NotFound(_("No status list {name} here."), name=name)
    return found


def status_list_token(
    session: Session, *, node: Node, name: str, now: dt.datetime | None = None
) -> str:
    """The signed Status List Token (``typ: statuslist+jwt``) of one list, signed by its
    agency's issuer key."""
    status_list = _list_by_name(session, name)
    settings = node.settings
    iat = int((now or utcnow()).timestamp())
    payload = token_payload(
        uri=status_list_uri(settings.public_url, name),
        issuer=issuer_id(settings.public_url, status_list.agency),
        data=status_list.data,
        bits=status_list.bits,
        iat=iat,
        ttl=settings.credentials_status_ttl_seconds,
        validity=int(STATUS_LIST_VALIDITY.total_seconds()),
    )
    key = issuer_key(session, node=node, agency=status_list.agency)
    return jws.sign_compact(payload, key, typ=STATUS_LIST_TYP)


# --- verifying -------------------------------------------------------------------------------


class LocalStatus:
    """Status of this node's own lists, read from its database (no cache: the issuing
    node sees a revocation at once). Other URIs are not reachable in this slice."""

    def __init__(self, session: Session, *, public_url: str) -> None:
        self._session = session
        self._prefix = status_list_uri(public_url, "")

    def status(self, uri: str, index: int) -> int:
        if not uri.startswith(self._prefix):
            raise StatusUnavailable(
                "status-list-unavailable", f"{uri} is not a status list of this instance"
            )
        try:
            found = _list_by_name(self._session, uri.removeprefix(self._prefix))
            return get_status(found.data, index, found.bits)
        except (NotFound, IndexError) as error:
            raise StatusUnavailable("status-list-unavailable", str(error)) from error


def local_verifier(session: Session, *, node: Node) -> Verifier:
    """The verifier of this instance: its own issuers, its own status lists."""
    settings = node.settings
    trust = StaticTrust(issuers(session, public_url=settings.public_url))
    return Verifier(
        trust,
        status=LocalStatus(session, public_url=settings.public_url),
        kb_max_age=settings.credentials_key_binding_max_age_seconds,
    )


def status_list_name(uri: str, *, public_url: str) -> str:
    prefix = status_list_uri(public_url, "")
    if not uri.startswith(prefix):
        raise StatusListError(_("{uri} is not a status list of this instance."), uri=uri)
    return uri.removeprefix(prefix)


__all__ = [
    "FORMATS",
    "ISSUER_NODE",
    "Issued",
    "LocalStatus",
    "get_credential",
    "holder_jwk",
    "issue_credential",
    "issuer_id",
    "issuer_jwks",
    "issuer_key",
    "issuer_purpose",
    "issuers",
    "jwt_vc_issuer_metadata",
    "local_verifier",
    "revoke_credential",
    "status_list_name",
    "status_list_token",
    "status_list_uri",
    "status_list_uris",
]
