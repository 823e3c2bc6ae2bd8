"""Errors of the assistant block.

Hierarchy::

    AssistantError (JisrError, 400)
    ├── QuestionTooLong (400)        a question over MAX_QUESTION_LENGTH characters
    └── AssistantUnavailable (503)   the embedding model cannot be loaded
"""

from __future__ import annotations

from jisr.core.errors import JisrError
from jisr.core.i18n import _


class AssistantError(JisrError):
    status_code = 400
    code = "assistant-error"
    title = _("The assistant cannot answer this request")


class QuestionTooLong(AssistantError):
    code = "question-too-long"
    title = _("The question is too long")

    def __init__(self, *, length: int, limit: int) -> None:
        super().__init__(
            _(
                "The question has {length} characters; ask it in at most {limit}, "
                "naming the procedure you need."
            ),
            length=length,
            limit=limit,
        )


class AssistantUnavailable(AssistantError):
    status_code = 503
    code = "assistant-unavailable"
    title = _("The assistant is not available")


__all__ = ["AssistantError", "AssistantUnavailable", "QuestionTooLong"]
