"""The assistant's API, served by the ``portal`` node; no session is needed (the catalogue is
files, the index a cache).

* ``POST /api/assistant/ask`` with ``{"question", "country"}`` → the answer
  (``jisr.assistant.schemas.Answer``). An empty, blank, emoji-only or control-character
  question gets a 200 answer asking for a question in words (``procedure`` null); a question
  over 20,000 characters a 400 problem ``question-too-long``; an unknown country or a body
  that is not ``{"question", "country"}`` a 400 validation problem.
* With ``assistant_llm_url`` set, answers naming a procedure go through the local language
  model (``jisr.assistant.llm``) and fall back to the composed answer on any doubt.
* When the app starts (this router's lifespan, merged into the app's), the assistant's index
  and model are loaded in a background thread unless ``assistant_warm_at_start`` is off; the
  thread is ``app.state.assistant_warming``.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from jisr.assistant import service
from jisr.assistant.llm import LocalLLM
from jisr.assistant.schemas import Answer, AskRequest
from jisr.core.logging import get_logger

log = get_logger("jisr.assistant")


def _warm() -> None:
    try:
        service.warm()
        log.info("assistant.warm", done=True)
    except Exception as error:  # the first question will say what is wrong, in its own words
        log.warning("assistant.warm", done=False, error=type(error).__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Warm the assistant in the background when the portal starts (never delays it)."""
    instance = getattr(app.state, "instance", None)
    nodes: dict[str, Any] = getattr(app.state, "nodes", {})
    settings = instance.settings if instance is not None else None
    app.state.assistant_warming = None
    if settings is not None and settings.assistant_warm_at_start and "portal" in nodes:
        thread = threading.Thread(target=_warm, name="assistant-warm", daemon=True)
        thread.start()
        app.state.assistant_warming = thread
    yield


router = APIRouter(tags=["assistant"], lifespan=lifespan)


def _llm(request: Request) -> LocalLLM | None:
    instance = getattr(request.app.state, "instance", None)
    return LocalLLM.from_settings(instance.settings) if instance is not None else None


@router.post("/api/assistant/ask", response_model=Answer)
async def ask(body: AskRequest, request: Request) -> Answer:
    """Answer a question about an administrative procedure from the catalogue, with citations."""
    return await run_in_threadpool(
        service.ask, body.question, country=body.country, llm=_llm(request)
    )
