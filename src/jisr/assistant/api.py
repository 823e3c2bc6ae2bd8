"""The assistant's API, served by the ``portal`` node; no session is needed (the catalogue is
files, the index a cache).

* ``POST /api/assistant/ask`` with ``{"question", "country"}`` → the answer
  (``jisr.assistant.schemas.Answer``); an unknown country is refused by validation (422).
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from jisr.assistant import service
from jisr.assistant.schemas import Answer, AskRequest

router = APIRouter(tags=["assistant"])


@router.post("/api/assistant/ask", response_model=Answer)
async def ask(request: AskRequest) -> Answer:
    """Answer a question about an administrative procedure from the catalogue, with citations."""
    return await run_in_threadpool(service.ask, request.question, country=request.country)
