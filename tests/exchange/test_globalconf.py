"""The signed global configuration: building, signing, verifying; and the gateways' resilience
when the registry goes away and comes back."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from jisr.core.crypto import jws, keystore
from jisr.core.instance import REGISTRY_NODE
from jisr.demo import servers
from jisr.exchange import globalconf, service
from jisr.exchange.errors import GlobalConfRefused

from .conftest import BIRTH_RECORD, OTHER, ExchangeWorld, build_world, run_in_own_loop

pytestmark = [pytest.mark.db, pytest.mark.slow]


@pytest.fixture(scope="module")
def world(instance_factory: Any) -> Iterator[ExchangeWorld]:
    made = build_world(instance_factory("MA"), refresh_seconds=0.2)
    yield made
    made.close()


def _download(world: ExchangeWorld) -> str:
    response = httpx.get(world.registry.url + "/exchange/globalconf", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/jose")
    return response.text


def _anchor(world: ExchangeWorld) -> dict[str, Any]:
    return world.consumer_gateway.runtime.files.read_anchor()


class TestDocument:
    def test_published_document_verifies_and_lists_everything(self, world: ExchangeWorld) -> None:
        conf = globalconf.verify(
            _download(world),
            jwks=_anchor(world)["jwks"],
            instance="MA",
            ca_pem=world.instance.ca_certificate_pem(),
        )
        assert conf.instance == "MA" and conf.version >= 1
        assert conf.expires_at > dt.datetime.now(dt.UTC)
        assert set(conf.gateways) == {"gateway-civil-registry", "gateway-eservices"}
        assert conf.gateway_of_member["MA/GOV/ESERVICES"] == "gateway-eservices"
        assert str(BIRTH_RECORD) in conf.services
        assert conf.access_rights[(str(BIRTH_RECORD), "MA/GOV/ESERVICES/PORTAL")]
        jwks = httpx.get(world.registry.url + "/exchange/globalconf/jwks", timeout=10).json()
        assert jwks == _anchor(world)["jwks"]
        ca_pem = httpx.get(world.registry.url + "/exchange/ca.pem", timeout=10).content
        assert ca_pem == world.instance.ca_certificate_pem()

    def test_same_content_same_version(self, world: ExchangeWorld) -> None:
        assert _download(world) == _download(world)

    def test_refusals(self, world: ExchangeWorld, instance_factory: Any) -> None:
        token = _download(world)
        anchor = _anchor(world)
        ca_pem = world.instance.ca_certificate_pem()
        head, payload, signature = token.split(".")
        forged = ".".join(
            (head, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature)
        )
        with pytest.raises(GlobalConfRefused, match="signature"):
            globalconf.verify(forged, jwks=anchor["jwks"], instance="MA", ca_pem=ca_pem)
        with pytest.raises(GlobalConfRefused, match="instance MA, not QA"):
            globalconf.verify(token, jwks=anchor["jwks"], instance="QA", ca_pem=ca_pem)
        other = instance_factory("QA", nodes=["registry"])
        with pytest.raises(GlobalConfRefused, match="another CA"):
            globalconf.verify(
                token, jwks=anchor["jwks"], instance="MA", ca_pem=other.ca_certificate_pem()
            )
        with other.node(REGISTRY_NODE).session() as session:
            other_jwks = keystore.public_jwks(session)
            key = keystore.active_key(session, other.node(REGISTRY_NODE).keys)
        with pytest.raises(GlobalConfRefused, match="signature"):
            globalconf.verify(token, jwks=other_jwks, instance="MA", ca_pem=ca_pem)
        document = jws.verify_compact(token, anchor["jwks"]).json()
        by_other = jws.sign_compact(document, key, typ=globalconf.TYP)
        with pytest.raises(GlobalConfRefused, match="signature"):
            globalconf.verify(by_other, jwks=anchor["jwks"], instance="MA", ca_pem=ca_pem)
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        with pytest.raises(GlobalConfRefused, match="expired"):
            globalconf.verify(token, jwks=anchor["jwks"], instance="MA", ca_pem=ca_pem, at=later)
        with pytest.raises(GlobalConfRefused, match="older"):
            globalconf.verify(
                token, jwks=anchor["jwks"], instance="MA", ca_pem=ca_pem, newer_than=10**6
            )


def _wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


class TestResilience:
    def test_registry_down_then_back(self, world: ExchangeWorld) -> None:
        consumer = world.consumer_gateway
        provider = world.provider_gateway
        held = provider.runtime.conf
        assert held is not None
        port = world.registry.port
        world.registry.stop()
        _wait_for(lambda: provider.runtime.last_refresh_error is not None)
        # calls keep working on the cached configuration
        assert world.call().status_code == 200
        response = world.call(headers={"X-Road-Client": str(OTHER)})
        assert response.headers["x-road-error"] == "Server.ServerProxy.AccessDenied"
        # meanwhile the registry grants OTHER access; nobody can download it yet
        registry = world.instance.node(REGISTRY_NODE)
        with registry.session() as session:
            service.grant_access(session, service=BIRTH_RECORD, client=OTHER)
        world.registry = servers.start(world.instance, port=port)
        # the schedule picks the new version up by itself
        _wait_for(lambda: (provider.runtime.conf or held).version > held.version)
        _wait_for(lambda: provider.runtime.last_refresh_error is None)
        assert consumer.runtime.conf is not None
        assert world.call(headers={"X-Road-Client": str(OTHER)}).status_code == 200

    def test_expired_configuration_refuses_then_recovers(self, world: ExchangeWorld) -> None:
        consumer = world.consumer_gateway
        port = world.registry.port
        world.registry.stop()
        held = consumer.runtime.conf
        assert held is not None
        past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        consumer.runtime._conf = dataclasses.replace(held, expires_at=past)
        response = world.call()
        assert response.status_code == 500
        assert response.headers["x-road-error"] == "Server.ClientProxy.OutdatedGlobalConf"
        world.registry = servers.start(world.instance, port=port)
        _wait_for(lambda: consumer.runtime.usable_conf() is not None)
        assert world.call().status_code == 200


class TestRefreshSchedule:
    """After a failed download the next try comes soon (1, 2, 4 … s, never more than the
    period): a gateway started while the registry was away waits seconds, not a period."""

    def test_delays(self) -> None:
        from jisr.exchange.server import refresh_delay

        assert refresh_delay(60.0, 0) == 60.0
        assert [refresh_delay(60.0, n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
        assert refresh_delay(0.5, 3) == 0.5
        assert refresh_delay(60.0, 10_000) == 60.0

    def test_retries_soon_then_keeps_the_period(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import asyncio
        import types

        from jisr.exchange import server as gateway_server

        monkeypatch.setattr(gateway_server, "RETRY_FIRST_SECONDS", 0.01)
        outcomes = [False, False, True, True]
        tried: list[float] = []

        async def refresh(http: Any) -> bool:
            tried.append(time.monotonic())
            return outcomes[len(tried) - 1] if len(tried) <= len(outcomes) else True

        runtime = types.SimpleNamespace(
            settings=types.SimpleNamespace(exchange_globalconf_refresh_seconds=0.5),
            refresh=refresh,
        )

        async def scenario() -> None:
            started = time.monotonic()
            task = asyncio.create_task(gateway_server._refresh_forever(runtime, None, 1))
            while len(tried) < 4:
                await asyncio.sleep(0.005)
            task.cancel()
            gaps = [b - a for a, b in zip([started, *tried], tried, strict=False)]
            assert gaps[0] < 0.25 and gaps[1] < 0.25 and gaps[2] < 0.25  # 0.01, 0.02, 0.04
            assert gaps[3] >= 0.45  # after a success: the period again

        run_in_own_loop(scenario)
