"""Ports chosen now for a child process to listen on later.

`bind(("", 0))` hands out a port from the ephemeral range, the range every outgoing
connection takes its local port from. Between choosing such a port and a child binding it,
a client socket (a Kafka or Postgres connection) may take it, and the child cannot listen:
seen in CI as a settlement replica whose health port was taken, exiting at start. Below the
ephemeral range only listeners take ports, so a port found free there stays free.
"""

import random
import socket
from pathlib import Path

EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST = 20000
ATTEMPTS = 500


def _ephemeral_start() -> int:
    try:
        return int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int = 1) -> int:
    """The first of `count` consecutive ports that nothing listens on, all below the
    ephemeral range (a worker takes its base health port plus the ones after it)."""
    top = _ephemeral_start() - count
    if top <= LOWEST:
        raise RuntimeError(f"no room for {count} ports below the ephemeral range")
    pick = random.SystemRandom()
    for _ in range(ATTEMPTS):
        base = pick.randrange(LOWEST, top)
        if all(_free(p) for p in range(base, base + count)):
            return base
    raise RuntimeError(f"no {count} consecutive free ports found in {LOWEST}..{top}")


def free_port() -> int:
    return free_ports(1)
