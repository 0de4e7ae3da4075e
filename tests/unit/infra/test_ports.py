import random
import socket

import pytest

from infra import ports


def test_a_block_of_ports_is_free_and_below_the_ephemeral_range() -> None:
    base = ports.free_ports(30)
    assert ports.LOWEST <= base and base + 30 <= ports._ephemeral_start()
    for port in range(base, base + 30):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nothing listens there


def test_a_taken_port_is_never_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        taken = held.getsockname()[1]
        free = ports.free_port()
        picks = iter([taken, free])
        monkeypatch.setattr(random.SystemRandom, "randrange", lambda *_: next(picks))
        monkeypatch.setattr(ports, "_ephemeral_start", lambda: 65000)
        monkeypatch.setattr(ports, "LOWEST", 1024)
        assert ports.free_ports(1) == free
