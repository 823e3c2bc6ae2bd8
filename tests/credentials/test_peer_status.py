"""QA keeps MA's status lists: fetched and verified with MA's trust list, read from QA's own
database at verification time. QA verifies an MA credential while MA's server is stopped,
and sees a revocation after its next refresh; every refusal of a peer status list."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from jisr.core import federation
from jisr.core.crypto import jws
from jisr.core.instance import REGISTRY_NODE
from jisr.credentials import peer_status, sdjwt, service, trust
from jisr.credentials.status_list import STATUS_LIST_TYP, token_payload
from jisr.demo import servers
from jisr.demo.people import FATIMA

from .conftest import agree, software_key
from .oid4vc_support import Served, serve

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[tuple[Served, Any]]:
    for served in serve(instance_factory):  # MA over real HTTP, public URL = its server's
        qa = instance_factory("QA")
        qa.settings.public_url = "https://qa.example"
        agree(served.instance, qa, accept=["birth-certificate"])
        # Every test starts from a stored trust list and its status lists (whatever ran before
        # it on this xdist worker): MA's first issuance makes its list, QA's refresh stores it.
        _issue(served.instance)
        _refresh(qa)
        yield served, qa


def _refresh(qa: Any, **kwargs: Any) -> trust.StatusRefresh:
    portal, registry = qa.node("portal"), qa.node(REGISTRY_NODE)
    with portal.session() as session, registry.session() as r:
        _payload, refreshed = trust.refresh_peer(
            session, node=portal, registry=r, registry_node=registry, peer="MA", **kwargs
        )
    return refreshed


def _refresh_status(qa: Any, fetch: Any) -> trust.StatusRefresh:
    portal = qa.node("portal")
    with portal.session() as session, qa.node(REGISTRY_NODE).session() as r:
        return trust.refresh_status_lists(session, node=portal, registry=r, peer="MA", fetch=fetch)


def _issue(ma: Any) -> service.Issued:
    portal = ma.node("portal")
    with ma.node("idp").session() as register, portal.session() as s:
        return service.issue_credential(
            s,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=FATIMA["national_id"],
        )


def _status_uri(issued: service.Issued) -> str:
    payload = sdjwt.decode_segment(issued.token.split("~")[0].split(".")[1])
    return str(payload["status"]["status_list"]["uri"])


def _verify(qa: Any, token: str, *, now: dt.datetime | None = None) -> Any:
    portal = qa.node("portal")
    with portal.session() as session, qa.node(REGISTRY_NODE).session() as registry:
        verifier = trust.federated_verifier(session, node=portal, registry=registry, now=now)
        return verifier.verify(token)


def _failed(result: Any) -> dict[str, str]:
    return {c.check: c.reason for c in result.failed}


def test_the_refresh_commands(world: tuple[Served, Any]) -> None:
    """`jisr credentials refresh` and `jisr federation trust-list` (while MA is served)."""
    import json

    from typer.testing import CliRunner

    from jisr.cli import app

    served, qa = world
    _issue(served.instance)  # MA's civil-registry list exists
    runner = CliRunner()
    made = runner.invoke(app, ["credentials", "refresh", "--dir", str(qa.path), "--peer", "MA"])
    assert made.exit_code == 0, made.output
    assert "status lists stored" in made.output
    as_json = runner.invoke(
        app, ["credentials", "refresh", "--dir", str(qa.path), "--peer", "MA", "--json"]
    )
    # MA's server runs in this process: its request logs share the captured output
    line = next(x for x in as_json.output.splitlines() if x.startswith('{"peer"'))
    answer = json.loads(line)
    assert answer["peer"] == "MA" and answer["refused"] == {} and answer["status_lists"]
    fed = runner.invoke(app, ["federation", "trust-list", "--dir", str(qa.path), "--peer", "MA"])
    assert fed.exit_code == 0 and "status lists stored" in fed.output, fed.output


def test_verified_while_ma_is_down_and_revoked_after_the_next_refresh(
    world: tuple[Served, Any],
) -> None:
    served, qa = world
    ma = served.instance
    issued = _issue(ma)
    refreshed = _refresh(qa)  # over HTTP, from the public URL the agreement asserts
    status_uri = _status_uri(issued)
    assert status_uri in refreshed.stored and not refreshed.refused
    served.running.stop()  # MA is unreachable from now on
    assert _verify(qa, issued.token).valid
    with ma.node("portal").session() as s:
        service.revoke_credential(s, node=ma.node("portal"), credential_id=issued.credential_id)
    assert _verify(qa, issued.token).valid  # the stored copy: valid until the next refresh
    # MA back (on another port): the next refresh brings the revocation
    running = servers.start(ma)
    try:
        refreshed = _refresh(qa, base_url=running.url)
        assert status_uri in refreshed.stored
    finally:
        running.stop()
    assert _failed(_verify(qa, issued.token)) == {"status": "revoked"}


def test_a_stale_or_expired_stored_copy(world: tuple[Served, Any]) -> None:
    served, qa = world
    issued = _issue(served.instance)
    with qa.node("portal").session() as s:
        rows = {row.uri: row for row in peer_status.stored(s, peer="MA")}
        row = rows[_status_uri(issued)]
        stale_at, expires_at = row.stale_at, row.expires_at
    assert stale_at <= row.fetched_at + dt.timedelta(
        seconds=qa.settings.credentials_status_ttl_seconds
    )
    after_ttl = stale_at + dt.timedelta(seconds=1)
    assert _failed(_verify(qa, issued.token, now=after_ttl)) == {"status": "status-list-expired"}
    after_exp = expires_at + dt.timedelta(seconds=1)
    assert _failed(_verify(qa, issued.token, now=after_exp))["status"] == "status-list-expired"


def _ma_status_token(served: Served, *, key: Any = None, **changes: Any) -> tuple[str, str]:
    ma = served.instance
    portal = ma.node("portal")
    name = "civil-registry-1"
    uri = service.status_list_uri(ma.settings.public_url, name)
    with portal.session() as s:
        genuine = service.status_list_token(s, node=portal, name=name)
        issuer_key = service.issuer_key(s, node=portal, agency="civil-registry")
    if key is None and not changes:
        return uri, genuine
    import time

    payload = (
        token_payload(
            uri=uri,
            issuer=service.issuer_id(ma.settings.public_url, "civil-registry"),
            data=bytes(16),
            bits=1,
            iat=int(time.time()),
            ttl=300,
            validity=3600,
        )
        | changes
    )
    return uri, jws.sign_compact(payload, key or issuer_key, typ=STATUS_LIST_TYP)


def _stored_token(qa: Any, uri: str) -> str | None:
    with qa.node("portal").session() as s:
        return next((r.token for r in peer_status.stored(s) if r.uri == uri), None)


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        ({"key": "stranger"}, "invalid"),
        ({"sub": "https://elsewhere.example/credentials/status/x"}, "invalid"),
        ({"iss": "https://elsewhere.example/credentials/issuers/x"}, "invalid"),
        ({"exp": 1000}, "invalid"),
        ({"status_list": {"bits": 3, "lst": "eNoDAAAAAAE"}}, "invalid"),
        ({"unreachable": True}, "unavailable"),
    ],
)
def test_a_peer_status_list_refused_keeps_the_previous_copy(
    world: tuple[Served, Any], forge: dict[str, Any], why: str
) -> None:
    served, qa = world
    uri, genuine = _ma_status_token(served)
    assert _refresh_status(qa, lambda url: genuine).stored == (uri,)
    before = _stored_token(qa, uri)
    if forge.get("unreachable"):

        def fetch(url: str) -> str:
            raise ConnectionError("MA is down")

    else:
        if forge.get("key") == "stranger":
            forge = {"key": software_key()}
        _uri, forged = _ma_status_token(served, **forge)

        def fetch(url: str) -> str:
            return forged

    refreshed = _refresh_status(qa, fetch)
    assert refreshed.stored == () and refreshed.refused[uri].startswith(why)
    assert _stored_token(qa, uri) == before


def test_no_trust_list_stored_yet(instance_factory: Any, world: tuple[Served, Any]) -> None:
    served, _qa = world
    other = instance_factory("QA")
    agree(served.instance, other, accept=["birth-certificate"])
    with pytest.raises(trust.TrustListRefused):
        _refresh_status(other, lambda url: "")


def test_a_status_list_off_its_issuer_origin_is_not_fetched(world: tuple[Served, Any]) -> None:
    served, qa = world
    ma = served.instance
    portal, registry = ma.node("portal"), ma.node(REGISTRY_NODE)
    with portal.session() as s, registry.session() as r:
        payload = trust.trust_list_payload(s, node=portal)
        key = federation.trust_list_key(r, node=registry)
    far = "https://elsewhere.example/credentials/status/civil-registry-1"
    for entry in payload["issuers"]:
        entry["status_lists"] = [far]
    token = jws.sign_compact(payload, key, typ=trust.TRUST_LIST_TYP)
    fetched: list[str] = []
    try:
        with qa.node(REGISTRY_NODE).session() as r:
            trust.import_trust_list(r, node=qa.node(REGISTRY_NODE), peer="MA", token=token)
        refreshed = _refresh_status(qa, lambda url: fetched.append(url) or "")
        assert refreshed.refused == {far: "outside-issuer-origin"} and not fetched
    finally:  # put MA's genuine list back for the other tests
        with portal.session() as s, registry.session() as r:
            genuine = trust.signed_trust_list(s, node=portal, registry=r, registry_node=registry)
        with qa.node(REGISTRY_NODE).session() as r:
            trust.import_trust_list(r, node=qa.node(REGISTRY_NODE), peer="MA", token=genuine)


def test_openid4vp_at_qa_accepts_an_ma_credential_as_the_api_does(
    world: tuple[Served, Any],
) -> None:
    from jisr.credentials import oid4vp

    from .oid4vc_support import Wallet

    served, qa = world
    ma, wallet = served.instance, Wallet()
    uri, genuine = _ma_status_token(served)
    _refresh_status(qa, lambda url: genuine)
    portal = ma.node("portal")
    with ma.node("idp").session() as register, portal.session() as s:
        issued = service.issue_credential(
            s,
            node=portal,
            register=register,
            doc_type="birth-certificate",
            national_id=FATIMA["national_id"],
            holder_key=wallet.key.public_jwk,
        )
    qa_portal, qa_registry = qa.node("portal"), qa.node(REGISTRY_NODE)
    outcomes = {}
    for federated in (True, False):
        registry_node = qa_registry if federated else None
        with qa_portal.session() as s:
            made = oid4vp.create_request(
                s,
                node=qa_portal,
                doc_type="birth-certificate",
                claims=[["given_name"]],
                registry_node=registry_node,
            )
        request = made.request
        vcts = request["dcql_query"]["credentials"][0]["meta"]["vct_values"]
        assert (f"{ma.settings.public_url}/credentials/types/birth-certificate/v1" in vcts) is (
            federated
        )
        shown = wallet.present(
            issued.token, [("given_name",)], nonce=request["nonce"], aud=request["client_id"]
        )
        import json

        with qa_portal.session() as s:
            result = oid4vp.receive_response(
                s,
                node=qa_portal,
                state=request["state"],
                vp_token=json.dumps({"credential": [shown]}),
                registry_node=registry_node,
            )
        outcomes[federated] = _failed(result)
    assert outcomes[True] == {}
    assert outcomes[False] == {
        "issuer": "untrusted-issuer",
        "signature": "not-checked",
        "status": "not-checked",
        "query": "unrequested-type",
    }
