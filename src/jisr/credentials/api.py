"""HTTP API of verifiable documents, served by the ``portal`` node.

Public, read-only documents a wallet or verifier fetches:

* ``GET /.well-known/jwt-vc-issuer/credentials/issuers/{agency}``: JWT VC Issuer Metadata
  (``issuer`` + ``jwks``), the key discovery of draft-ietf-oauth-sd-jwt-vc;
* ``GET /credentials/jwks``: every issuer key of the instance, one JWKS;
* ``GET /credentials/types/{name}/v1`` (the ``vct`` URL itself, as the current draft
  retrieves it) and ``GET /.well-known/vct/credentials/types/{name}/v1`` (the form of earlier
  drafts): SD-JWT VC Type Metadata;
* ``GET /credentials/status/{name}``: a Status List Token (``application/statuslist+jwt``),
  ``Cache-Control: max-age=<ttl>``.

And ``POST /api/credentials/verify``: the body is a presentation, either raw
(``application/dc+sd-jwt`` or ``text/plain``) or JSON ``{"presentation", "nonce", "aud"}``;
the answer is ``{"valid": bool, "checks": [...]}`` (200 whether valid or not).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy.orm import Session

from jisr.core.errors import Forbidden, Unauthorized
from jisr.core.http import node, session_of
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Node
from jisr.credentials import doctypes, oid4vci, service, trust
from jisr.credentials.errors import MalformedCredential
from jisr.identity.oidc.server import Provider

router = APIRouter(tags=["credentials"])
# The idp's administrative scope of an agency desk's client
# (``jisr.identity.oidc.service.CREDENTIAL_OFFER_SCOPE``).
OFFER_SCOPE = "credential_offer"

SessionDep = Annotated[Session, session_of(service.ISSUER_NODE)]


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
NodeDep = Annotated[Node, Depends(node(service.ISSUER_NODE))]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found", **_PROBLEM}}
MAX_PRESENTATION_CHARS = 256 * 1024


class OfferCreate(BaseModel):
    type: str = Field(description="The document type, e.g. birth-certificate.", max_length=64)
    person: str = Field(description="The person's national id, e.g. MA:AB123456.", max_length=32)
    tx_code: bool = Field(True, description="Protect the offer with a 6-digit transaction code.")


class OfferRead(BaseModel):
    offer_id: str
    uri: str = Field(description="openid-credential-offer://… for the wallet (link or QR).")
    tx_code: str | None = Field(description="To tell the person apart, never in the link.")
    expires_at: str


IdpSessionDep = Annotated[Session, session_of("idp")]
_DESK: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or not a valid one", **_PROBLEM},
    403: {"description": "A token without the credential_offer scope", **_PROBLEM},
    404: {"description": "No such document type, or person in the register", **_PROBLEM},
    409: {"description": "A document type this instance does not issue", **_PROBLEM},
}


def _desk_client(request: Request, idp: Session) -> str:
    """The agency desk's client behind the request: a ``client_credentials`` access token
    of this instance's identity provider with the ``credential_offer`` scope."""
    scheme, _sep, value = request.headers.get("authorization", "").partition(" ")
    node_of_idp: Node | None = request.app.state.nodes.get("idp")
    if scheme.lower() != "bearer" or not value.strip() or node_of_idp is None:
        raise Unauthorized(_("A bearer access token is required."))
    token = Provider(idp, node_of_idp).find_access_token(value.strip())
    if token is None or token.is_expired() or token.is_revoked():
        raise Unauthorized(_("The access token is unknown, expired or revoked."))
    if token.row.person_id is not None or OFFER_SCOPE not in token.get_scope().split():
        raise Forbidden(
            _("Offers are made by an agency desk's client with the scope {scope}."),
            scope=OFFER_SCOPE,
        )
    return str(token.get_client().client_id)


@router.post(
    "/api/credentials/offers",
    status_code=201,
    response_model=OfferRead,
    responses=_DESK,
    summary="An agency desk offers a document to a person (OpenID4VCI pre-authorized code)",
)
def create_offer(
    request: Request,
    body: OfferCreate,
    session: SessionDep,
    idp: IdpSessionDep,
    portal: NodeDep,
) -> dict[str, Any]:
    client_id = _desk_client(request, idp)
    made = oid4vci.create_offer(
        session,
        node=portal,
        register=idp,
        doc_type=body.type,
        national_id=body.person,
        tx_code=body.tx_code,
        actor=f"client:{client_id}",
    )
    return {
        "offer_id": made.offer_id,
        "uri": made.wallet_link,
        "tx_code": made.tx_code,
        "expires_at": made.expires_at.isoformat(),
    }


class VerifyRequest(BaseModel):
    presentation: str = Field(max_length=MAX_PRESENTATION_CHARS)
    nonce: str | None = None
    aud: str | None = None


class CheckRead(BaseModel):
    check: str
    ok: bool
    reason: str | None
    detail: str


class VerificationRead(BaseModel):
    valid: bool
    checks: list[CheckRead]


@router.get(
    "/.well-known/jwt-vc-issuer/credentials/issuers/{agency}",
    responses=NOT_FOUND,
    summary="JWT VC Issuer Metadata of one issuing agency",
)
def jwt_vc_issuer(agency: str, session: SessionDep, portal: NodeDep) -> dict[str, Any]:
    return service.jwt_vc_issuer_metadata(
        session, public_url=portal.settings.public_url, agency=agency
    )


@router.get("/credentials/jwks", summary="Every issuer key of this instance")
def jwks(session: SessionDep) -> dict[str, Any]:
    return service.issuer_jwks(session)


def _type_metadata(name: str, version: str, portal: Node) -> dict[str, Any]:
    doc = doctypes.type_by_vct_path(f"credentials/types/{name}/{version}")
    return doctypes.type_metadata(doc, portal.settings.public_url)


@router.get(
    "/credentials/types/{name}/{version}", responses=NOT_FOUND, summary="SD-JWT VC Type Metadata"
)
def type_metadata(name: str, version: str, portal: NodeDep) -> dict[str, Any]:
    return _type_metadata(name, version, portal)


@router.get(
    "/.well-known/vct/credentials/types/{name}/{version}",
    responses=NOT_FOUND,
    summary="SD-JWT VC Type Metadata (well-known form of earlier drafts)",
)
def type_metadata_well_known(name: str, version: str, portal: NodeDep) -> dict[str, Any]:
    return _type_metadata(name, version, portal)


@router.get(
    "/credentials/status/{name}",
    responses={
        200: {"content": {"application/statuslist+jwt": {}}, "description": "Status List Token"},
        **NOT_FOUND,
    },
    response_class=Response,
    summary="A Token Status List (JWT)",
)
def status_list(name: str, session: SessionDep, portal: NodeDep) -> Response:
    token = service.status_list_token(session, node=portal, name=name)
    ttl = portal.settings.credentials_status_ttl_seconds
    return Response(
        token,
        media_type="application/statuslist+jwt",
        headers={"Cache-Control": f"max-age={ttl}"},
    )


@router.post(
    "/api/credentials/verify",
    response_model=VerificationRead,
    responses={400: {"description": "Not a presentation at all", **_PROBLEM}},
    summary="Verify an SD-JWT VC presentation: every check with its reason",
    openapi_extra={
        "requestBody": {
            "content": {
                "application/dc+sd-jwt": {"schema": {"type": "string"}},
                "application/json": {"schema": VerifyRequest.model_json_schema()},
            },
            "required": True,
        }
    },
)
def verify(request: Request, body: RawBody, session: SessionDep, portal: NodeDep) -> dict[str, Any]:
    # A sync handler (FastAPI runs it in a worker thread): the database work and the
    # signature checks must not block the event loop; the body is read by ``_raw_body``.
    try:
        if request.headers.get("content-type", "").startswith("application/json"):
            parsed = VerifyRequest.model_validate(json.loads(body))
        else:
            parsed = VerifyRequest(presentation=body.decode("ascii").strip())
    except (ValueError, ValidationError) as error:
        raise MalformedCredential(
            _("The body is not a presentation: {reason}"), reason=str(error).splitlines()[0]
        ) from error
    # This instance's issuers, and its federated peers' when the registry is served here.
    registry: Node | None = request.app.state.nodes.get(REGISTRY_NODE)
    with trust.verifier_for(session, node=portal, registry_node=registry) as verifier:
        result = verifier.verify(parsed.presentation.strip(), nonce=parsed.nonce, aud=parsed.aud)
    portal.record(
        session,
        "credential.verified",
        {
            "valid": result.valid,
            "failed": [f"{c.check}:{c.reason}" for c in result.failed],
            "vct": str(result.claims.get("vct", "")),
        },
        actor="api",
    )
    return result.to_dict()
