"""The portal's own pages: the home page and error pages. Blocks add theirs in ``views``."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

import jisr
from jisr.core.errors import JisrError
from jisr.core.i18n import _
from jisr.web.templating import PageContext, page_context, templates

router = APIRouter(include_in_schema=False)

BLOCKS: tuple[tuple[str, str], ...] = (
    ("registry", _("Central registry and instance certificate authority")),
    ("gateway", _("Secure exchange gateway between agencies")),
    ("idp", _("Digital identity and login")),
    ("portal", _("Citizen and agency portal")),
)


@dataclass(frozen=True)
class HomeContext:
    page: PageContext
    version: str
    nodes: list[tuple[str, str]]


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    page = page_context(request)
    served = request.app.state.nodes
    context = HomeContext(
        page=page,
        version=jisr.__version__,
        nodes=[(name, label) for name, label in BLOCKS if name in served],
    )
    response = templates.TemplateResponse(request, "home.html", {"ctx": context, "page": page})
    if "lang" in request.query_params:
        response.set_cookie("lang", page.language, max_age=365 * 86400, samesite="lax")
    return response


@dataclass(frozen=True)
class ErrorContext:
    page: PageContext
    status: int
    title: str
    detail: str


def error_page(request: Request, error: JisrError, language: str) -> Response:
    page = page_context(request, language)
    context = ErrorContext(
        page=page,
        status=error.status_code,
        title=page.t(error.title),
        detail=error.message(language),
    )
    names = [f"errors/{error.status_code}.html", "errors/error.html"]
    template = templates.env.select_template(names)
    return templates.TemplateResponse(
        request,
        template.name or "errors/error.html",
        {"ctx": context, "page": page},
        status_code=error.status_code,
    )
