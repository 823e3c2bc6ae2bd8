"""Federation agreements: offer, countersign, install, and the refusals."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from jisr.core import federation
from jisr.core.crypto import keystore
from jisr.core.instance import REGISTRY_NODE

pytestmark = pytest.mark.db


@pytest.fixture(scope="module")
def pair(instance_factory: Any) -> tuple[Any, Any, str, str]:
    ma, qa = instance_factory("MA"), instance_factory("QA")
    kids = []
    for inst in (ma, qa):
        with inst.node(REGISTRY_NODE).session() as s:
            kids.append(federation.registry_key_thumbprint(s, node=inst.node(REGISTRY_NODE)))
    return ma, qa, kids[0], kids[1]


def _offer(pair: Any, **kwargs: Any) -> dict[str, Any]:
    ma, _qa, _ma_kid, qa_kid = pair
    with ma.node(REGISTRY_NODE).session() as s:
        return federation.make_offer(
            s,
            node=ma.node(REGISTRY_NODE),
            peer="QA",
            peer_key_thumbprint=kwargs.pop("peer_key_thumbprint", qa_kid),
            peer_accept_types=["birth-certificate"],
            open_services=["civil-registry/birth"],
            **kwargs,
        )


def _countersign(pair: Any, offer: dict[str, Any], kid: str | None = None) -> dict[str, Any]:
    _ma, qa, ma_kid, _ = pair
    with qa.node(REGISTRY_NODE).session() as s:
        return federation.countersign(
            s, node=qa.node(REGISTRY_NODE), offer=offer, peer_key_thumbprint=kid or ma_kid
        )


def test_offer_countersign_install_on_both_sides(pair: Any) -> None:
    ma, qa, ma_kid, qa_kid = pair
    document = _countersign(pair, _offer(pair))
    assert len(document["signatures"]) == 2
    for inst in (ma, qa):
        with inst.node(REGISTRY_NODE).session() as s:
            federation.install_agreement(s, node=inst.node(REGISTRY_NODE), document=document)
            federation.install_agreement(s, node=inst.node(REGISTRY_NODE), document=document)
    with qa.node(REGISTRY_NODE).session() as s:
        agreement = federation.agreement_with(s, peer="MA")
    assert agreement.party("QA").accepts_credential_types == ("birth-certificate",)
    assert agreement.party("MA").opens_services == ("civil-registry/birth",)
    peer = agreement.peer_of("QA")
    assert peer.registry_key_thumbprint == ma_kid and peer.trust_list_jwks
    assert keystore.jwk_thumbprint(dict(peer.registry_jwk or {})) == ma_kid
    assert agreement.peer_of("MA").registry_key_thumbprint == qa_kid


def test_countersign_refuses_an_offer_not_signed_by_the_pinned_key(pair: Any) -> None:
    _ma, _qa, _ma_kid, qa_kid = pair
    with pytest.raises(federation.AgreementRefused):
        _countersign(pair, _offer(pair), kid=qa_kid)


def test_countersign_refuses_an_offer_pinning_another_key(pair: Any) -> None:
    with pytest.raises(federation.AgreementRefused):
        _countersign(pair, _offer(pair, peer_key_thumbprint="x" * 43))


def test_tampered_terms_are_refused(pair: Any) -> None:
    document = _countersign(pair, _offer(pair))
    terms = json.loads(keystore.b64url_decode(document["payload"]))
    terms["parties"][1]["accepts_credential_types"].append("identity-attestation")
    forged = dict(document, payload=keystore.b64url_encode(json.dumps(terms).encode()))
    with pytest.raises(federation.AgreementRefused):
        federation.verify_agreement(forged)


def test_install_refuses_an_offer_with_one_signature(pair: Any) -> None:
    ma = pair[0]
    with ma.node(REGISTRY_NODE).session() as s, pytest.raises(federation.AgreementRefused):
        federation.install_agreement(s, node=ma.node(REGISTRY_NODE), document=_offer(pair))


def test_install_refuses_an_expired_agreement(pair: Any) -> None:
    ma = pair[0]
    document = _countersign(pair, _offer(pair, validity=dt.timedelta(days=1)))
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    with ma.node(REGISTRY_NODE).session() as s, pytest.raises(federation.AgreementExpired):
        federation.install_agreement(s, node=ma.node(REGISTRY_NODE), document=document, now=later)


def test_no_agreement(pair: Any) -> None:
    with pair[0].node(REGISTRY_NODE).session() as s, pytest.raises(federation.AgreementNotFound):
        federation.agreement_with(s, peer="TN")
