"""Ports chosen to listen on later stay clear of the ephemeral range outgoing sockets use."""

from __future__ import annotations

import socket

from jisr.core import net


def test_free_port_is_bindable_and_below_the_ephemeral_range() -> None:
    start = net._ephemeral_start()
    for _ in range(20):
        port = net.free_port()
        assert port < start or start - 10_000 <= 1_000
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))


def test_a_busy_port_is_not_chosen(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        choices = iter([taken, taken, taken + 1 if taken < 65535 else taken - 1])
        monkeypatch.setattr(net.random.SystemRandom, "randrange", lambda self, a, b: next(choices))
        monkeypatch.setattr(net, "_ephemeral_start", lambda: 65_536)
        assert net.free_port() != taken
