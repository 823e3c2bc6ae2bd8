"""The GovStack Identity client management API (node ``idp``).

``POST /client-mgmt/oidc-client`` registers a relying party, ``PUT
/client-mgmt/oidc-client/{client_id}`` changes its metadata; both in GovStack's envelopes
(``jisr.identity.oidc.schemas``), so a refused registration is HTTP 200 with a GovStack
``errorCode``. Relying parties registered here authenticate with ``private_key_jwt`` (their
``publicKey``), as GovStack asks.

Authorisation
-------------
GovStack expects a bearer token from a trusted IAM system. Ours is the provider itself: an
administrative client, registered with ``jisr identity client add --grant
client_credentials --scope client_mgmt``, obtains an access token at ``/oauth/token``
(``grant_type=client_credentials&scope=client_mgmt``) and presents it. The token must be
known, unexpired, not revoked and carry ``client_mgmt``; otherwise RFC 6750's answer (401
``invalid_token`` or a missing token, 403 ``insufficient_scope``, with ``WWW-Authenticate``).
Every decision, refusals included, is appended to the idp node's security audit chain,
with the administrative client as actor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.http import request_language, session_of
from jisr.core.i18n import _
from jisr.identity.oidc import service
from jisr.identity.oidc.errors import ClientExists, ClientNotFound, InvalidClientMetadata, OidcError
from jisr.identity.oidc.schemas import (
    FIELD_ERRORS,
    ClientCreateRequest,
    ClientMgmtError,
    ClientMgmtResponse,
    ClientMgmtResult,
    ClientUpdateRequest,
    inline_schema,
)
from jisr.identity.oidc.server import HttpInput, Provider, read_request

router = APIRouter(prefix="/client-mgmt", tags=["GovStack client management"])
SessionDep = Annotated[Session, session_of("idp")]
HttpDep = Annotated[HttpInput, Depends(read_request)]
LanguageDep = Annotated[str, Depends(request_language)]
SCOPE = "client_mgmt"
API_AUTH_METHOD = "private_key_jwt"
REQUEST_TIME_SKEW = dt.timedelta(minutes=5)
_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or not a valid one (`WWW-Authenticate`)"},
    403: {"description": "The token lacks the `client_mgmt` scope"},
}


async def read_json(request: Request) -> Any:
    """The JSON body, or ``None`` when it is absent or not JSON (reported as GovStack does)."""
    try:
        return await request.json()
    except ValueError:
        return None


JsonDep = Annotated[Any, Depends(read_json)]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": inline_schema(model)}},
        }
    }


def _now() -> str:
    now = utcnow()
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _answer(client_id: str | None, errors: Sequence[tuple[str, str]] = ()) -> JSONResponse:
    body = ClientMgmtResponse(
        responseTime=_now(),
        response=ClientMgmtResult(clientId=client_id) if client_id is not None else None,
        errors=[ClientMgmtError(errorCode=code, errorMessage=text) for code, text in errors],
    )
    return JSONResponse(body.model_dump(mode="json"))


def _parse(model: type[BaseModel], payload: Any) -> Any:
    """The envelope, checked for form; ``InvalidClientMetadata`` with the GovStack code."""
    if not isinstance(payload, dict) or not isinstance(payload.get("request"), dict):
        raise InvalidClientMetadata(
            _("The body must be a JSON envelope with requestTime and request."),
            field="request",
            error="invalid_request",
        )
    try:
        envelope = model.model_validate(payload)
    except ValidationError as invalid:
        location = invalid.errors()[0]["loc"]
        field = str(location[1]) if len(location) > 1 and location[0] == "request" else ""
        raise InvalidClientMetadata(
            _("{field} is missing or not of the right type."),
            field=field or str(location[0]),
            error=FIELD_ERRORS.get(field, "invalid_request"),
        ) from None
    _check_request_time(str(payload.get("requestTime", "")))
    return envelope


def _check_request_time(value: str) -> None:
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or abs(when - utcnow()) > REQUEST_TIME_SKEW:
        raise InvalidClientMetadata(
            _(
                "requestTime must be a date and time with its time zone, "
                "within {minutes} minutes of now."
            ),
            field="requestTime",
            error="invalid_request",
            minutes=int(REQUEST_TIME_SKEW.total_seconds() // 60),
        )


def _check_lists(auth_methods: list[str], grant_types: list[str]) -> None:
    if not auth_methods or any(method != API_AUTH_METHOD for method in auth_methods):
        raise InvalidClientMetadata(
            _("Not supported: {values}."),
            field="clientAuthMethods",
            error="invalid_client_auth",
            values=", ".join(auth_methods) or "-",
        )
    unknown = [grant for grant in grant_types if grant not in service.GRANT_TYPES]
    if not grant_types or unknown:
        raise InvalidClientMetadata(
            _("Not supported: {values}."),
            field="grantTypes",
            error="invalid_grant_type",
            values=", ".join(unknown) or "-",
        )


def _govstack_code(error: OidcError) -> str:
    if isinstance(error, ClientExists):
        return "duplicate_client_id"
    if isinstance(error, ClientNotFound):
        return "invalid_client_id"
    return str(error.params.get("error", "invalid_request"))


def _handle(
    request: Request,
    session: Session,
    http: HttpInput,
    language: str,
    operation: str,
    client_id: str | None,
    work: Callable[[], str],
) -> Response:
    """Check the bearer token, run ``work`` (which returns the client id), audit the outcome."""
    provider = Provider(session, request.app.state.nodes["idp"])
    try:
        token = provider.bearer_token(http, SCOPE)
    except OAuth2Error as error:
        provider.record(
            "identity.client_mgmt.refused",
            {"operation": operation, "client_id": client_id or "", "error": error.error},
        )
        response: Response = provider.handle_response(*error())
        return response
    admin = token.get_client().client_id
    try:
        done = work()
    except (InvalidClientMetadata, ClientExists, ClientNotFound) as error:
        code = _govstack_code(error)
        provider.node.record(
            session,
            "identity.client_mgmt.rejected",
            {"operation": operation, "client_id": client_id or "", "error": code},
            actor=admin,
        )
        return _answer(None, [(code, error.message(language))])
    event = "identity.client.registered" if operation == "create" else "identity.client.updated"
    provider.node.record(
        session, event, {"client_id": done, "via": "client-mgmt"}, actor=admin, subject=None
    )
    return _answer(done)


@router.post(
    "/oidc-client",
    summary="Register a relying party (GovStack Identity)",
    response_model=ClientMgmtResponse,
    responses=_REFUSED,
    openapi_extra=_body(ClientCreateRequest),
)
def create_client(
    request: Request, http: HttpDep, payload: JsonDep, session: SessionDep, language: LanguageDep
) -> Response:
    def work() -> str:
        wanted = _parse(ClientCreateRequest, payload).request
        _check_lists(wanted.clientAuthMethods, wanted.grantTypes)
        made = service.create_client(
            session,
            client_id=wanted.clientId,
            name=wanted.clientName,
            relying_party_id=wanted.relyingPartyId,
            logo_uri=wanted.logoUri,
            redirect_uris=wanted.redirectUris,
            auth_method=API_AUTH_METHOD,
            jwks=wanted.publicKey,
            claims=wanted.userClaims,
            acr_values=wanted.authContextRefs,
            grant_types=wanted.grantTypes,
        )
        return made.client.client_id

    requested = payload.get("request") if isinstance(payload, dict) else None
    named = requested.get("clientId") if isinstance(requested, dict) else None
    return _handle(request, session, http, language, "create", str(named or ""), work)


@router.put(
    "/oidc-client/{client_id}",
    summary="Change a relying party's metadata (GovStack Identity)",
    response_model=ClientMgmtResponse,
    responses=_REFUSED,
    openapi_extra=_body(ClientUpdateRequest),
)
def update_client(
    client_id: str,
    request: Request,
    http: HttpDep,
    payload: JsonDep,
    session: SessionDep,
    language: LanguageDep,
) -> Response:
    def work() -> str:
        wanted = _parse(ClientUpdateRequest, payload).request
        _check_lists(wanted.clientAuthMethods, wanted.grantTypes)
        updated = service.update_client(
            session,
            client_id=client_id,
            name=wanted.clientName,
            status=wanted.status,
            logo_uri=wanted.logoUri,
            redirect_uris=wanted.redirectUris,
            auth_method=API_AUTH_METHOD,
            claims=wanted.userClaims,
            acr_values=wanted.authContextRefs,
            grant_types=wanted.grantTypes,
        )
        return updated.client_id

    return _handle(request, session, http, language, "update", client_id, work)
