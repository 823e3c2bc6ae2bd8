"""OpenID4VP 1.0 verifier of the portal node: DCQL request, ``direct_post`` response.

The verifier's frontend calls ``create_request`` (a credential of one document type and the
claims it needs); it gets a secret ``transaction_id`` and the Authorization Request to give
the wallet, unsigned and by value (``openid4vp://?client_id=…&dcql_query=…``, a link or a QR):

* ``client_id`` = ``redirect_uri:<response_uri>`` (the ``redirect_uri`` Client Identifier
  Prefix: no signed request object, no certificate; ``x509_san_dns`` would need a signed
  request and is not done), ``response_type=vp_token``, ``response_mode=direct_post``,
  ``response_uri`` = ``<public_url>/credentials/oid4vp/response``, a fresh ``nonce`` (128
  bits), ``state`` (the request id, 128 bits), ``dcql_query`` with one Credential Query
  (``id`` ``credential``, ``format`` ``dc+sd-jwt``, ``meta.vct_values``, ``claims``), and
  ``client_metadata.vp_formats_supported``.

The wallet posts ``vp_token`` (JSON: ``{"credential": ["<SD-JWT+KB>"]}``) and ``state`` to
the response URI; ``receive_response`` finds the transaction by ``state`` and checks the
presentation with the one verifier (``trust.verifier_for``: signature, issuer trust,
validity, disclosures, status, and key binding with ``nonce`` = the request's nonce and
``aud`` = the ``client_id``), then adds a ``query`` check: the ``vct`` is one asked and every
requested claim is disclosed (``missing-claim``, ``unrequested-type``, ``malformed-vp-token``).
A transaction takes one response: afterwards (valid or not) a second is refused
(``InvalidOAuthRequest``), as is a response after ``REQUEST_LIFETIME``. The frontend reads the
outcome with ``get_result(transaction_id)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.i18n import _
from jisr.core.instance import Node
from jisr.credentials import doctypes, sdjwt
from jisr.credentials.errors import InvalidOAuthRequest, PresentationNotFound
from jisr.credentials.models import PresentationTransaction
from jisr.credentials.verify import Check, VerificationResult

REQUEST_LIFETIME = dt.timedelta(minutes=5)
QUERY_ID = "credential"
ClaimPath = Sequence[str | int | None]


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def response_uri(public_url: str) -> str:
    return f"{public_url.rstrip('/')}/credentials/oid4vp/response"


def client_id(public_url: str) -> str:
    """The verifier's Client Identifier (``redirect_uri`` prefix)."""
    return f"redirect_uri:{response_uri(public_url)}"


@dataclass(frozen=True)
class PresentationRequest:
    transaction_id: str
    request: dict[str, Any]
    wallet_link: str
    expires_at: dt.datetime


def dcql_query(vcts: str | Sequence[str], claims: Sequence[ClaimPath]) -> dict[str, Any]:
    query: dict[str, Any] = {"id": QUERY_ID, "format": sdjwt.SD_JWT_VC_TYP}
    query["meta"] = {"vct_values": [vcts] if isinstance(vcts, str) else list(vcts)}
    if claims:
        query["claims"] = [{"path": list(path)} for path in claims]
    return {"credentials": [query]}


def create_request(
    session: Session,
    *,
    node: Node,
    doc_type: str,
    claims: Sequence[ClaimPath],
    registry_node: Node | None = None,
    now: dt.datetime | None = None,
) -> PresentationRequest:
    """A new presentation request for a ``doc_type`` credential disclosing ``claims`` (claim
    path pointers, e.g. ``[["given_name"], ["address", "locality"]]``). The request accepts
    this instance's ``vct`` of the type and, with ``registry_node``, the federated peers'."""
    public_url = node.settings.public_url
    doc = doctypes.get_type(doc_type)
    for path in claims:
        if not path or not all(p is None or isinstance(p, str | int) for p in path):
            raise InvalidOAuthRequest(_("A claim path is a non-empty list of names or indexes."))
    now = now or utcnow()
    transaction_id = secrets.token_urlsafe(32)
    request_id = secrets.token_urlsafe(16)
    nonce = secrets.token_urlsafe(16)
    vcts = [doc.vct(public_url)]
    if registry_node is not None:
        from jisr.credentials import trust

        with trust.verifier_for(session, node=node, registry_node=registry_node) as verifier:
            vcts += sorted(verifier.trust.peer_vcts(doc.name) - {vcts[0]})
    query = dcql_query(vcts, claims)
    row = PresentationTransaction(
        transaction_hash=_hash(transaction_id),
        request_hash=_hash(request_id),
        nonce=nonce,
        client_id=client_id(public_url),
        dcql_query=query,
        created_at=now,
        expires_at=now + REQUEST_LIFETIME,
    )
    session.add(row)
    session.flush()
    request = {
        "client_id": row.client_id,
        "response_type": "vp_token",
        "response_mode": "direct_post",
        "response_uri": response_uri(public_url),
        "nonce": nonce,
        "state": request_id,
        "dcql_query": query,
        "client_metadata": {
            "vp_formats_supported": {
                sdjwt.SD_JWT_VC_TYP: {
                    "sd-jwt_alg_values": ["ES256"],
                    "kb-jwt_alg_values": ["ES256"],
                }
            }
        },
    }
    flat = {k: json.dumps(v) if isinstance(v, dict) else v for k, v in request.items()}
    return PresentationRequest(
        transaction_id=transaction_id,
        request=request,
        wallet_link="openid4vp://?" + urlencode(flat),
        expires_at=row.expires_at,
    )


def select(claims: Any, path: ClaimPath) -> list[Any]:
    """The values a claim path pointer selects in processed claims (OpenID4VP §7)."""
    selected = [claims]
    for step in path:
        found: list[Any] = []
        for value in selected:
            if isinstance(step, str) and isinstance(value, dict) and step in value:
                found.append(value[step])
            elif step is None and isinstance(value, list):
                found.extend(value)
            elif (
                isinstance(step, int)
                and not isinstance(step, bool)
                and isinstance(value, list)
                and 0 <= step < len(value)
            ):
                found.append(value[step])
        selected = found
    return selected


def _query_check(query: dict[str, Any], claims: dict[str, Any]) -> Check:
    credential_query = query["credentials"][0]
    vcts = credential_query.get("meta", {}).get("vct_values", [])
    if claims.get("vct") not in vcts:
        return Check("query", False, "unrequested-type", f"{claims.get('vct')} was not asked")
    for claim in credential_query.get("claims", []):
        if not select(claims, claim["path"]):
            path = "/".join(str(p) for p in claim["path"])
            return Check("query", False, "missing-claim", f"{path} is not disclosed")
    return Check("query", True, None, "every requested claim is disclosed")


def _presentation(vp_token: str | None) -> str:
    try:
        parsed = json.loads(vp_token or "")
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or set(parsed) != {QUERY_ID}:
        raise ValueError(f"vp_token must be a JSON object with the one key {QUERY_ID!r}")
    presentations = parsed[QUERY_ID]
    if not isinstance(presentations, list) or len(presentations) != 1:
        raise ValueError("vp_token must hold exactly one presentation")
    if not isinstance(presentations[0], str):
        raise ValueError("an SD-JWT VC presentation is a string")
    return presentations[0]


def receive_response(
    session: Session,
    *,
    node: Node,
    state: str | None,
    vp_token: str | None,
    error: str | None = None,
    registry_node: Node | None = None,
    now: dt.datetime | None = None,
) -> VerificationResult:
    """Check the wallet's Authorization Response (``direct_post``) and keep the outcome.
    The presentation is verified with ``trust.verifier_for``, as the API and the CLI do:
    federated peers' issuers count when ``registry_node`` (the registry) is given.
    ``InvalidOAuthRequest`` for an unknown ``state``, an expired request or one already
    answered; otherwise the result (valid or not) is stored and returned."""
    now = now or utcnow()
    row = session.scalars(
        sa.select(PresentationTransaction)
        .where(PresentationTransaction.request_hash == _hash(state or ""))
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise InvalidOAuthRequest(_("No presentation request has this state."))
    if row.completed_at is not None:
        raise InvalidOAuthRequest(_("This presentation request was already answered."))
    if row.expires_at <= now:
        raise InvalidOAuthRequest(_("This presentation request has expired."))
    if error is not None:
        result = VerificationResult([Check("query", False, "wallet-error", error[:200])])
    else:
        try:
            presentation = _presentation(vp_token)
        except ValueError as refused:
            result = VerificationResult([Check("query", False, "malformed-vp-token", str(refused))])
        else:
            from jisr.credentials import trust

            with trust.verifier_for(session, node=node, registry_node=registry_node) as verifier:
                result = verifier.verify(presentation, nonce=row.nonce, aud=row.client_id)
            result.checks.append(_query_check(row.dcql_query, result.claims))
    row.completed_at = now
    row.valid = result.valid
    outcome: dict[str, Any] = result.to_dict()
    if result.valid:
        outcome["claims"] = {
            k: v for k, v in result.claims.items() if k not in sdjwt.NEVER_DISCLOSABLE
        } | {"vct": result.claims.get("vct"), "iss": result.claims.get("iss")}
    row.result = outcome
    session.flush()
    node.record(
        session,
        "credential.presentation.received",
        {"valid": result.valid, "failed": [f"{c.check}:{c.reason}" for c in result.failed]},
        actor="oid4vp",
    )
    return result


def get_result(
    session: Session, *, transaction_id: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The state of a transaction for the frontend: ``pending``, ``expired``, or
    ``completed`` with ``valid``, the checks and (when valid) the disclosed claims."""
    row = session.scalars(
        sa.select(PresentationTransaction).where(
            PresentationTransaction.transaction_hash == _hash(transaction_id)
        )
    ).one_or_none()
    if row is None:
        raise PresentationNotFound(_("No such presentation request."))
    now = now or utcnow()
    if row.completed_at is None:
        return {"status": "expired" if row.expires_at <= now else "pending"}
    return {"status": "completed", **(row.result or {})}


__all__ = [
    "PresentationRequest",
    "client_id",
    "create_request",
    "dcql_query",
    "get_result",
    "receive_response",
    "response_uri",
    "select",
]
