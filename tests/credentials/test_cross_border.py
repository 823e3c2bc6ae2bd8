"""QA verifies an MA birth certificate through a federation agreement and MA's trust list,
with no call to MA at verification time; and every refusal."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from jisr.core import federation
from jisr.core.instance import REGISTRY_NODE
from jisr.credentials import qr, service, trust
from jisr.demo.people import FATIMA

from .conftest import agree, failed, issue_birth_certificate

pytestmark = pytest.mark.db


def _trust_list(ma: Any) -> str:
    with ma.node("portal").session() as s, ma.node(REGISTRY_NODE).session() as r:
        return trust.signed_trust_list(
            s, node=ma.node("portal"), registry=r, registry_node=ma.node(REGISTRY_NODE)
        )


def _check(qa: Any, document: str, *, printed: bool = False, **kwargs: Any) -> Any:
    portal = qa.node("portal")
    with portal.session() as session, qa.node(REGISTRY_NODE).session() as registry:
        verifier = trust.federated_verifier(
            session, node=portal, registry=registry, remote_status=_NoCall(), **kwargs
        )
        return verifier.verify_qr(document) if printed else verifier.verify(document)


class _NoCall:
    """A status source that proves no call to MA is made: valid for any index."""

    def status(self, uri: str, index: int) -> int:
        return 0


@pytest.fixture(scope="module")
def world(instance_factory: Any, portal_instance: Any) -> tuple[Any, Any]:
    qa = instance_factory("QA")
    qa.settings.public_url = "https://qa.example"
    agree(portal_instance, qa, accept=["birth-certificate"])
    with qa.node(REGISTRY_NODE).session() as r:
        trust.import_trust_list(
            r, node=qa.node(REGISTRY_NODE), peer="MA", token=_trust_list(portal_instance)
        )
    return portal_instance, qa


def test_qa_verifies_an_ma_birth_certificate_and_its_qr(world: tuple[Any, Any]) -> None:
    ma, qa = world
    issued = issue_birth_certificate(ma)
    result = _check(qa, issued.token)
    assert result.valid, result.failed
    with ma.node("portal").session() as s:
        text = qr.printed_document(s, node=ma.node("portal"), token=issued.token)
    printed = _check(qa, text, printed=True)
    assert printed.valid, printed.to_dict()
    assert printed.claims["credential_id"] == issued.credential_id


def test_a_type_outside_the_agreement(world: tuple[Any, Any]) -> None:
    ma, qa = world
    portal = ma.node("portal")
    with ma.node("idp").session() as register, portal.session() as s:
        issued = service.issue_credential(
            s,
            node=portal,
            register=register,
            doc_type="identity-attestation",
            national_id=FATIMA["national_id"],
        )
    # its issuer (dgsn) is in MA's list now only if the list is re-imported; re-import it
    with qa.node(REGISTRY_NODE).session() as r:
        trust.import_trust_list(r, node=qa.node(REGISTRY_NODE), peer="MA", token=_trust_list(ma))
    assert failed(_check(qa, issued.token))["issuer"] == "untrusted-issuer"


def test_an_issuer_in_no_trusted_list(world: tuple[Any, Any], instance_factory: Any) -> None:
    _ma, qa = world
    stranger = instance_factory("MA")
    from jisr.identity import service as register
    from jisr.identity.schemas import PersonCreate

    with stranger.node("idp").session() as s:
        register.create_person(s, PersonCreate(**FATIMA))
    stranger.settings.public_url = "https://stranger.example.ma"
    issued = issue_birth_certificate(stranger)
    assert failed(_check(qa, issued.token))["issuer"] == "untrusted-issuer"


def test_a_trust_list_signed_by_a_key_not_pinned(world: tuple[Any, Any]) -> None:
    ma, qa = world
    with ma.node("portal").session() as s, ma.node(REGISTRY_NODE).session() as r:
        from jisr.core.crypto import jws, keystore

        other = keystore.active_key(r, ma.node(REGISTRY_NODE).keys, purpose="signing")
        forged = jws.sign_compact(
            trust.trust_list_payload(s, node=ma.node("portal")), other, typ=trust.TRUST_LIST_TYP
        )
    with qa.node(REGISTRY_NODE).session() as r, pytest.raises(trust.TrustListRefused):
        trust.import_trust_list(r, node=qa.node(REGISTRY_NODE), peer="MA", token=forged)


def test_a_trust_list_past_its_validity(world: tuple[Any, Any]) -> None:
    ma, qa = world
    issued = issue_birth_certificate(ma)
    later = dt.datetime.now(dt.UTC) + trust.TRUST_LIST_VALIDITY + dt.timedelta(hours=1)
    with qa.node(REGISTRY_NODE).session() as r, pytest.raises(trust.TrustListRefused):
        trust.import_trust_list(
            r, node=qa.node(REGISTRY_NODE), peer="MA", token=_trust_list(ma), now=later
        )
    assert failed(_check(qa, issued.token, now=later))["issuer"] == "untrusted-issuer"


def test_an_expired_agreement(world: tuple[Any, Any]) -> None:
    ma, qa = world
    issued = issue_birth_certificate(ma)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    assert failed(_check(qa, issued.token, now=after))["issuer"] == "untrusted-issuer"
    with qa.node(REGISTRY_NODE).session() as r, pytest.raises(federation.AgreementExpired):
        federation.agreement_with(r, peer="MA", now=after)


def test_the_verify_api_trusts_federated_issuers(world: tuple[Any, Any]) -> None:
    """POST /api/credentials/verify at QA checks an MA document through the agreement (MA is
    not served here, so only its status list is out of reach: that check alone fails)."""
    from fastapi.testclient import TestClient

    from jisr.web import create_app

    ma, qa = world
    issued = issue_birth_certificate(ma)
    response = TestClient(create_app(qa)).post(
        "/api/credentials/verify", json={"presentation": issued.token}
    )
    assert response.status_code == 200
    checks = {c["check"]: c for c in response.json()["checks"]}
    assert checks["issuer"]["ok"] and checks["signature"]["ok"], checks
    assert [name for name, c in checks.items() if not c["ok"]] == ["status"]
