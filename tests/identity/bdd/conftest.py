"""Shared steps of the GovStack Identity features (pytest-bdd), run against a real server.

The ``.feature`` files are read in place from ``../shared/specs/govstack/identity/features``
(never copied); where that folder is absent the feature modules define one test that skips
and says so. Scenarios that ask for behaviour Jisr deliberately does not have are skipped
with the reason (``SKIPPED``); docs/identity.md lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_bdd import given, parsers, then

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from oidc_support import Idp, admin_token, register_admin, register_person, start_idp  # noqa: E402

_MOCK_TOKEN = (
    "it posts a literal code 'code' with an unsigned HS256 client assertion and expects the "
    "mock's fixed answer (an HS256 id_token, expires_in 0); our token endpoint needs a real "
    "code and a signed private_key_jwt, signs ES256 and gives expires_in 600 (the real "
    "exchange is tested in tests/identity/test_oidc_flow.py and test_oidc_refusals.py)"
)
_FORGED_ASSERTION = (
    "the forged HS256 assertion fails client authentication before anything else, so we "
    "answer RFC 6749 §5.2 invalid_client with 401, not eSignet's {name} with 400 (client "
    "authentication refusals are tested in tests/identity/test_oidc_refusals.py)"
)
SKIPPED: dict[str, str] = {
    "The user successfully receives the id and access token smoke type test": _MOCK_TOKEN,
    "The user successfully receives the id and access token": _MOCK_TOKEN,
    "The user is not able to receive the ID and access token because of the invalid "
    "client_assertion": _FORGED_ASSERTION.format(name="invalid_assertion"),
    "The user is not able to receive the ID and access token because of the invalid "
    "client_assertion_type": _FORGED_ASSERTION.format(name="invalid_assertion_type"),
    "The user is not able to receive the ID and access token because of the invalid "
    "redirect_uri": _FORGED_ASSERTION.format(name="invalid_redirect_uri"),
    "The user successfully receives user information smoke type test": (
        "GovStack asks for userinfo as a nested JWT (signed, then encrypted to the client, "
        "content-type application/jwt) after the mock token exchange above; we answer JSON "
        "to a real access token (tested in tests/identity/test_oidc_flow.py)"
    ),
}


def pytest_bdd_before_scenario(request: Any, feature: Any, scenario: Any) -> None:
    reason = SKIPPED.get(scenario.name)
    if reason:
        pytest.skip(f"deliberate difference: {reason}")


@pytest.fixture(scope="module")
def idp(instance_factory: Any) -> Iterator[Idp]:
    for served in start_idp(instance_factory("MA")):
        register_admin(served)
        register_person(served, "MAAB123456")
        yield served


@pytest.fixture(scope="module")
def token(idp: Idp) -> str:
    return admin_token(idp)


@pytest.fixture(autouse=True)
def _served(idp: Idp) -> Idp:
    """Named statically so that pytest parametrises each scenario per database backend
    (steps request fixtures only when they run)."""
    return idp


@pytest.fixture
def ctx() -> dict[str, Any]:
    """What a scenario's steps pass each other (the request sent, the response)."""
    return {}


# --- steps every feature uses ------------------------------------------------------------------


@given(parsers.re(r"(?:The user w|W)ants to .*"))
def intent() -> None:
    """The features' first step states an intent; nothing to do."""


@then(parsers.re(r"(?:User receives|Receives) a response from the .*"))
@then(parsers.re(r"The response from \S+ endpoint is received"))
def received(ctx: dict[str, Any]) -> None:
    assert isinstance(ctx.get("response"), httpx.Response)


@then(parsers.re(r".* should be returned in a timely manner (?P<limit>\d+)ms"))
def timely(ctx: dict[str, Any], limit: str) -> None:
    assert ctx["elapsed_ms"] < int(limit)


@then(parsers.re(r".* should have status (?P<status>\d+)"))
def status(ctx: dict[str, Any], status: str) -> None:
    response: httpx.Response = ctx["response"]
    assert response.status_code == int(status), response.text[:500]


@then(parsers.re(r'.* should have "content-type": "(?P<media>[^"]+)" header'))
def content_type(ctx: dict[str, Any], media: str) -> None:
    assert ctx["response"].headers["content-type"].split(";")[0].strip() == media
