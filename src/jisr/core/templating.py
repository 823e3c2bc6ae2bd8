"""The one Jinja2 environment of every page, usable by blocks without importing ``jisr.web``.

* ``templates``: templates under ``src/jisr/web/templates`` (``base.html``, ``errors/``, one
  folder per block), with ``_("…")`` translating into the page's language;
* ``PageContext`` / ``page_context``: what every page template receives (language, direction,
  instance name).

``jisr.web.templating`` re-exports these and adds what only the web layer needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context

from jisr.core.i18n import LANGUAGES, direction, gettext, negotiate

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates"

templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.globals["languages"] = LANGUAGES


@pass_context
def _translate(context: Context, message: str) -> str:
    """``_("…")`` in templates: translated into the page's language (and extracted by Babel)."""
    page = context.get("page")
    return gettext(message, page.language if page is not None else "ar")


templates.env.globals["_"] = _translate


@dataclass(frozen=True)
class PageContext:
    """What every page template receives besides its own data."""

    language: str
    dir: str
    instance_name: str
    instance_code: str

    def t(self, message: str) -> str:
        return gettext(message, self.language)


def page_language(request: Request) -> str:
    """``?lang=`` first, then the ``lang`` cookie, then ``Accept-Language``; Arabic default."""
    chosen = request.query_params.get("lang") or request.cookies.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    return negotiate(request.headers.get("accept-language"))


def page_context(request: Request, language: str | None = None) -> PageContext:
    settings = request.app.state.instance.settings
    lang = language or page_language(request)
    return PageContext(
        language=lang,
        dir=direction(lang),
        instance_name=settings.instance_name,
        instance_code=settings.instance_code,
    )


__all__ = ["TEMPLATES_DIR", "PageContext", "page_context", "page_language", "templates"]
