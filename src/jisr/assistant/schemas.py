"""The assistant's shapes: the question asked and the answer given (a contract: other checks
read these exact fields)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_QUESTION_LENGTH = 20_000
"""Longer questions are refused (``QuestionTooLong``: a 400 problem, a sentence in the CLI);
shorter ones are answered from their first 500 characters (``language.clean``)."""


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(
        description=f"The question, in any language; at most {MAX_QUESTION_LENGTH} characters "
        "(longer ones get a 400 problem `question-too-long`)."
    )
    country: Literal["MA", "QA"] | None = None


class ProcedureTitle(BaseModel):
    ar: str
    fr: str
    en: str


class ProcedureRef(BaseModel):
    """A procedure of the catalogue, as an answer names it."""

    id: str
    country: Literal["MA", "QA"]
    title: ProcedureTitle


class Citation(BaseModel):
    """A catalogue entry the answer is taken from."""

    id: str
    title: str
    """The entry's title in the answer's language."""
    url: str
    """The entry in the portal's API (``/api/services/{id}``)."""
    sources: list[str]
    """The public portals the entry follows."""


class Answer(BaseModel):
    answer: str
    language: Literal["ar", "fr", "en"]
    procedure: ProcedureRef | None
    candidates: list[ProcedureRef] = Field(max_length=3)
    confidence: float = Field(ge=0, le=1)
    citations: list[Citation]


__all__ = [
    "MAX_QUESTION_LENGTH",
    "Answer",
    "AskRequest",
    "Citation",
    "ProcedureRef",
    "ProcedureTitle",
]
