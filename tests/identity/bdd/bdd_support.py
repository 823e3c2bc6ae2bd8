"""Helpers of the GovStack feature modules (not a conftest: importable by name)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from oidc_support import Idp, register_client

from jisr.identity.oidc import service

FEATURES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "govstack" / "identity"
) / "features"


def feature(name: str) -> Path | None:
    """The feature file, or ``None`` when ../shared is absent."""
    path = FEATURES / name
    return path if path.is_file() else None


def absent(name: str) -> Callable[[], None]:
    def test_feature_absent() -> None:
        pytest.skip(f"the GovStack feature {FEATURES / name} is absent (../shared not here)")

    return test_feature_absent


def ensure_client(idp: Idp, client_id: str, redirect_uri: str) -> None:
    with idp.instance.node("idp").session() as session:
        known = service.get_client(session, client_id)
    if known is None:
        register_client(idp, client_id, redirect_uris=[redirect_uri])


def quoted_pairs(text: str) -> dict[str, str]:
    """``"x" as clientId, "y" as clientName`` → ``{"clientId": "x", "clientName": "y"}``."""
    return {name: value for value, name in re.findall(r'"([^"]*)" as (\w+)', text)}


def timed(ctx: dict[str, Any], send: Callable[[], httpx.Response]) -> httpx.Response:
    start = time.monotonic()
    response = send()
    ctx["elapsed_ms"] = (time.monotonic() - start) * 1000
    ctx["response"] = response
    return response
