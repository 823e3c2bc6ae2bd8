"""The message log at rest: bodies encrypted when ``exchange_log_encrypt_bodies`` is on (no
plaintext in the database; logs and archives still verify), and the replay guard's table
pruned beyond the replay window."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from jisr.core.errors import CryptoError
from jisr.exchange import gateway as gateway_module
from jisr.exchange.gateway import GatewayRuntime, journal_path, wait_written
from jisr.exchange.models import SeenMessage

from .conftest import ExchangeWorld, invoke, message_log

pytestmark = [pytest.mark.db, pytest.mark.slow]


def _database_bytes(world: ExchangeWorld, node: str) -> bytes:
    """What the node's database holds at rest: its files (SQLite, WAL included), or on
    PostgreSQL the text of every row of every table."""
    engine = world.instance.node(node).engine
    database = engine.url.database
    assert database
    if engine.dialect.name == "sqlite":
        return b"".join(p.read_bytes() for p in sorted(Path(database).parent.glob("*.db*")))
    with engine.connect() as connection:
        tables = sa.inspect(connection).get_table_names()
        rows = [
            row
            for table in tables
            for row in connection.execute(sa.text(f'SELECT t::text FROM "{table}" t')).scalars()
        ]
    assert rows, "the database holds rows"
    return "\n".join(rows).encode()


class TestEncryptedBodies:
    def test_no_plaintext_at_rest_and_logs_still_verify(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        settings = world.instance.settings
        monkeypatch.setattr(settings, "exchange_log_bodies", True)
        monkeypatch.setattr(settings, "exchange_log_encrypt_bodies", True)
        monkeypatch.setattr(gateway_module, "WRITE_DELAY_SECONDS", 0.5)  # journalled a while
        secret = f"SECRET-{uuid.uuid4().hex}"
        body = json.dumps({"name": secret}).encode()
        response = world.call("/echo", method="POST", content=body)
        assert response.status_code == 200, response.text
        assert secret in response.json()["body"]  # the provider echoed it back
        message_id = response.headers["x-road-id"]
        for node in ("gateway-eservices", "gateway-civil-registry"):  # the journal too
            journalled = journal_path(settings, node).read_bytes()
            assert message_id.encode() in journalled and b"body_aesgcm" in journalled
            assert secret.encode() not in journalled
            assert base64.b64encode(body) not in journalled
        for node, events in (
            ("gateway-eservices", ("request.out", "response.in")),
            ("gateway-civil-registry", ("request.in", "response.out")),
        ):
            assert wait_written(settings, node)
            stored = _database_bytes(world, node)
            assert secret.encode() not in stored
            assert base64.b64encode(body) not in stored
            runtime = world.gateways[node].runtime
            records = {e: d for e, d in message_log(world, node) if d.get("id") == message_id}
            for event in events:
                data = records[event]
                assert "body" not in data and "body_aesgcm" in data
                opened = runtime.read_body(data, f"{event}:{message_id}")
                assert opened is not None and secret.encode() in opened
                with pytest.raises(CryptoError):  # bound to its record
                    runtime.read_body(data, f"{event}:another-id")
        # the hash chain covers what is stored: logs and an archive verify without the key
        d = str(world.instance.path)
        code, output = invoke("log", "verify", "--dir", d)
        assert code == 0, output
        archive = tmp_path / "log.zip"
        code, output = invoke("log", "export", "--dir", d, "--out", str(archive))
        assert code == 0, output
        code, output = invoke("log", "verify", str(archive))
        assert code == 0, output

    def test_plain_bodies_when_encryption_is_off(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(world.instance.settings, "exchange_log_bodies", True)
        response = world.call("/echo", method="POST", content=b'{"plain": true}')
        message_id = response.headers["x-road-id"]
        records = {
            e: d for e, d in message_log(world, "gateway-eservices") if d.get("id") == message_id
        }
        assert base64.b64decode(records["request.out"]["body"]) == b'{"plain": true}'
        runtime = world.consumer_gateway.runtime
        assert runtime.read_body(records["request.out"]) == b'{"plain": true}'
        # the probe of the other test does find a body stored in the clear
        assert base64.b64encode(b'{"plain": true}') in _database_bytes(world, "gateway-eservices")


class TestReplayTablePruning:
    def _seen(self, world: ExchangeWorld) -> set[str]:
        assert wait_written(world.instance.settings, "gateway-civil-registry")
        with world.instance.node("gateway-civil-registry").session() as session:
            return set(session.scalars(sa.select(SeenMessage.message_id)))

    def _insert(self, world: ExchangeWorld, message_id: str, age: dt.timedelta) -> None:
        with world.instance.node("gateway-civil-registry").session() as session:
            session.add(
                SeenMessage(
                    client="MA/GOV/ESERVICES/PORTAL",
                    message_id=message_id,
                    seen_at=dt.datetime.now(dt.UTC) - age,
                )
            )

    def test_rows_beyond_the_window_are_pruned(self, world: ExchangeWorld) -> None:
        skew = world.instance.settings.exchange_max_clock_skew_seconds
        runtime = world.provider_gateway.runtime
        self._insert(world, "old-1", dt.timedelta(seconds=2 * skew + 60))
        self._insert(world, "young-1", dt.timedelta(seconds=2 * skew - 60))
        assert runtime.prune_seen() >= 1
        seen = self._seen(world)
        assert "old-1" not in seen and "young-1" in seen

    def test_pruning_goes_a_chunk_at_a_time(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The writer deletes at most a chunk of the oldest rows per transaction (one
        DELETE of a minute's rows held the loop for tens of milliseconds), the next chunk
        soon after a full one, then not before the period."""
        skew = world.instance.settings.exchange_max_clock_skew_seconds
        for index in range(7):  # old-0 is the oldest
            self._insert(world, f"old-{index}", dt.timedelta(seconds=2 * skew + 70 - index))
        self._insert(world, "young-2", dt.timedelta(seconds=2 * skew - 60))
        runtime = GatewayRuntime(world.instance, "gateway-civil-registry")
        try:
            assert runtime.prune_seen(limit=2) == 2
            assert {"old-0", "old-1"}.isdisjoint(self._seen(world))
            monkeypatch.setattr(gateway_module, "PRUNE_CHUNK_ROWS", 3)
            runtime._next_prune = 0.0
            runtime._prune_now_and_then()
            assert {"old-2", "old-3", "old-4"}.isdisjoint(self._seen(world))
            assert {"old-5", "old-6"} <= self._seen(world)
            assert runtime._next_prune <= time.monotonic() + gateway_module.PRUNE_AGAIN_SECONDS
            runtime._next_prune = 0.0
            before = time.monotonic()
            runtime._prune_now_and_then()  # the last two: not a full chunk
            seen = self._seen(world)
            assert not any(name.startswith("old-") for name in seen) and "young-2" in seen
            assert runtime._next_prune >= before + gateway_module.PRUNE_EVERY_SECONDS
            self._insert(world, "old-7", dt.timedelta(seconds=2 * skew + 60))
            runtime._prune_now_and_then()  # not due: nothing is deleted
            assert "old-7" in self._seen(world)
        finally:
            runtime.close()

    def test_a_gateway_starts_with_the_windows_ids(self, world: ExchangeWorld) -> None:
        """What ``first_sight`` refuses after a restart: the table's ids within the window
        (twice the clock skew), not older ones; an id in the table twice is one id."""
        skew = world.instance.settings.exchange_max_clock_skew_seconds
        client = "MA/GOV/ESERVICES/PORTAL"
        self._insert(world, "old-3", dt.timedelta(seconds=2 * skew + 60))
        self._insert(world, "young-3", dt.timedelta(seconds=2 * skew - 60))
        self._insert(world, "young-3", dt.timedelta(seconds=10))
        restarted = GatewayRuntime(world.instance, "gateway-civil-registry")
        try:
            assert (client, "young-3") in restarted._recent
            assert (client, "old-3") not in restarted._recent
            times = list(restarted._recent.values())
            assert times == sorted(times)  # oldest first: how the memory forgets
            assert restarted._recent[(client, "young-3")] <= times[0] + 1  # its first row
            assert not restarted.first_sight(client, "young-3")
            assert restarted.first_sight(client, "old-3")  # its signed time refuses it now
        finally:
            restarted.close()

    def test_the_writer_prunes_by_itself(self, world: ExchangeWorld) -> None:
        skew = world.instance.settings.exchange_max_clock_skew_seconds
        runtime = world.provider_gateway.runtime
        self._insert(world, "old-2", dt.timedelta(seconds=2 * skew + 60))
        runtime._next_prune = 0.0  # due now: the writer prunes after its next batch
        response = world.call()
        assert response.status_code == 200
        assert response.headers["x-road-id"] in self._seen(world)
        # the writer prunes after a batch it wrote (this call's or one before it); with the
        # writer thread (PostgreSQL) after telling the loop the batch is written, so the
        # journal may be empty a moment before the prune is done
        deadline = time.monotonic() + 10
        while "old-2" in self._seen(world) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "old-2" not in self._seen(world)
