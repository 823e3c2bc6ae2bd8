"""Structured logs: JSON lines on whatever standard error is at the moment of logging."""

from __future__ import annotations

import io
import json
import sys

import pytest

from jisr.core.logging import configure_logging, get_logger
from jisr.core.settings import LogFormat, Settings


def test_logs_follow_the_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    configure_logging(Settings(log_format=LogFormat.JSON))
    first.close()  # e.g. a test runner's capture, closed after its test
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    get_logger("jisr.test").info("hello", national_id="redacted-upstream")
    record = json.loads(second.getvalue().splitlines()[-1])
    assert record["event"] == "hello"
    assert record["level"] == "info"
    assert "timestamp" in record


def test_level_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    configure_logging(Settings(log_level="WARNING", log_format=LogFormat.JSON))
    get_logger("jisr.test").info("quiet")
    get_logger("jisr.test").warning("loud")
    assert "quiet" not in out.getvalue() and "loud" in out.getvalue()


def test_logging_is_configured_in_one_place() -> None:
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "src" / "jisr"
    offenders = [
        str(path.relative_to(source))
        for path in source.rglob("*.py")
        if "structlog.configure(" in path.read_text(encoding="utf-8") and path.name != "logging.py"
    ]
    assert not offenders, f"configure logs with jisr.core.logging.configure_logging: {offenders}"
