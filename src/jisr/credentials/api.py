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

from jisr.core.http import node, session_of
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Node
from jisr.credentials import doctypes, service, trust
from jisr.credentials.errors import MalformedCredential

router = APIRouter(tags=["credentials"])

SessionDep = Annotated[Session, session_of(service.ISSUER_NODE)]


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
NodeDep = Annotated[Node, Depends(node(service.ISSUER_NODE))]
_PROBLEM: dict[str, Any] = {"content": {"application/problem+json": {}}}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Not found", **_PROBLEM}}
MAX_PRESENTATION_CHARS = 256 * 1024


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
