"""OpenID4VP 1.0 verifier over real HTTP: the frontend starts a DCQL request, a simulated
wallet posts its SD-JWT VC presentation (direct_post), the frontend reads the outcome; each
refusal from the attacker's side."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from jisr.credentials import oid4vp, service
from jisr.credentials.models import PresentationTransaction

from .oid4vc_support import PERSON, Served, Wallet, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]
CLAIMS = [["given_name"], ["birthdate"]]


@pytest.fixture(scope="module")
def served(instance_factory: Any) -> Iterator[Served]:
    yield from serve(instance_factory)


@pytest.fixture(scope="module")
def wallet(served: Served) -> tuple[Wallet, str]:
    wallet = Wallet()
    portal = served.instance.node("portal")
    with served.instance.node("idp").session() as register, portal.session() as session:
        issued = service.issue_credential(
            session,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=PERSON,
            holder_key=wallet.key.public_jwk,
        )
    return wallet, issued.token


def _start(served: Served, claims: Any = CLAIMS) -> dict[str, Any]:
    answer = served.http.post(
        "/api/credentials/oid4vp/requests", json={"type": "birth-certificate", "claims": claims}
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _respond(served: Served, request: dict[str, Any], presentation: str, **form: str) -> Any:
    data = {"vp_token": json.dumps({"credential": [presentation]}), "state": request["state"]}
    return served.http.post("/credentials/oid4vp/response", data=data | form)


def _outcome(served: Served, started: dict[str, Any]) -> dict[str, Any]:
    answer = served.http.get(f"/api/credentials/oid4vp/transactions/{started['transaction_id']}")
    assert answer.status_code == 200
    return dict(answer.json())


def _failed(outcome: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["reason"] for c in outcome["checks"] if not c["ok"]}


def test_request_shape(served: Served) -> None:
    started = _start(served)
    request = started["request"]
    assert request["client_id"] == "redirect_uri:" + served.url + "/credentials/oid4vp/response"
    assert request["response_uri"] == served.url + "/credentials/oid4vp/response"
    assert request["response_type"] == "vp_token" and request["response_mode"] == "direct_post"
    assert len(request["nonce"]) >= 22 and request["state"]
    query = request["dcql_query"]["credentials"][0]
    assert query["format"] == "dc+sd-jwt"
    assert query["meta"]["vct_values"] == [served.url + "/credentials/types/birth-certificate/v1"]
    assert [c["path"] for c in query["claims"]] == CLAIMS
    assert started["wallet_link"].startswith("openid4vp://?client_id=redirect_uri%3A")
    assert _outcome(served, started) == {"status": "pending"}


def test_valid_presentation(served: Served, wallet: tuple[Wallet, str]) -> None:
    holder, credential = wallet
    started = _start(served)
    request = started["request"]
    shown = holder.present(credential, CLAIMS, nonce=request["nonce"], aud=request["client_id"])
    answer = _respond(served, request, shown)
    assert answer.status_code == 200, answer.text
    outcome = _outcome(served, started)
    assert outcome["status"] == "completed" and outcome["valid"] is True, outcome
    assert outcome["claims"]["given_name"] == "Fatima Zahra"
    assert "family_name" not in outcome["claims"]  # not asked, not disclosed
    # replayed response: the transaction is completed
    again = _respond(served, request, shown)
    assert again.status_code == 400 and again.json()["error"] == "invalid_request"


def _refused(
    served: Served,
    wallet: tuple[Wallet, str],
    *,
    paths: Any = CLAIMS,
    nonce: str | None = None,
    aud: str | None = None,
) -> dict[str, str]:
    holder, credential = wallet
    started = _start(served)
    request = started["request"]
    shown = holder.present(
        credential, paths, nonce=nonce or request["nonce"], aud=aud or request["client_id"]
    )
    answer = _respond(served, request, shown)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    outcome = _outcome(served, started)
    assert outcome["status"] == "completed" and outcome["valid"] is False
    assert "claims" not in outcome
    return _failed(outcome)


def test_wrong_nonce(served: Served, wallet: tuple[Wallet, str]) -> None:
    assert _refused(served, wallet, nonce="another-nonce") == {"key_binding": "nonce-mismatch"}


def test_wrong_aud(served: Served, wallet: tuple[Wallet, str]) -> None:
    failed = _refused(served, wallet, aud="redirect_uri:https://verifier.example/post")
    assert failed == {"key_binding": "aud-mismatch"}


def test_missing_requested_claim(served: Served, wallet: tuple[Wallet, str]) -> None:
    assert _refused(served, wallet, paths=[["given_name"]]) == {"query": "missing-claim"}


def test_expired_request(served: Served, wallet: tuple[Wallet, str]) -> None:
    holder, credential = wallet
    started = _start(served)
    request = started["request"]
    portal = served.instance.node("portal")
    with portal.session() as session:
        for row in session.scalars(sa.select(PresentationTransaction)):
            if row.nonce == request["nonce"]:
                row.expires_at = row.created_at - dt.timedelta(seconds=1)
    assert _outcome(served, started) == {"status": "expired"}
    shown = holder.present(credential, CLAIMS, nonce=request["nonce"], aud=request["client_id"])
    answer = _respond(served, request, shown)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"


def test_unknown_state_and_transaction(served: Served, wallet: tuple[Wallet, str]) -> None:
    answer = served.http.post("/credentials/oid4vp/response", data={"vp_token": "{}", "state": "x"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_request"
    missing = served.http.get("/api/credentials/oid4vp/transactions/unknown")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_malformed_vp_token(served: Served) -> None:
    started = _start(served)
    answer = served.http.post(
        "/credentials/oid4vp/response",
        data={"vp_token": '["not", "an", "object"]', "state": started["request"]["state"]},
    )
    assert answer.status_code == 400
    assert _failed(_outcome(served, started)) == {"query": "malformed-vp-token"}


def test_claim_path_pointer() -> None:
    claims = {"address": {"locality": "Rabat"}, "nationalities": ["MA", "FR"]}
    assert oid4vp.select(claims, ["address", "locality"]) == ["Rabat"]
    assert oid4vp.select(claims, ["nationalities", None]) == ["MA", "FR"]
    assert oid4vp.select(claims, ["nationalities", 1]) == ["FR"]
    assert oid4vp.select(claims, ["nationalities", 5]) == []
    assert oid4vp.select(claims, ["birthdate"]) == []
