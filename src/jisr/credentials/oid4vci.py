"""OpenID4VCI 1.0 credential issuer of the portal node: the Pre-Authorized Code Flow.

The Credential Issuer Identifier is the instance's public URL; its metadata is served at
``/.well-known/openid-credential-issuer`` and, as the issuer is its own authorization
server for the pre-authorized grant, RFC 8414 metadata at
``/.well-known/oauth-authorization-server``. One credential configuration per document type
this instance issues (``credential_configuration_id`` = the type name, e.g.
``birth-certificate``), format ``dc+sd-jwt``, key proofs ``jwt`` with ES256, binding ``jwk``.

The flow:

1. an agency desk (``jisr credentials offer``, after checking the person out of band) calls
   ``create_offer``: a random Pre-Authorized Code (256 bits, stored as SHA-256, valid
   ``OFFER_LIFETIME``, usable once) and a 6-digit Transaction Code (``tx_code``) to give the
   person through another channel (SMS, the desk's screen); the Credential Offer goes to the
   wallet by value, ``openid-credential-offer://?credential_offer=<JSON>`` (a link or a QR);
2. the wallet exchanges the code and the ``tx_code`` at the token endpoint
   (``exchange_pre_authorized_code``) for an access token (256 bits, SHA-256 at rest,
   ``TOKEN_LIFETIME``). ``TX_CODE_MAX_FAILURES`` wrong codes burn the offer (a 6-digit code
   cannot be guessed in 3 tries but once in 333,333);
3. the wallet takes a ``c_nonce`` from the nonce endpoint (``new_nonce``, single use,
   ``NONCE_LIFETIME``) and sends a key proof (``typ: openid4vci-proof+jwt``, the public key
   as ``jwk`` header, ``aud`` = the Credential Issuer Identifier, ``iat``, ``nonce``) to the
   credential endpoint (``issue_with_proof``), which issues through
   ``jisr.credentials.service.issue_credential``: the same SD-JWT VC, bound (``cnf.jwk``) to
   the proof's key. One offer gives one credential.

Refusals raise ``OAuthError`` subclasses (``jisr.credentials.errors``), answered as OAuth
JSON by the router. Functions take the portal's ``session`` first and only ``flush()``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto import jws, keystore
from jisr.core.errors import CryptoError
from jisr.core.i18n import LANGUAGES, _
from jisr.core.instance import Node
from jisr.core.settings import Settings
from jisr.credentials import doctypes, sdjwt, service
from jisr.credentials.errors import (
    DocumentTypeNotIssuedHere,
    InsufficientScope,
    InvalidAccessToken,
    InvalidCredentialRequest,
    InvalidGrant,
    InvalidNonce,
    InvalidOAuthRequest,
    InvalidProof,
    UnknownCredentialConfiguration,
)
from jisr.credentials.models import CredentialOffer, IssuanceNonce
from jisr.credentials.verify import import_jwk
from jisr.identity import service as register_service

PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
PROOF_ALGORITHMS = ("ES256",)
OFFER_LIFETIME = dt.timedelta(minutes=10)
TOKEN_LIFETIME = dt.timedelta(minutes=5)
NONCE_LIFETIME = dt.timedelta(minutes=5)
PROOF_MAX_AGE = dt.timedelta(minutes=5)
LEEWAY = dt.timedelta(seconds=60)
TX_CODE_LENGTH = 6
TX_CODE_MAX_FAILURES = 3


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def credential_issuer(public_url: str) -> str:
    """The Credential Issuer Identifier: the instance's public URL."""
    return public_url.rstrip("/")


# The portal is the authorization server of the pre-authorized grant under its own
# identifier (RFC 8414 metadata at /.well-known/oauth-authorization-server/credentials/oid4vci);
# the identity provider, whose identifier is the public URL, is the one of the code flow.
PRE_AUTHORIZATION_PATH = "/credentials/oid4vci"
CREDENTIAL_SCOPE_PREFIX = "credential:"
AT_JWT_TYP = "at+jwt"


def pre_authorization_server(public_url: str) -> str:
    return credential_issuer(public_url) + PRE_AUTHORIZATION_PATH


def credential_scope(configuration_id: str) -> str:
    """The OAuth scope of a credential configuration, asked at the identity provider."""
    return CREDENTIAL_SCOPE_PREFIX + configuration_id


def endpoint(public_url: str, path: str) -> str:
    return f"{credential_issuer(public_url)}/credentials/oid4vci/{path}"


def configurations(settings: Settings) -> dict[str, doctypes.DocumentType]:
    """credential_configuration_id -> document type, for the types this instance issues."""
    country = settings.instance_code[:2]
    return {name: doc for name, doc in doctypes.document_types().items() if doc.country == country}


def _configuration(doc: doctypes.DocumentType, public_url: str) -> dict[str, Any]:
    return {
        "format": sdjwt.SD_JWT_VC_TYP,
        "scope": credential_scope(doc.name),
        "vct": doc.vct(public_url),
        "credential_signing_alg_values_supported": ["ES256"],
        "cryptographic_binding_methods_supported": ["jwk"],
        "proof_types_supported": {
            "jwt": {"proof_signing_alg_values_supported": list(PROOF_ALGORITHMS)}
        },
        "credential_metadata": {
            "display": [
                {
                    "name": doc.display[lang]["name"],
                    "locale": lang,
                    "description": doc.display[lang]["description"],
                }
                for lang in LANGUAGES
            ],
            "claims": [
                {
                    "path": [claim.name],
                    "display": [{"name": claim.labels[lang], "locale": lang} for lang in LANGUAGES],
                }
                for claim in doc.claims
            ],
        },
    }


def issuer_metadata(settings: Settings) -> dict[str, Any]:
    """Credential Issuer Metadata (OpenID4VCI 1.0 §12.2)."""
    public_url = settings.public_url
    return {
        "credential_issuer": credential_issuer(public_url),
        # the identity provider (code flow, scope per configuration), then the portal's own
        # authorization server of the pre-authorized grant
        "authorization_servers": [
            credential_issuer(public_url),
            pre_authorization_server(public_url),
        ],
        "credential_endpoint": endpoint(public_url, "credential"),
        "nonce_endpoint": endpoint(public_url, "nonce"),
        "display": [{"name": settings.instance_name, "locale": lang} for lang in LANGUAGES],
        "credential_configurations_supported": {
            name: _configuration(doc, public_url)
            for name, doc in sorted(configurations(settings).items())
        },
    }


def authorization_server_metadata(settings: Settings) -> dict[str, Any]:
    """RFC 8414 metadata of the portal as authorization server of the pre-authorized grant."""
    return {
        "issuer": pre_authorization_server(settings.public_url),
        "token_endpoint": endpoint(settings.public_url, "token"),
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "token_endpoint_auth_methods_supported": ["none"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


# --- offers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    """A new Credential Offer: the offer object, the wallet link, and the Transaction Code to
    hand to the person out of band (never put it in the link)."""

    offer_id: str
    offer: dict[str, Any]
    wallet_link: str
    tx_code: str | None
    expires_at: dt.datetime


def _offer_object(row: CredentialOffer, *, code: str, public_url: str) -> dict[str, Any]:
    grant: dict[str, Any] = {
        "pre-authorized_code": code,
        "authorization_server": pre_authorization_server(public_url),
    }
    if row.tx_code_hash is not None:
        grant["tx_code"] = {
            "input_mode": "numeric",
            "length": TX_CODE_LENGTH,
            "description": "Enter the code the issuing office gave you.",
        }
    return {
        "credential_issuer": credential_issuer(public_url),
        "credential_configuration_ids": [row.configuration_id],
        "grants": {PRE_AUTHORIZED_GRANT: grant},
    }


def create_offer(
    session: Session,
    *,
    node: Node,
    register: Session,
    doc_type: str,
    national_id: str,
    tx_code: bool = True,
    actor: str | None = None,
    now: dt.datetime | None = None,
) -> Offer:
    """Offer ``doc_type`` to the person ``national_id`` (``register``: a session of the node
    holding the population register). The Pre-Authorized Code is returned once, inside the
    offer; only its SHA-256 is kept."""
    settings = node.settings
    doc = doctypes.get_type(doc_type)
    if doc.name not in configurations(settings):
        raise DocumentTypeNotIssuedHere(
            _("{type} documents are issued by {country}, not by instance {instance}."),
            type=doc.name,
            country=doc.country,
            instance=settings.instance_code,
        )
    person = register_service.get_person_by_national_id(register, national_id)
    now = now or utcnow()
    code = secrets.token_urlsafe(32)
    offer_id = secrets.token_urlsafe(24)
    tx = f"{secrets.randbelow(10**TX_CODE_LENGTH):0{TX_CODE_LENGTH}d}" if tx_code else None
    row = CredentialOffer(
        offer_id=offer_id,
        configuration_id=doc.name,
        subject_national_id=person.national_id,
        code_hash=_hash(code),
        tx_code_hash=_hash(tx) if tx is not None else None,
        tx_code_failures=0,
        created_at=now,
        expires_at=now + OFFER_LIFETIME,
    )
    session.add(row)
    session.flush()
    node.record(
        session,
        "credential.offer.created",
        {"offer": offer_id, "type": doc.name, "tx_code": tx is not None},
        actor=actor,
        subject=person.national_id,
    )
    offer = _offer_object(row, code=code, public_url=settings.public_url)
    return Offer(
        offer_id=offer_id,
        offer=offer,
        wallet_link="openid-credential-offer://?credential_offer="
        + quote(json.dumps(offer, separators=(",", ":")), safe=""),
        tx_code=tx,
        expires_at=row.expires_at,
    )


# --- token endpoint --------------------------------------------------------------------------


def exchange_pre_authorized_code(
    session: Session,
    *,
    node: Node,
    code: str | None,
    tx_code: str | None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The Token Response for a Pre-Authorized Code (and its Transaction Code)."""
    if not code:
        raise InvalidOAuthRequest(_("The pre-authorized_code parameter is missing."))
    now = now or utcnow()
    row = session.scalars(
        sa.select(CredentialOffer).where(CredentialOffer.code_hash == _hash(code)).with_for_update()
    ).one_or_none()
    if row is None:
        raise InvalidGrant(_("The pre-authorized code is not known."))
    if row.redeemed_at is not None:
        raise InvalidGrant(_("The pre-authorized code was already used."))
    if row.expires_at <= now:
        raise InvalidGrant(_("The pre-authorized code has expired."))
    if row.tx_code_hash is None:
        if tx_code is not None:
            raise InvalidOAuthRequest(_("This offer takes no transaction code."))
    elif tx_code is None:
        raise InvalidOAuthRequest(_("This offer needs its transaction code (tx_code)."))
    elif not secrets.compare_digest(_hash(tx_code), row.tx_code_hash):
        row.tx_code_failures += 1
        if row.tx_code_failures >= TX_CODE_MAX_FAILURES:
            row.expires_at = now
        session.flush()
        node.record(
            session,
            "credential.offer.tx-code-refused",
            {"offer": row.offer_id, "failures": row.tx_code_failures},
            subject=row.subject_national_id,
        )
        raise InvalidGrant(_("The transaction code is wrong."))
    token = secrets.token_urlsafe(32)
    row.redeemed_at = now
    row.token_hash = _hash(token)
    row.token_expires_at = now + TOKEN_LIFETIME
    session.flush()
    node.record(
        session,
        "credential.offer.redeemed",
        {"offer": row.offer_id, "type": row.configuration_id},
        subject=row.subject_national_id,
    )
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": int(TOKEN_LIFETIME.total_seconds()),
    }


# --- nonce and credential endpoints ----------------------------------------------------------


def new_nonce(session: Session, *, now: dt.datetime | None = None) -> str:
    """A fresh ``c_nonce`` (128 bits), accepted in one key proof within ``NONCE_LIFETIME``."""
    now = now or utcnow()
    value = secrets.token_urlsafe(16)
    session.add(IssuanceNonce(nonce_hash=_hash(value), expires_at=now + NONCE_LIFETIME))
    session.execute(sa.delete(IssuanceNonce).where(IssuanceNonce.expires_at < now - NONCE_LIFETIME))
    session.flush()
    return value


def _es256_ok(jwk: Mapping[str, Any], signing_input: bytes, signature: bytes) -> bool:
    key = import_jwk(jwk)
    if not isinstance(key, ec.EllipticCurvePublicKey) or len(signature) != 64:
        return False
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def check_proof(
    session: Session, proof: Any, *, audience: str, now: dt.datetime | None = None
) -> dict[str, str]:
    """Check one ``jwt`` key proof; the holder's public JWK it proves possession of.

    Refuses (``InvalidProof``) a malformed proof, another ``typ``, an algorithm outside
    ``PROOF_ALGORITHMS``, a key given otherwise than as a public ``jwk``, a bad signature,
    another ``aud``, an ``iat`` too old or in the future, and a proof without ``nonce``;
    ``InvalidNonce`` for a ``c_nonce`` that is unknown, used or expired (it is used now).
    """
    now = now or utcnow()
    parts = proof.split(".") if isinstance(proof, str) else []
    try:
        if len(parts) != 3:
            raise sdjwt.SdJwtRefused("malformed", "a JWT has three parts")
        header = sdjwt.decode_segment(parts[0])
        body = sdjwt.decode_segment(parts[1])
        signature = sdjwt.b64url_decode(parts[2])
    except (sdjwt.SdJwtRefused, ValueError) as error:
        raise InvalidProof(_("The key proof is not a JWT.")) from error
    if not isinstance(header, dict) or not isinstance(body, dict):
        raise InvalidProof(_("The key proof is not a JWT."))
    if header.get("typ") != PROOF_TYP:
        raise InvalidProof(_("The key proof's typ must be {typ}."), typ=PROOF_TYP)
    if header.get("alg") not in PROOF_ALGORITHMS:
        raise InvalidProof(_("The key proof's algorithm is not accepted."))
    jwk = header.get("jwk")
    if not isinstance(jwk, dict) or "d" in jwk or "kid" in header or "x5c" in header:
        raise InvalidProof(_("The key proof must carry the public key as jwk (no kid, no x5c)."))
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    try:
        signed = _es256_ok(jwk, signing_input, signature)
    except ValueError:
        signed = False
    if not signed:
        raise InvalidProof(_("The key proof's signature does not verify with its jwk."))
    if body.get("aud") != audience:
        raise InvalidProof(_("The key proof is for another audience than {aud}."), aud=audience)
    iat = body.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidProof(_("The key proof has no iat."))
    if not (now - PROOF_MAX_AGE - LEEWAY).timestamp() <= iat <= (now + LEEWAY).timestamp():
        raise InvalidProof(_("The key proof's iat is too old or in the future."))
    nonce = body.get("nonce")
    if not isinstance(nonce, str) or not nonce:
        raise InvalidProof(_("The key proof has no nonce; take a c_nonce from the nonce endpoint."))
    row = session.scalars(
        sa.select(IssuanceNonce).where(IssuanceNonce.nonce_hash == _hash(nonce)).with_for_update()
    ).one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise InvalidNonce(_("The key proof's nonce is unknown, used or expired."))
    row.used_at = now
    session.flush()
    return keystore.public_jwk_of(import_jwk(jwk))


def _offer_for_token(
    session: Session, access_token: str | None, now: dt.datetime
) -> CredentialOffer:
    if not access_token:
        raise InvalidAccessToken(_("The credential endpoint needs a Bearer access token."))
    row = session.scalars(
        sa.select(CredentialOffer)
        .where(CredentialOffer.token_hash == _hash(access_token))
        .with_for_update()
    ).one_or_none()
    if row is None or row.token_expires_at is None or row.token_expires_at <= now:
        raise InvalidAccessToken(_("The access token is unknown or expired."))
    if row.credential_id is not None:
        raise InvalidAccessToken(_("The access token was already used for its credential."))
    return row


def _idp_access_token(
    register: Session, access_token: str, *, public_url: str, now: dt.datetime
) -> dict[str, Any]:
    """The claims of a JWT access token (RFC 9068) of this instance's identity provider,
    verified with its JWKS (``register``: the idp node's session): ``typ: at+jwt``, ``iss``
    the provider, ``aud`` this credential issuer, unexpired, with a ``scope`` and the
    person's ``national_id``; ``InvalidAccessToken`` otherwise."""
    issuer = credential_issuer(public_url)
    try:
        claims = jws.verify_compact(
            access_token, keystore.public_jwks(register, purpose="signing"), typ=AT_JWT_TYP
        ).json()
    except (CryptoError, ValueError) as error:
        raise InvalidAccessToken(_("The access token does not verify.")) from error
    audience = claims.get("aud") if isinstance(claims, dict) else None
    if (
        not isinstance(claims, dict)
        or claims.get("iss") != issuer
        or not (audience == issuer or (isinstance(audience, list) and issuer in audience))
    ):
        raise InvalidAccessToken(_("The access token is not for this credential issuer."))
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int) or not isinstance(iat, int) or exp <= now.timestamp():
        raise InvalidAccessToken(_("The access token is unknown or expired."))
    if iat > (now + LEEWAY).timestamp():
        raise InvalidAccessToken(_("The access token is issued in the future."))
    if not isinstance(claims.get("scope"), str) or not isinstance(claims.get("national_id"), str):
        raise InvalidAccessToken(_("The access token names no scope or person."))
    return claims


def issue_with_proof(
    session: Session,
    *,
    node: Node,
    register: Session,
    access_token: str | None,
    request: Any,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The Credential Response for a Credential Request (one ``jwt`` proof). The access token
    is the portal's own (pre-authorized grant: one credential per offer) or a JWT access
    token of the identity provider (authorization code flow: a credential for the person who
    signed in, of a configuration whose scope the token carries)."""
    now = now or utcnow()
    row: CredentialOffer | None = None
    idp_claims: dict[str, Any] | None = None
    if access_token and access_token.count(".") == 2:
        idp_claims = _idp_access_token(
            register, access_token, public_url=node.settings.public_url, now=now
        )
    else:
        row = _offer_for_token(session, access_token, now)
    if not isinstance(request, dict):
        raise InvalidCredentialRequest(_("The credential request is not a JSON object."))
    if "credential_identifier" in request:
        raise InvalidCredentialRequest(
            _("Use credential_configuration_id, not credential_identifier.")
        )
    configuration_id = request.get("credential_configuration_id")
    if not isinstance(configuration_id, str):
        raise InvalidCredentialRequest(_("The credential_configuration_id is missing."))
    if configuration_id not in configurations(node.settings):
        raise UnknownCredentialConfiguration(
            _("No credential configuration {id} here."), id=configuration_id
        )
    if row is not None and configuration_id != row.configuration_id:
        raise InvalidCredentialRequest(
            _("The access token was not issued for {id}."), id=configuration_id
        )
    if (
        idp_claims is not None
        and credential_scope(configuration_id) not in str(idp_claims["scope"]).split()
    ):
        raise InsufficientScope(
            _("The access token does not carry the scope {scope}."),
            scope=credential_scope(configuration_id),
        )
    proofs = request.get("proofs")
    if not isinstance(proofs, dict) or set(proofs) != {"jwt"}:
        raise InvalidProof(_("The request needs proofs with one jwt key proof."))
    jwts = proofs["jwt"]
    if not isinstance(jwts, list) or len(jwts) != 1:
        raise InvalidProof(_("Send exactly one jwt key proof (no batch issuance here)."))
    holder = check_proof(
        session, jwts[0], audience=credential_issuer(node.settings.public_url), now=now
    )
    if row is not None:
        national_id = row.subject_national_id
    else:
        assert idp_claims is not None
        national_id = str(idp_claims["national_id"])
    issued = service.issue_credential(
        session,
        node=node,
        register=register,
        doc_type=configuration_id,
        national_id=national_id,
        holder_key=holder,
        actor="oid4vci",
    )
    if row is not None:
        row.credential_id = issued.credential_id
    session.flush()
    return {"credentials": [{"credential": issued.token}]}


__all__ = [
    "PRE_AUTHORIZATION_PATH",
    "PRE_AUTHORIZED_GRANT",
    "PROOF_TYP",
    "Offer",
    "authorization_server_metadata",
    "check_proof",
    "configurations",
    "create_offer",
    "credential_issuer",
    "credential_scope",
    "pre_authorization_server",
    "endpoint",
    "exchange_pre_authorized_code",
    "issue_with_proof",
    "issuer_metadata",
    "new_nonce",
]
