"""The ASGI application factory.

``create_app(instance, roles=[...])`` builds one FastAPI app serving the given roles (nodes)
of an instance. Each role's routers are mounted here, the one place that assembles them;
each request gets a session of the node that owns the route (see ``jisr.core.http.session_of``).
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import jisr
from jisr.core.errors import PROBLEM_CONTENT_TYPE, InvalidInput, JisrError, NotFound
from jisr.core.i18n import _, gettext, negotiate
from jisr.core.instance import Instance, Node
from jisr.core.logging import configure_logging, get_logger
from jisr.web import health, pages
from jisr.web.middleware import BodyLimit, RequestContext, SecurityHeaders
from jisr.web.templating import STATIC_DIR, wants_html

log = get_logger("jisr.web")

ROLES = ("registry", "gateway", "idp", "portal", "registers")
# Roles served only when named (``roles=[...]``, ``jisr serve --roles``), never by default:
# the registers trust the exchange gateway in front of them for the caller's identity.
INTERNAL_ROLES = frozenset({"registers"})

# The routers each role (node) serves, as "module:attribute"; the one place that assembles
# them. A block adds its ``api``/``views`` routers under the node that owns its data.
ROLE_ROUTERS: dict[str, tuple[str, ...]] = {
    "registry": ("jisr.exchange.api:router",),
    "gateway": (),
    "idp": (
        "jisr.identity.api:router",
        "jisr.identity.oidc.endpoints:router",
        "jisr.identity.oidc.client_api:router",
        "jisr.identity.oidc.views:router",
    ),
    "portal": (
        "jisr.credentials.api:router",
        "jisr.credentials.trust:router",
        "jisr.credentials.oid4vc_api:router",
        "jisr.services.api:router",
        "jisr.services.registration_api:router",
        "jisr.assistant.api:router",
    ),
    # An agency's registers (GovStack Digital Registries); added by `jisr registries init`.
    "registers": ("jisr.services.registries_api:router",),
}


def create_app(
    instance: Instance, *, roles: list[str] | None = None, configure_logs: bool = True
) -> FastAPI:
    """An app serving ``roles`` (default: every node of the instance but the internal ones,
    ``INTERNAL_ROLES``, which are served only when named).

    ``configure_logs=False`` leaves logging as the caller set it up (the demo does).
    """
    settings = instance.settings
    served = instance.select(roles) if roles else public_nodes(instance)
    if configure_logs:
        configure_logging(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        names = [n.name for n in served]
        internal = sorted(n for n in instance.nodes if n in INTERNAL_ROLES and n not in names)
        log.info("started", instance=instance.code, roles=names, internal_not_served=internal)
        yield
        instance.close()

    app = FastAPI(
        title=f"Jisr — {settings.instance_name}",
        version=jisr.__version__,
        summary="Sovereign digital-government platform: identity, verifiable documents, "
        "secure data exchange, consent, online procedures.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.instance = instance
    app.state.nodes = {node.name: node for node in served}

    app.include_router(health.router)
    app.include_router(pages.router)
    for node in served:
        for target in ROLE_ROUTERS.get(node.name, ()):
            app.include_router(_load_router(target))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    _install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders, hsts=settings.public_url.startswith("https://"))
    app.add_middleware(RequestContext)
    return app


def public_nodes(instance: Instance) -> list[Node]:
    """The nodes served when no role is named: every node but the ``INTERNAL_ROLES``."""
    return [node for node in instance.nodes.values() if node.name not in INTERNAL_ROLES]


def _load_router(target: str) -> APIRouter:
    module_name, _sep, attribute = target.partition(":")
    router: APIRouter = getattr(importlib.import_module(module_name), attribute)
    return router


def problem_response(request: Request, error: JisrError) -> Response:
    language = negotiate(request.headers.get("accept-language"))
    if wants_html(request):
        return pages.error_page(request, error, language)
    return JSONResponse(
        error.to_problem(instance=request.url.path, language=language),
        status_code=error.status_code,
        media_type=PROBLEM_CONTENT_TYPE,
    )


def _install_error_handlers(app: FastAPI) -> None:
    async def on_jisr_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, JisrError)
        if error.status_code >= 500:
            log.error("error", code=error.code, detail=error.detail)
        return problem_response(request, error)

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        errors = [
            {
                "loc": list(item.get("loc", ())),
                "msg": item.get("msg", ""),
                "type": item.get("type", ""),
            }
            for item in error.errors()
        ]
        invalid = InvalidInput(
            _("The request is not valid: {count} field(s) failed."), count=len(errors)
        )
        language = negotiate(request.headers.get("accept-language"))
        body: dict[str, Any] = invalid.to_problem(instance=request.url.path, language=language)
        body["errors"] = errors
        return JSONResponse(body, status_code=400, media_type=PROBLEM_CONTENT_TYPE)

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404:
            return problem_response(request, NotFound(_("Nothing is published at this address.")))
        language = negotiate(request.headers.get("accept-language"))
        body = {
            "type": "about:blank",
            "title": gettext(str(error.detail), language),
            "status": error.status_code,
            "instance": request.url.path,
        }
        return JSONResponse(
            body,
            status_code=error.status_code,
            headers=error.headers,
            media_type=PROBLEM_CONTENT_TYPE,
        )

    app.add_exception_handler(JisrError, on_jisr_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
