"""Errors of the assistant block.

Hierarchy::

    AssistantError (JisrError, 400)
    └── AssistantUnavailable (503)   the embedding model cannot be loaded
"""

from __future__ import annotations

from jisr.core.errors import JisrError
from jisr.core.i18n import _


class AssistantError(JisrError):
    status_code = 400
    code = "assistant-error"
    title = _("The assistant cannot answer this request")


class AssistantUnavailable(AssistantError):
    status_code = 503
    code = "assistant-unavailable"
    title = _("The assistant is not available")


__all__ = ["AssistantError", "AssistantUnavailable"]
