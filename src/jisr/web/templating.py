"""Jinja2 templates shared by every block's pages; Arabic first, right-to-left.

The environment and page context live in ``jisr.core.templating`` (blocks use them without importing
the web layer); this module re-exports them and adds what only the web layer needs."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from jisr.core.templating import (
    TEMPLATES_DIR,
    PageContext,
    page_context,
    page_language,
    templates,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"

__all__ = [
    "STATIC_DIR",
    "TEMPLATES_DIR",
    "PageContext",
    "page_context",
    "page_language",
    "templates",
    "wants_html",
]


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not request.url.path.startswith(("/api", "/openapi"))
