"""HTTP endpoints of OpenID4VCI (issuer) and OpenID4VP (verifier), served by the portal.

Issuer (``jisr.credentials.oid4vci``):

* ``GET /.well-known/openid-credential-issuer``: Credential Issuer Metadata;
* ``GET /.well-known/oauth-authorization-server``: RFC 8414 metadata (pre-authorized grant);
* ``POST /credentials/oid4vci/token``: form ``grant_type``, ``pre-authorized_code``,
  ``tx_code``;
* ``POST /credentials/oid4vci/nonce``: ``{"c_nonce"}``;
* ``POST /credentials/oid4vci/credential``: Bearer token, JSON
  ``{"credential_configuration_id", "proofs": {"jwt": [proof]}}``.

Verifier (``jisr.credentials.oid4vp``):

* ``POST /api/credentials/oid4vp/requests``: JSON ``{"type", "claims": [[...path]]}`` →
  ``{"transaction_id", "request", "wallet_link", "expires_at"}``;
* ``POST /credentials/oid4vp/response``: the wallet's form ``vp_token``, ``state``;
* ``GET /api/credentials/oid4vp/transactions/{transaction_id}``: the outcome.

The wallet-facing endpoints answer OAuth JSON errors (``{"error", "error_description"}``,
``Cache-Control: no-store``; ``WWW-Authenticate`` on 401); the frontend API answers RFC 9457.
Each refusal is recorded on the portal's audit chain (``oid4vc.refused``). The handler
*returns* the error response, so the request's transaction commits what the refusal
counted (a wrong ``tx_code``, a spent ``c_nonce``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from jisr.core.http import node, session_of
from jisr.core.i18n import _
from jisr.core.instance import REGISTRY_NODE, Node
from jisr.credentials import oid4vci, oid4vp, service
from jisr.credentials.errors import InvalidOAuthRequest, OAuthError, UnsupportedGrantType

router = APIRouter(tags=["openid4vc"])

SessionDep = Annotated[Session, session_of(service.ISSUER_NODE)]
NodeDep = Annotated[Node, Depends(node(service.ISSUER_NODE))]
NO_STORE = {"Cache-Control": "no-store"}
_OAUTH: dict[int | str, dict[str, Any]] = {
    400: {"description": "OAuth error (`error`, `error_description`)"},
}


def register_session(request: Request) -> Iterator[Session]:
    """A session of the node holding the population register (idp), read-only use."""
    with request.app.state.instance.node("idp").session() as session:
        yield session


RegisterDep = Annotated[Session, Depends(register_session)]


def _oauth_error(session: Session, portal: Node, error: OAuthError, where: str) -> JSONResponse:
    portal.record(
        session, "oid4vc.refused", {"endpoint": where, "error": error.oauth_error}, actor="wallet"
    )
    headers = dict(NO_STORE)
    if error.status_code in (401, 403):  # RFC 6750 §3
        headers["WWW-Authenticate"] = f'Bearer error="{error.oauth_error}"'
    body = {"error": error.oauth_error, "error_description": error.message("en")}
    return JSONResponse(body, status_code=error.status_code, headers=headers)


def _answer(session: Session, portal: Node, where: str, call: Callable[[], Any]) -> Response:
    try:
        return JSONResponse(call(), headers=NO_STORE)
    except OAuthError as error:
        return _oauth_error(session, portal, error, where)


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body; a repeated parameter is refused."""
    pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    form = dict(pairs)
    if len(form) != len(pairs):
        raise InvalidOAuthRequest(_("A parameter is repeated."))
    return form


# --- issuer ----------------------------------------------------------------------------------


@router.get("/.well-known/openid-credential-issuer", summary="Credential Issuer Metadata")
def issuer_metadata(portal: NodeDep) -> dict[str, Any]:
    return oid4vci.issuer_metadata(portal.settings)


@router.get(
    "/.well-known/oauth-authorization-server" + oid4vci.PRE_AUTHORIZATION_PATH,
    summary="RFC 8414 metadata of the portal's authorization server (pre-authorized grant)",
)
def authorization_server_metadata(portal: NodeDep) -> dict[str, Any]:
    return oid4vci.authorization_server_metadata(portal.settings)


@router.post(
    "/credentials/oid4vci/token",
    responses=_OAUTH,
    summary="Token endpoint: exchange a pre-authorized code (and tx_code)",
)
async def token(request: Request, session: SessionDep, portal: NodeDep) -> Response:
    try:
        form = await _form(request)
        if form.get("grant_type") != oid4vci.PRE_AUTHORIZED_GRANT:
            raise UnsupportedGrantType(_("Only the pre-authorized code grant is served here."))
    except OAuthError as error:
        return _oauth_error(session, portal, error, "token")
    return _answer(
        session,
        portal,
        "token",
        lambda: oid4vci.exchange_pre_authorized_code(
            session, node=portal, code=form.get("pre-authorized_code"), tx_code=form.get("tx_code")
        ),
    )


@router.post("/credentials/oid4vci/nonce", summary="Nonce endpoint: a fresh c_nonce")
def nonce(session: SessionDep) -> Response:
    return JSONResponse({"c_nonce": oid4vci.new_nonce(session)}, headers=NO_STORE)


@router.post(
    "/credentials/oid4vci/credential",
    responses={**_OAUTH, 401: {"description": "invalid_token"}},
    summary="Credential endpoint: an SD-JWT VC bound to the key proof's key",
)
async def credential(
    request: Request, session: SessionDep, register: RegisterDep, portal: NodeDep
) -> Response:
    scheme, _sep, access_token = request.headers.get("authorization", "").partition(" ")
    try:
        body: Any = json.loads(await request.body())
    except ValueError:
        body = None
    return _answer(
        session,
        portal,
        "credential",
        lambda: oid4vci.issue_with_proof(
            session,
            node=portal,
            register=register,
            access_token=access_token.strip() if scheme.lower() == "bearer" else None,
            request=body,
        ),
    )


# --- verifier --------------------------------------------------------------------------------


class PresentationRequestCreate(BaseModel):
    type: str = Field(description="The document type, e.g. birth-certificate.")
    claims: list[list[str | int | None]] = Field(
        default_factory=list, description="Claim path pointers the presentation must disclose."
    )


class PresentationRequestRead(BaseModel):
    transaction_id: str
    request: dict[str, Any]
    wallet_link: str
    expires_at: str


@router.post(
    "/api/credentials/oid4vp/requests",
    response_model=PresentationRequestRead,
    summary="Start an OpenID4VP presentation request (DCQL, direct_post)",
)
def create_presentation_request(
    request: Request, body: PresentationRequestCreate, session: SessionDep, portal: NodeDep
) -> dict[str, Any]:
    made = oid4vp.create_request(
        session,
        node=portal,
        doc_type=body.type,
        claims=body.claims,
        registry_node=request.app.state.nodes.get(REGISTRY_NODE),
    )
    return {
        "transaction_id": made.transaction_id,
        "request": made.request,
        "wallet_link": made.wallet_link,
        "expires_at": made.expires_at.isoformat(),
    }


@router.post(
    "/credentials/oid4vp/response",
    responses=_OAUTH,
    summary="Response URI: the wallet posts vp_token and state (direct_post)",
)
async def presentation_response(request: Request, session: SessionDep, portal: NodeDep) -> Response:
    try:
        form = await _form(request)
        result = oid4vp.receive_response(
            session,
            node=portal,
            state=form.get("state"),
            vp_token=form.get("vp_token"),
            error=form.get("error"),
            registry_node=request.app.state.nodes.get(REGISTRY_NODE),
        )
    except OAuthError as error:
        return _oauth_error(session, portal, error, "oid4vp-response")
    if not result.valid:
        failed = ", ".join(f"{c.check}:{c.reason}" for c in result.failed)
        return JSONResponse(
            {"error": "invalid_request", "error_description": f"presentation refused: {failed}"},
            status_code=400,
            headers=NO_STORE,
        )
    return JSONResponse({}, headers=NO_STORE)


@router.get(
    "/api/credentials/oid4vp/transactions/{transaction_id}",
    responses={404: {"description": "Unknown transaction"}},
    summary="The outcome of a presentation request, for the verifier's frontend",
)
def presentation_result(transaction_id: str, session: SessionDep) -> dict[str, Any]:
    return oid4vp.get_result(session, transaction_id=transaction_id)
