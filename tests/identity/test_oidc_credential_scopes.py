"""The identity provider's part in OpenID4VCI's code flow: ``credential:<configuration>``
scopes, registered for a client and granted with a JWT access token (RFC 9068). The flow
itself runs end to end in tests/credentials/test_oid4vci_code_flow.py."""

from __future__ import annotations

from typing import Any

import pytest
from authlib.oauth2.rfc6749.errors import InvalidScopeError

from jisr.identity.oidc import service
from jisr.identity.oidc.server import Provider

pytestmark = pytest.mark.db


@pytest.mark.parametrize(
    ("scope", "credential"),
    [
        ("credential:birth-certificate", True),
        ("credential:residence-permit", True),
        ("credential:", False),
        ("credential:Birth", False),
        ("credential:a b", False),
        ("birth-certificate", False),
        ("openid", False),
    ],
)
def test_credential_scope_pattern(scope: str, credential: bool) -> None:
    assert service.is_credential_scope(scope) is credential


def test_a_client_registers_credential_scopes_and_no_unknown_one(instance_factory: Any) -> None:
    idp = instance_factory("MA").node("idp")
    with idp.session() as session:
        made = service.create_client(
            session,
            name="Wallet",
            redirect_uris=["https://wallet.example/cb"],
            scopes=["openid", "credential:birth-certificate"],
        )
        assert set(made.client.scopes) == {"openid", "credential:birth-certificate"}
        with pytest.raises(service.InvalidClientMetadata):
            service.create_client(
                session,
                name="Wallet 2",
                redirect_uris=["https://wallet.example/cb"],
                scopes=["openid", "documents"],
            )


def test_the_provider_accepts_credential_scopes_only_in_their_form(
    instance_factory: Any,
) -> None:
    idp = instance_factory("MA").node("idp")
    with idp.session() as session:
        provider = Provider(session, idp)
        provider.validate_requested_scope("openid credential:birth-certificate")
        with pytest.raises(InvalidScopeError):
            provider.validate_requested_scope("openid credential:BAD")


def test_the_credential_offer_scope_is_administrative() -> None:
    # an agency desk's client_credentials client (POST /api/credentials/offers)
    assert service.is_admin_scope(service.CREDENTIAL_OFFER_SCOPE)
    assert not service.is_credential_scope(service.CREDENTIAL_OFFER_SCOPE)


def test_the_portal_asks_for_the_same_offer_scope() -> None:
    from jisr.credentials import api

    assert api.OFFER_SCOPE == service.CREDENTIAL_OFFER_SCOPE
