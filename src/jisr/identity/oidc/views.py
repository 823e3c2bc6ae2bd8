"""The authorization endpoint and its pages: login (password + one-time code) and consent.

Flow (OpenID Connect Core §3.1.2, with Authlib validating the request at every step):

1. ``GET /authorize``: Authlib validates the client, ``redirect_uri``, scope, PKCE and nonce.
   Errors that may go back to the client are redirected there (``error``, ``state``); an
   unknown client or an unregistered ``redirect_uri`` never redirects: an error page.
2. Not signed in (or ``prompt=login``, or ``max_age`` exceeded): the login page. The browser
   gets an opaque session cookie (HttpOnly, SameSite=Lax) first; the form carries the
   authorization request (``tx``) and a CSRF token, HMAC(key, cookie | tx), so a form cannot
   be replayed from another browser or for another request.
3. ``POST /authorize/login``: ``jisr.identity.auth.authenticate``; on success the session is
   bound to the person and its cookie value rotated (no session fixation).
4. Consent: if the person already consented to this client for this scope set, the code is
   issued at once, with the claims they released then; otherwise the consent page lists the
   claims asked for, each ticked by default, which the person may untick.
5. ``POST /authorize/consent``: the consent is remembered, the code issued (302 to the
   client). A refusal redirects with ``error=access_denied``.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.oauth2 import OAuth2Error
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from jisr.core.clock import utcnow
from jisr.core.crypto.keystore import b64url_encode
from jisr.core.http import session_of
from jisr.core.i18n import LANGUAGES, _
from jisr.core.instance import Node
from jisr.core.templating import PageContext, page_context, templates
from jisr.identity import _secrets, auth
from jisr.identity.oidc import service
from jisr.identity.oidc.errors import (
    AccountLocked,
    AuthenticationFailed,
    LoginTransactionInvalid,
    OidcError,
)
from jisr.identity.oidc.models import OidcLoginSession
from jisr.identity.oidc.server import (
    SESSION_COOKIE,
    EndUser,
    HttpInput,
    Provider,
    end_user,
    read_request,
)

router = APIRouter(include_in_schema=False)
SessionDep = Annotated[Session, session_of("idp")]
HttpDep = Annotated[HttpInput, Depends(read_request)]

CLAIM_LABELS: dict[str, str] = {
    "name": _("Full name (Latin script)"),
    "given_name": _("Given name (Latin script)"),
    "family_name": _("Family name (Latin script)"),
    "name#ar": _("Full name (Arabic script)"),
    "given_name#ar": _("Given name (Arabic script)"),
    "family_name#ar": _("Family name (Arabic script)"),
    "birthdate": _("Date of birth"),
    "gender": _("Sex"),
    "national_id": _("National identifier"),
}


@dataclass(frozen=True)
class LoginContext:
    page: PageContext
    client_name: str
    tx: str
    csrf: str
    national_id: str
    error: str | None


@dataclass(frozen=True)
class ConsentContext:
    page: PageContext
    client_name: str
    tx: str
    csrf: str
    claims: list[tuple[str, str]]


@dataclass(frozen=True)
class AuthorizeErrorContext:
    page: PageContext
    error: str
    description: str


def _node(request: Request) -> Node:
    node: Node = request.app.state.nodes["idp"]
    return node


def _csrf(node: Node, cookie: str, tx: str) -> str:
    mac = _secrets.keyed_hash(node.settings, _secrets.CSRF_PURPOSE, f"{cookie}\n{tx}")
    return b64url_encode(mac)


def _csrf_ok(node: Node, cookie: str | None, tx: str, token: str) -> bool:
    return bool(cookie) and hmac.compare_digest(_csrf(node, cookie or "", tx), token)


def _page(request: Request, tx: str) -> PageContext:
    """The page language: ``?lang=``/cookie/header, unless ``ui_locales`` names one of ours."""
    if "lang" not in request.query_params:
        for tag in dict(parse_qsl(tx)).get("ui_locales", "").split():
            if tag.split("-")[0].lower() in LANGUAGES:
                return page_context(request, tag.split("-")[0].lower())
    return page_context(request)


def _snapshot(provider: Provider, tx: str) -> HttpInput:
    return HttpInput(
        method="GET",
        url=provider.url("authorization_endpoint") + "?" + tx,
        headers={},
        query=parse_qsl(tx, keep_blank_values=True),
    )


def _set_cookie(response: Response, provider: Provider, value: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=int(service.SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=provider.issuer.startswith("https://"),
        path="/",
    )


def _allow_form_redirect(response: Response, redirect_uri: str | None) -> Response:
    """Our forms end in a redirect to the client: let CSP's form-action allow its origin."""
    origin = ""
    if redirect_uri:
        parts = urlsplit(redirect_uri)
        origin = f" {parts.scheme}://{parts.netloc}"
    response.headers["content-security-policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"frame-ancestors 'none'; base-uri 'none'; form-action 'self'{origin}"
    )
    return response


def _error_page(request: Request, tx: str, error: str, description: str) -> Response:
    page = _page(request, tx)
    context = AuthorizeErrorContext(page=page, error=error, description=description)
    response: Response = templates.TemplateResponse(
        request, "identity/error.html", {"ctx": context, "page": page}, status_code=400
    )
    return response


def _oauth_error(
    request: Request, provider: Provider, tx: str, oauth_request: Any, error: OAuth2Error
) -> Response:
    provider.record(
        "identity.authorize.refused",
        {"client_id": dict(parse_qsl(tx)).get("client_id", ""), "error": error.error},
    )
    if error.redirect_uri:
        response: Response = provider.handle_error_response(oauth_request, error)
        return response
    return _error_page(request, tx, error.error, error.description or "")


def _login_page(
    request: Request,
    provider: Provider,
    *,
    tx: str,
    cookie: str,
    client_name: str,
    redirect_uri: str | None,
    national_id: str = "",
    error: OidcError | None = None,
) -> Response:
    page = _page(request, tx)
    context = LoginContext(
        page=page,
        client_name=client_name,
        tx=tx,
        csrf=_csrf(provider.node, cookie, tx),
        national_id=national_id,
        error=error.message(page.language) if error is not None else None,
    )
    response = templates.TemplateResponse(
        request,
        "identity/login.html",
        {"ctx": context, "page": page},
        status_code=error.status_code if error is not None else 200,
    )
    response.headers["cache-control"] = "no-store"
    return _allow_form_redirect(response, redirect_uri)


def _claims_param(data: dict[str, str]) -> dict[str, Any] | None:
    try:
        parsed = json.loads(data.get("claims") or "null")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _proceed(
    request: Request,
    provider: Provider,
    *,
    tx: str,
    login: OidcLoginSession | None,
    cookie: str | None,
    fresh_login: bool = False,
) -> Response:
    """Validate the authorization request again and take the next step for it."""
    session = provider.session
    oauth_request = provider.create_oauth2_request(_snapshot(provider, tx))
    signed_in = login is not None and login.person_id is not None
    user = end_user(session, login) if signed_in and login is not None else None
    try:
        grant = provider.get_consent_grant(request=oauth_request, end_user=user)
    except OAuth2Error as error:
        return _oauth_error(request, provider, tx, oauth_request, error)
    data = grant.request.payload.data
    client = grant.client
    must_log_in = user is None or (not fresh_login and "login" in data.get("prompt", "").split())
    max_age = data.get("max_age", "")
    if user is not None and max_age.isdigit():
        must_log_in |= user.auth_time + dt.timedelta(seconds=int(max_age)) < utcnow()
    if must_log_in:
        response_cookie = None
        if login is None or cookie is None:
            cookie, login = service.open_login_session(session)
            response_cookie = cookie
        response = _login_page(
            request,
            provider,
            tx=tx,
            cookie=cookie,
            client_name=client.row.name,
            redirect_uri=grant.redirect_uri,
        )
        if response_cookie:
            _set_cookie(response, provider, response_cookie)
        return response
    assert user is not None and cookie is not None
    wanted = service.requested_claims(client.row, grant.request.scope, _claims_param(data))
    consented = service.find_consent(
        session, client_pk=client.row.id, person_id=user.person_id, scope=grant.request.scope
    )
    if consented is not None and "consent" not in data.get("prompt", "").split():
        released = tuple(name for name in wanted if name in consented)
        return _issue(provider, grant, user, released)
    page = _page(request, tx)
    context = ConsentContext(
        page=page,
        client_name=client.row.name,
        tx=tx,
        csrf=_csrf(provider.node, cookie, tx),
        claims=[(name, page.t(CLAIM_LABELS[name])) for name in wanted],
    )
    response = templates.TemplateResponse(
        request, "identity/consent.html", {"ctx": context, "page": page}
    )
    response.headers["cache-control"] = "no-store"
    return _allow_form_redirect(response, grant.redirect_uri)


def _issue(provider: Provider, grant: Any, user: EndUser, claims: tuple[str, ...]) -> Response:
    granted = EndUser(**{**user.__dict__, "claims": claims})
    response: Response = provider.create_authorization_response(
        request=grant.request, grant_user=granted, grant=grant
    )
    return response


@router.get("/authorize", response_class=HTMLResponse)
def authorize(request: Request, http: HttpDep, session: SessionDep) -> Response:
    provider = Provider(session, _node(request))
    cookie = http.cookies.get(SESSION_COOKIE)
    login = service.find_login_session(session, cookie)
    tx = urlencode([(k, v) for k, v in http.query if k != "lang"])
    return _proceed(request, provider, tx=tx, login=login, cookie=cookie if login else None)


@router.post("/authorize/login", response_class=HTMLResponse)
def login(request: Request, http: HttpDep, session: SessionDep) -> Response:
    node = _node(request)
    provider = Provider(session, node)
    form = dict(http.form)
    tx = form.get("tx", "")
    cookie = http.cookies.get(SESSION_COOKIE)
    row = service.find_login_session(session, cookie)
    if row is None or not _csrf_ok(node, cookie, tx, form.get("csrf", "")):
        problem = LoginTransactionInvalid()
        page = _page(request, tx)
        return _error_page(request, tx, problem.code, problem.message(page.language))
    typed = form.get("national_id", "")
    national_id = auth.normalize_national_id(typed, country=node.settings.instance_code)
    try:
        result = auth.authenticate(
            session,
            settings=node.settings,
            national_id=national_id or typed.strip().upper(),
            password=form.get("password", ""),
            code=form.get("code") or None,
            record=node.record,
        )
    except (AuthenticationFailed, AccountLocked) as error:
        client = provider.query_client(dict(parse_qsl(tx)).get("client_id", ""))
        assert cookie is not None
        return _login_page(
            request,
            provider,
            tx=tx,
            cookie=cookie,
            client_name=client.row.name if client else "",
            redirect_uri=None,
            national_id=typed,
            error=error,
        )
    value = service.sign_in(session, row, result)
    response = _proceed(request, provider, tx=tx, login=row, cookie=value, fresh_login=True)
    _set_cookie(response, provider, value)
    return response


@router.post("/authorize/consent", response_class=HTMLResponse)
def consent(request: Request, http: HttpDep, session: SessionDep) -> Response:
    node = _node(request)
    provider = Provider(session, node)
    form = dict(http.form)
    tx = form.get("tx", "")
    cookie = http.cookies.get(SESSION_COOKIE)
    row = service.find_login_session(session, cookie)
    if row is None or row.person_id is None or not _csrf_ok(node, cookie, tx, form.get("csrf", "")):
        problem = LoginTransactionInvalid()
        return _error_page(request, tx, problem.code, problem.message(_page(request, tx).language))
    user = end_user(session, row)
    oauth_request = provider.create_oauth2_request(_snapshot(provider, tx))
    try:
        grant = provider.get_consent_grant(request=oauth_request, end_user=user)
    except OAuth2Error as error:
        return _oauth_error(request, provider, tx, oauth_request, error)
    client = grant.client
    if form.get("decision") != "allow":
        provider.record(
            "identity.consent.refused", {"client_id": client.client_id}, subject=user.national_id
        )
        denied: Response = provider.create_authorization_response(
            request=grant.request, grant_user=None, grant=grant
        )
        return denied
    data = grant.request.payload.data
    wanted = service.requested_claims(client.row, grant.request.scope, _claims_param(data))
    ticked = {value for key, value in http.form if key == "claim"}
    released = tuple(name for name in wanted if name in ticked)
    service.grant_consent(
        session,
        client_pk=client.row.id,
        person_id=user.person_id,
        scope=grant.request.scope,
        claims=released,
    )
    provider.record(
        "identity.consent.granted",
        {"client_id": client.client_id, "scope": grant.request.scope, "claims": list(released)},
        subject=user.national_id,
    )
    return _issue(provider, grant, user, released)
