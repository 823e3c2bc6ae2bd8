"""GovStack Identity features ``client_create`` and ``client_update`` against our
``/client-mgmt/oidc-client`` API, authorised by an administrative client's token."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from bdd_support import absent, feature, quoted_pairs, timed
from oidc_support import CLIENT_MGMT, Idp, create_request, public_jwk, update_request
from pytest_bdd import given, parsers, scenarios, then, when

pytestmark = [pytest.mark.db, pytest.mark.slow]

for _name in ("client_create.feature", "client_update.feature"):
    _path = feature(_name)
    if _path is not None:
        scenarios(str(_path))
    else:
        globals()[f"test_{_name.split('.')[0]}_absent"] = absent(_name)

LISTS = ("redirectUris", "authContextRefs", "userClaims", "grantTypes", "clientAuthMethods")
# GovStack's error codes of these two operations (the spec's enums).
CREATE_CODES = {
    "duplicate_client_id",
    "invalid_public_key",
    "invalid_input",
    "invalid_client_id",
    "invalid_client_name",
    "invalid_rp_id",
    "invalid_claim",
    "invalid_acr",
    "invalid_uri",
    "invalid_redirect_uri",
    "invalid_grant_type",
    "invalid_client_auth",
    "invalid_request",
}


def _request(values: dict[str, str]) -> dict[str, Any]:
    return {k: [v] if k in LISTS else v for k, v in values.items()}


def _post(idp: Idp, token: str, ctx: dict[str, Any], body: Any) -> None:
    ctx["body"] = body
    timed(
        ctx,
        lambda: httpx.post(
            idp.endpoint(CLIENT_MGMT), json=body, headers={"authorization": f"Bearer {token}"}
        ),
    )


def _put(idp: Idp, token: str, ctx: dict[str, Any], client_id: str, body: Any) -> None:
    ctx["body"] = body
    timed(
        ctx,
        lambda: httpx.put(
            idp.endpoint(f"{CLIENT_MGMT}/{client_id}"),
            json=body,
            headers={"authorization": f"Bearer {token}"},
        ),
    )


# --- client_create -----------------------------------------------------------------------------


@when(parsers.re(r"User sends POST request with given requestTime, (?P<rest>.+)"))
def post_valid(idp: Idp, token: str, ctx: dict[str, Any], rest: str) -> None:
    values = quoted_pairs(rest)
    body = create_request(values.pop("clientId"), **_request(values))
    _post(idp, token, ctx, body)


@when(
    parsers.re(
        r"User sends POST request with given (?P<q>['\"])(?P<value>[^'\"]*)(?P=q) as invalid "
        r"(?P<field>\w+)"
    )
)
def post_invalid(
    idp: Idp, token: str, unique: str, ctx: dict[str, Any], value: str, field: str
) -> None:
    body = create_request(f"govstack-{unique}")
    if field == "requestTime":
        body["requestTime"] = value
    else:
        body["request"].update(_request({field: value}))
    _post(idp, token, ctx, body)


@when("User sends POST request with given publicKey as a string not JWT format")
def post_bad_key(idp: Idp, token: str, unique: str, ctx: dict[str, Any]) -> None:
    _post(idp, token, ctx, create_request(f"govstack-{unique}", publicKey="not-a-jwk"))


@when("User sends POST request with given none redirectUris")
def post_no_redirect(idp: Idp, token: str, unique: str, ctx: dict[str, Any]) -> None:
    _post(idp, token, ctx, create_request(f"govstack-{unique}", redirectUris=[]))


@when(parsers.re(r'User sends POST request with given "(?P<client_id>[^"]+)" as clientId'))
def post_duplicate(idp: Idp, token: str, ctx: dict[str, Any], client_id: str) -> None:
    _post(idp, token, ctx, create_request(client_id))  # registered, or already there
    _post(idp, token, ctx, create_request(client_id))


# --- client_update -----------------------------------------------------------------------------


@given(parsers.re(r'The client profile with "(?P<client_id>[^"]+)" as clientId is created'))
def client_created(idp: Idp, token: str, ctx: dict[str, Any], client_id: str) -> None:
    _post(idp, token, ctx, create_request(client_id))
    ctx["client_id"] = client_id


@when(
    parsers.re(
        r'User sends PUT request with given "(?P<client_id>[^"]+)" as client_id parameter, '
        r"requestTime, (?P<rest>.+)"
    )
)
def put_valid(idp: Idp, token: str, ctx: dict[str, Any], client_id: str, rest: str) -> None:
    body = update_request(**_request(quoted_pairs(rest)))
    _put(idp, token, ctx, client_id, body)


@when(parsers.re(r'User sends PUT request with given "(?P<value>[^"]*)" as invalid (?P<field>\w+)'))
def put_invalid(idp: Idp, token: str, ctx: dict[str, Any], value: str, field: str) -> None:
    if field == "client_id":
        _put(idp, token, ctx, value, update_request())
        return
    field = {"redirectUri": "redirectUris"}.get(field, field)
    _put(idp, token, ctx, ctx["client_id"], update_request(**_request({field: value})))


# --- answers -----------------------------------------------------------------------------------


def _envelope(ctx: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = ctx["response"].json()
    assert set(body) == {"responseTime", "response", "errors"}
    assert isinstance(body["responseTime"], str) and body["responseTime"].endswith("Z")
    assert isinstance(body["errors"], list)
    return body


@then(parsers.re(r"The \w+ \S+ endpoint response should match json schema"))
def matches_schema(ctx: dict[str, Any]) -> None:
    body = _envelope(ctx)
    assert isinstance(body["response"], dict) and isinstance(body["response"]["clientId"], str)


@then(parsers.re(r"The \w+ \S+ endpoint response should match json schema with error"))
def matches_error_schema(ctx: dict[str, Any]) -> None:
    body = _envelope(ctx)
    assert body["response"] is None and body["errors"]
    for error in body["errors"]:
        assert set(error) == {"errorCode", "errorMessage"}
        assert error["errorCode"] in CREATE_CODES and isinstance(error["errorMessage"], str)


@then(parsers.re(r'The \w+ \S+ endpoint response should contain "(?P<value>[^"]*)" as clientId'))
def contains_client_id(ctx: dict[str, Any], value: str) -> None:
    assert ctx["response"].json()["response"]["clientId"] == value


@then(parsers.re(r"The \w+ \S+ endpoint response should contain empty errors array"))
def no_errors(ctx: dict[str, Any]) -> None:
    assert ctx["response"].json()["errors"] == []


@then(parsers.re(r'The \w+ \S+ endpoint response should match with error code "(?P<code>\w+)"'))
def error_code(ctx: dict[str, Any], code: str) -> None:
    assert [e["errorCode"] for e in ctx["response"].json()["errors"]] == [code]


__all__ = ["public_jwk"]
