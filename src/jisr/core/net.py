"""Choosing a port to listen on later (gateways are registered with their address before
they start, and tests start servers on addresses they chose).

Asking the kernel for port 0 and closing the socket gives a port from the *ephemeral* range,
the same range every outgoing connection takes its source port from: under load another
connection can take it before we bind (seen in CI: "address already in use"). So the port is
chosen below that range, where only explicit binds land, and checked by binding it once.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000


def _ephemeral_start() -> int:
    try:
        return int(_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768  # Linux's default


def free_port(host: str = "127.0.0.1", *, attempts: int = 200) -> int:
    """A port on ``host`` that is free now and outside the ephemeral range when possible."""
    start = _ephemeral_start()
    chooser = random.SystemRandom()
    if start - _LOWEST > 1_000:
        for _attempt in range(attempts):
            port = chooser.randrange(_LOWEST, start)
            with socket.socket() as probe:
                try:
                    probe.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket() as probe:  # a narrow or unknown range: let the kernel choose
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


__all__ = ["free_port"]
