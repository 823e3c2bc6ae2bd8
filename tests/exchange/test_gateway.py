"""A call through two gateways over real HTTP and mutual TLS: the happy path and its log."""

from __future__ import annotations

import httpx
import pytest

from jisr.core.audit import service as audit
from jisr.core.crypto import jws
from jisr.exchange import envelope
from jisr.exchange.gateway import MESSAGE_LOG, wait_written

from .conftest import PORTAL, SERVICE_PATH, ExchangeWorld, message_log

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _records(world: ExchangeWorld, gateway: str, message_id: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    return [
        (event, data) for event, data in message_log(world, gateway) if data.get("id") == message_id
    ]


class TestHappyPath:
    def test_get_through_two_gateways(self, world: ExchangeWorld) -> None:
        response = world.call(headers={"X-Road-Id": "msg-get-1", "X-Road-UserId": "MAAB123456"})
        assert response.status_code == 200, response.text
        assert response.json() == {"national_id": "MA:AB123456", "born": "1990-01-01"}
        assert response.headers["x-road-id"] == "msg-get-1"
        assert response.headers["x-road-client"] == str(PORTAL)
        assert response.headers["x-provider"] == "yes"
        assert "x-road-error" not in response.headers
        assert len(response.headers["x-road-request-hash"]) == 88  # base64 of SHA-512

    def test_post_carries_body_query_and_headers(self, world: ExchangeWorld) -> None:
        response = world.call(
            "/echo?a=1&b=%2F",
            method="POST",
            content=b'{"x": 1}',
            headers={"Content-Type": "application/json", "X-Custom": "kept", "X-Road-Issue": "I-7"},
        )
        assert response.status_code == 200, response.text
        echoed = response.json()
        assert echoed["method"] == "POST"
        assert echoed["query"] == "a=1&b=%2F"
        assert echoed["body"] == '{"x": 1}'
        assert echoed["headers"]["x-custom"] == "kept"
        assert echoed["headers"]["x-road-client"] == str(PORTAL)
        assert echoed["headers"]["x-road-issue"] == "I-7"
        assert echoed["headers"]["x-road-service"].endswith("/BIRTHS/birth-record")

    def test_id_is_generated_when_missing(self, world: ExchangeWorld) -> None:
        response = world.call()
        assert response.status_code == 200
        assert len(response.headers["x-road-id"]) == 36

    @pytest.mark.parametrize("header", ["Information-Mediator-Client", "X-GovStack-Client"])
    def test_accepts_the_govstack_client_headers(self, world: ExchangeWorld, header: str) -> None:
        response = httpx.get(
            world.client_url + SERVICE_PATH + "/births/MA:AB123456",
            headers={header: str(PORTAL)},
            timeout=20,
        )
        assert response.status_code == 200, response.text

    def test_both_gateways_log_request_and_response_with_signatures(
        self, world: ExchangeWorld
    ) -> None:
        response = world.call(headers={"X-Road-Id": "msg-log-1"})
        assert response.status_code == 200
        consumer = _records(world, "gateway-eservices", "msg-log-1")
        provider = _records(world, "gateway-civil-registry", "msg-log-1")
        assert [e for e, _ in consumer] == ["request.out", "response.in"]
        assert [e for e, _ in provider] == ["request.in", "response.out"]
        # the same signed request on both sides, and the response hash ties them
        assert consumer[0][1]["signature"] == provider[0][1]["signature"]
        assert consumer[1][1]["signature"] == provider[1][1]["signature"]
        assert consumer[1][1]["request_hash"] == response.headers["x-road-request-hash"]
        assert (
            envelope.request_hash(consumer[0][1]["signature"], b"")
            == (response.headers["x-road-request-hash"])
        )
        assert "body" not in consumer[0][1]  # digests only, by default

    def test_concurrent_calls_each_log_their_request_before_their_answer(
        self, world: ExchangeWorld
    ) -> None:
        """Concurrent calls (group commits of several calls' records): every call has its
        ``request.out`` before its ``response.in``, and the chain verifies."""
        from concurrent.futures import ThreadPoolExecutor

        ids = [f"concurrent-{n}" for n in range(24)]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: world.call(headers={"X-Road-Id": i}), ids))
        assert [a.status_code for a in answers] == [200] * len(ids)
        for message_id in ids:
            consumer = _records(world, "gateway-eservices", message_id)
            assert [e for e, _ in consumer] == ["request.out", "response.in"], message_id
        self.test_message_logs_verify(world)

    def test_message_logs_verify(self, world: ExchangeWorld) -> None:
        for name in ("gateway-eservices", "gateway-civil-registry"):
            node = world.instance.node(name)
            with node.session() as session:
                report = audit.verify_chain(
                    session, MESSAGE_LOG, verifier=jws.keystore_verifier(session)
                )
            assert report.ok, report.findings

    def test_the_write_ahead_log_is_checkpointed_off_the_loop(self, world: ExchangeWorld) -> None:
        """SQLite: the log's own commits never checkpoint (a checkpoint syncs to disk, which
        stalled calls on the event loop); the gateway's checkpointer thread does."""
        runtime = world.provider_gateway.runtime
        if runtime.node.engine.dialect.name != "sqlite":
            pytest.skip("the write-ahead log is SQLite's")
        for _ in range(3):
            assert world.call().status_code == 200
        assert wait_written(runtime.settings, runtime.node.name)
        assert runtime._checkpointer is not None and runtime._checkpointer.is_alive()
        held = runtime._held
        assert held is not None
        raw = held.connection.driver_connection
        assert raw is not None
        assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        busy, pages, copied = runtime.checkpoint()
        assert busy == 0 and copied == pages
