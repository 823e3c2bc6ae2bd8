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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
