"""JSON endpoints of the OpenID Connect provider (node ``idp``).

Paths follow the GovStack Identity Provider API where it names them (``/oauth/token``,
``/oidc/userinfo``, ``/.well-known/jwks.json``); the rest is OpenID Connect Discovery and
RP-Initiated Logout. Protocol errors are OAuth JSON errors (``error``, ``error_description``,
RFC 6749 §5.2; ``WWW-Authenticate`` on userinfo, RFC 6750 §3), as relying parties expect.
"""

from __future__ import annotations

from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from jisr.core.crypto import keystore
from jisr.core.http import session_of
from jisr.core.i18n import LANGUAGES
from jisr.core.instance import Node
from jisr.core.templating import page_context, templates
from jisr.identity import auth
from jisr.identity.oidc import service
from jisr.identity.oidc.server import PATHS, SESSION_COOKIE, HttpInput, Provider, read_request

router = APIRouter(tags=["OpenID Connect"])
SessionDep = Annotated[Session, session_of("idp")]
HttpDep = Annotated[HttpInput, Depends(read_request)]
OAUTH_ERROR = {"description": "OAuth error (`error`, `error_description`)"}


def _provider(request: Request, session: Session) -> Provider:
    node: Node = request.app.state.nodes["idp"]
    return Provider(session, node)


def discovery_document(provider: Provider) -> dict[str, Any]:
    """OpenID Provider Metadata (OpenID Connect Discovery 1.0 §3)."""
    key = keystore.active_key(provider.session, provider.node.keys)
    document: dict[str, Any] = {"issuer": provider.issuer}
    document.update({name: provider.url(name) for name in PATHS})
    document.update(
        {
            "scopes_supported": list(service.SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": list(service.GRANT_TYPES),
            "subject_types_supported": ["pairwise", "public"],
            "id_token_signing_alg_values_supported": [key.algorithm],
            "token_endpoint_auth_methods_supported": list(service.AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "EdDSA", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "acr",
                "amr",
                "at_hash",
                *service.SUPPORTED_CLAIMS,
            ],
            "claims_parameter_supported": True,
            "claim_types_supported": ["normal"],
            "acr_values_supported": list(auth.ACR_VALUES),
            "display_values_supported": ["page"],
            "ui_locales_supported": list(LANGUAGES),
            "claims_locales_supported": ["ar", "en"],
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
        }
    )
    return document


@router.get("/.well-known/openid-configuration", summary="OpenID Provider metadata")
def openid_configuration(request: Request, session: SessionDep) -> dict[str, Any]:
    return discovery_document(_provider(request, session))


@router.get(
    "/.well-known/oauth-authorization-server",
    summary="RFC 8414 metadata: the provider as the credential issuer's authorization server",
)
def authorization_server_metadata(request: Request, session: SessionDep) -> dict[str, Any]:
    # OpenID4VCI wallets discover authorization servers with RFC 8414; same document.
    return discovery_document(_provider(request, session))


@router.get("/.well-known/jwks.json", summary="The provider's public keys (active and retired)")
def jwks(session: SessionDep) -> dict[str, Any]:
    return keystore.public_jwks(session, purpose="signing")


@router.post(
    "/oauth/token",
    summary="Token endpoint (authorization_code with PKCE, refresh_token)",
    responses={400: OAUTH_ERROR, 401: OAUTH_ERROR},
)
def token(request: Request, http: HttpDep, session: SessionDep) -> Response:
    return _provider(request, session).token_response(http)


_USERINFO: dict[str, Any] = {
    "summary": "UserInfo endpoint: the claims the person consented to",
    "responses": {401: {"description": "`WWW-Authenticate: Bearer error=…`"}},
}


@router.get("/oidc/userinfo", operation_id="userinfo_get", **_USERINFO)
@router.post("/oidc/userinfo", operation_id="userinfo_post", **_USERINFO)
def userinfo(request: Request, http: HttpDep, session: SessionDep) -> Response:
    return _provider(request, session).userinfo_response(http)


_LOGOUT: dict[str, Any] = {
    "summary": "RP-initiated logout (id_token_hint, post_logout_redirect_uri, state)",
    "response_class": HTMLResponse,
    "responses": {400: OAUTH_ERROR},
}


@router.get("/oidc/logout", operation_id="logout_get", **_LOGOUT)
@router.post("/oidc/logout", operation_id="logout_post", **_LOGOUT)
def logout(request: Request, http: HttpDep, session: SessionDep) -> Response:
    provider = _provider(request, session)
    try:
        validated = provider.validate_endpoint_request("end_session", http)
    except OAuth2Error as error:
        status, body, headers = error()
        return JSONResponse(body, status_code=status, headers=dict(headers))
    response: Response | None = provider.create_endpoint_response("end_session", validated)
    if response is None:
        page = page_context(request)
        response = templates.TemplateResponse(
            request, "identity/logged_out.html", {"ctx": None, "page": page}
        )
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
