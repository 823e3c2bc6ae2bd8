"""The message log's journal: a call's records are journalled before it is answered and reach
the hash chain moments later; what a stopped process journalled reaches the chain when the
node starts again; one process serves a node; a failed write to the chain is retried."""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

import pytest

from jisr.core import audit
from jisr.core.crypto import jws
from jisr.exchange import gateway as gateway_module
from jisr.exchange import server
from jisr.exchange.errors import GatewayBusy
from jisr.exchange.gateway import (
    MESSAGE_LOG,
    GatewayRuntime,
    LogRecord,
    journal_path,
    wait_written,
)

from .conftest import PORTAL, ExchangeWorld, invoke, message_log, run_in_own_loop

pytestmark = [pytest.mark.db, pytest.mark.slow]

PROVIDER = "gateway-civil-registry"


def _journal_size(world: ExchangeWorld, node: str) -> int:
    return journal_path(world.instance.settings, node).stat().st_size


def _chain_verifies(world: ExchangeWorld, node: str) -> bool:
    with world.instance.node(node).session() as session:
        report = audit.verify_chain(session, MESSAGE_LOG, verifier=jws.keystore_verifier(session))
    return report.ok


class TestJournal:
    def test_a_call_is_journalled_first_and_written_to_the_chain_soon_after(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(gateway_module, "WRITE_DELAY_SECONDS", 0.5)
        response = world.call(headers={"X-Road-Id": "journalled-1"})
        assert response.status_code == 200
        # answered while its records are still in the journal only
        lines = journal_path(world.instance.settings, PROVIDER).read_bytes().splitlines()
        assert any(b"journalled-1" in line for line in lines)
        assert wait_written(world.instance.settings, PROVIDER)
        events = [e for e, d in message_log(world, PROVIDER) if d.get("id") == "journalled-1"]
        assert events == ["request.in", "response.out"]
        assert _journal_size(world, PROVIDER) == 0
        assert _chain_verifies(world, PROVIDER)


class TestOneProcessPerNode:
    def test_a_second_process_for_a_served_node_is_refused(self, world: ExchangeWorld) -> None:
        second = GatewayRuntime(world.instance, PROVIDER)
        try:
            with pytest.raises(GatewayBusy, match="already serves gateway node"):
                second.open_journal()
        finally:
            second.close()
        assert world.call().status_code == 200  # the first one serves on

    def test_the_cli_says_so_in_a_sentence(self, world: ExchangeWorld) -> None:
        code, output = invoke(
            "gateway", "serve", "--node", PROVIDER, "--port", "0", "--dir", str(world.instance.path)
        )
        assert code != 0
        assert "Another process already serves gateway node gateway-civil-registry" in output
        assert "Traceback" not in output
        assert world.call().status_code == 200

    def test_nothing_is_logged_before_the_journal_is_open(self, world: ExchangeWorld) -> None:
        runtime = GatewayRuntime(world.instance, PROVIDER)
        try:
            with pytest.raises(RuntimeError, match="not open"):
                runtime.log_now(LogRecord("probe.unopened", {"n": 1}))
            assert not runtime._pending
        finally:
            runtime.close()
        assert "probe.unopened" not in [e for e, _ in message_log(world, PROVIDER)]


class TestFailedWrites:
    def test_a_failed_write_to_the_chain_keeps_the_records_and_tries_again(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        runtime = world.provider_gateway.runtime
        monkeypatch.setattr(gateway_module, "WRITE_RETRY_SECONDS", 0.05)
        real = runtime._append
        failed: list[int] = []

        def fails_once(batch: Any) -> None:
            if not failed:
                failed.append(len(batch))
                raise RuntimeError("the database is not writable (simulated)")
            real(batch)

        monkeypatch.setattr(runtime, "_append", fails_once)
        response = world.call(headers={"X-Road-Id": "retried-1"})
        assert response.status_code == 200  # acknowledged: it is journalled
        assert wait_written(world.instance.settings, PROVIDER)
        assert failed, "the write to the chain did not fail as arranged"
        events = [e for e, d in message_log(world, PROVIDER) if d.get("id") == "retried-1"]
        assert events == ["request.in", "response.out"]
        assert _chain_verifies(world, PROVIDER)


@contextlib.contextmanager
def _closing(runtime: GatewayRuntime) -> Iterator[GatewayRuntime]:
    """``runtime``, closed at the end whatever happens (its journal's lock released)."""
    try:
        yield runtime
    finally:
        runtime.close()


@contextlib.contextmanager
def _provider_stopped(world: ExchangeWorld) -> Iterator[None]:
    """The provider's gateway stopped (its node free for a runtime of the test's own), then
    served again."""
    world.provider_gateway.stop()
    try:
        yield
    finally:
        world.gateways[PROVIDER] = server.start_gateway(world.instance, PROVIDER)
        assert world.provider_gateway.refresh_now()
    assert world.call().status_code == 200


class _HalfWrites:
    """``os`` for gateway.py whose ``write`` writes half of what it is given, then fails."""

    def __init__(self) -> None:
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def write(self, fd: int, data: Any) -> int:
        self.failed += 1
        os.write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device (simulated)")


class TestRecovery:
    def test_a_failed_journal_write_is_cut_back_and_refused(
        self, world: ExchangeWorld, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A write the disk refuses half-way is not acknowledged (the caller gets the error)
        and leaves no half line for the next record to join."""
        with (
            _provider_stopped(world),
            _closing(GatewayRuntime(world.instance, PROVIDER)) as runtime,
        ):
            runtime.open_journal()
            path = journal_path(world.instance.settings, PROVIDER)

            async def log_twice() -> None:
                runtime.log_now(LogRecord("probe.first", {"n": 1}))
                size = path.stat().st_size
                half = _HalfWrites()
                monkeypatch.setattr(gateway_module, "os", half)
                with pytest.raises(OSError, match="No space left"):
                    runtime.log_now(LogRecord("probe.refused", {"n": 2}))
                monkeypatch.undo()
                assert half.failed == 1 and path.stat().st_size == size
                runtime.log_now(LogRecord("probe.second", {"n": 3}))
                lines = path.read_bytes().splitlines()
                assert [line.split(b'"')[3] for line in lines] == [b"probe.first", b"probe.second"]
                await runtime.flush()

            run_in_own_loop(log_twice)
            runtime.close()
            events = [e for e, _ in message_log(world, PROVIDER) if e.startswith("probe.")]
            assert events[-2:] == ["probe.first", "probe.second"]
            assert "probe.refused" not in events

    def test_what_a_stopped_process_journalled_reaches_the_chain_at_start(
        self, world: ExchangeWorld
    ) -> None:
        """A process stops abruptly: two records were written to the chain but the journal
        not yet emptied, a third was journalled only, and a last line was cut short. The
        next process writes the third only, skips the cut line, and its replay guard knows
        the third's message id."""
        with (
            _provider_stopped(world),
            _closing(GatewayRuntime(world.instance, PROVIDER)) as stopped,
        ):
            before = len(message_log(world, PROVIDER))
            assert stopped.open_journal() == 0

            async def log_then_stop() -> None:
                stopped.log_now(LogRecord("probe.a", {"n": 1}), LogRecord("probe.b", {"n": 2}))
                stopped.log_now(
                    LogRecord("probe.c", {"n": 3}, seen=(str(PORTAL), "journal-replay-1"))
                )
                assert stopped._commit(stopped._pending[:2])  # written; the journal not emptied

            run_in_own_loop(log_then_stop)
            fd = stopped._journal_fd
            assert fd is not None
            os.write(fd, b'["2026-11-30T00:00:00+00:00","probe.cut"')  # no end of line
            os.close(fd)  # the stop: nothing else is written, the lock goes with the process
            stopped._journal_fd, stopped._pending = None, []
            stopped.close()

            with _closing(GatewayRuntime(world.instance, PROVIDER)) as restarted:
                assert restarted.open_journal() == 1
                assert _journal_size(world, PROVIDER) == 0
                assert not restarted.first_sight(str(PORTAL), "journal-replay-1")
            after = [e for e, _ in message_log(world, PROVIDER)[before:]]
            assert after == ["probe.a", "probe.b", "probe.c"]
            assert _chain_verifies(world, PROVIDER)
