"""Shapes of the GovStack Identity client management API (``/client-mgmt/oidc-client``).

The field names are GovStack's (camelCase). Every request is an envelope
``{"requestTime", "request"}`` and every answer ``{"responseTime", "response", "errors"}``:
a refused request is still HTTP 200, with ``response`` null and ``errors`` naming a GovStack
error code (``invalid_client_id``, ``duplicate_client_id``…). Only forms are checked here;
the rules of a registration are ``jisr.identity.oidc.service``'s.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Which GovStack error code a malformed field of ``request`` gives.
FIELD_ERRORS: dict[str, str] = {
    "clientId": "invalid_client_id",
    "clientName": "invalid_client_name",
    "relyingPartyId": "invalid_rp_id",
    "logoUri": "invalid_uri",
    "redirectUris": "invalid_redirect_uri",
    "authContextRefs": "invalid_acr",
    "publicKey": "invalid_public_key",
    "userClaims": "invalid_claim",
    "grantTypes": "invalid_grant_type",
    "clientAuthMethods": "invalid_client_auth",
}


class ClientCreate(BaseModel):
    """A relying party to register (the ``request`` member)."""

    model_config = ConfigDict(extra="ignore")

    clientId: str = Field(examples=["e-health-service"])
    clientName: str = Field(examples=["Health Service"])
    relyingPartyId: str = Field(examples=["health-gov"])
    logoUri: str = Field(examples=["https://health.example/logo.png"])
    redirectUris: list[str] = Field(examples=[["https://health.example/callback"]])
    authContextRefs: list[str] = Field(examples=[["idbb:acr:generated-code"]])
    publicKey: dict[str, Any] = Field(description="The client's public JWK (private_key_jwt).")
    userClaims: list[str] = Field(examples=[["name"]])
    grantTypes: list[str] = Field(examples=[["authorization_code"]])
    clientAuthMethods: list[str] = Field(examples=[["private_key_jwt"]])


class ClientUpdate(BaseModel):
    """New metadata of a registered relying party (not its key)."""

    model_config = ConfigDict(extra="ignore")

    clientName: str
    status: str = Field(examples=["active"], description="active or inactive")
    logoUri: str
    redirectUris: list[str]
    userClaims: list[str]
    authContextRefs: list[str]
    grantTypes: list[str]
    clientAuthMethods: list[str]


class ClientCreateRequest(BaseModel):
    requestTime: str = Field(examples=["2026-11-30T10:00:00.000Z"])
    request: ClientCreate


class ClientUpdateRequest(BaseModel):
    requestTime: str = Field(examples=["2026-11-30T10:00:00.000Z"])
    request: ClientUpdate


class ClientMgmtError(BaseModel):
    errorCode: str
    errorMessage: str


class ClientMgmtResult(BaseModel):
    clientId: str


class ClientMgmtResponse(BaseModel):
    """GovStack's answer: ``errors`` is empty when ``response`` is set."""

    responseTime: str
    response: ClientMgmtResult | None
    errors: list[ClientMgmtError]


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON Schema with its ``$defs`` inlined, to embed in an OpenAPI operation."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


__all__ = [
    "FIELD_ERRORS",
    "ClientCreate",
    "ClientCreateRequest",
    "ClientMgmtError",
    "ClientMgmtResponse",
    "ClientMgmtResult",
    "ClientUpdate",
    "ClientUpdateRequest",
    "inline_schema",
]
