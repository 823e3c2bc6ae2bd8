"""Structured logs: one JSON object per line (or readable console lines in development).

Request-scoped values (request id, node, method, path) are bound with structlog's
contextvars so every record of a request carries them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from jisr.core.settings import LogFormat, Settings


def configure_logging(settings: Settings) -> None:
    level = logging.getLevelName(settings.log_level)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
    ]
    renderer: Any
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    # Look standard error up when a logger is made, not once at configuration: whoever
    # replaced it since (a test runner capturing output, a daemon redirecting it) may have
    # closed the stream we would otherwise keep writing to.
    return structlog.PrintLogger(file=sys.stderr)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
