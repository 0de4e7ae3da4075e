"""PAYFLOW_CRASH_AT names where a crash test's worker dies; with a key, only a batch holding
a message whose key names it dies, whatever else is on the topic."""

import os

import pytest

from workers.runtime import faults


class Died(Exception):
    pass


def _exit(code: int) -> None:
    raise Died(code)


@pytest.fixture(autouse=True)
def no_real_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "_exit", _exit)


def _dies(monkeypatch: pytest.MonkeyPatch, wanted: str | None, *keys: bytes | None) -> bool:
    if wanted is None:
        monkeypatch.delenv("PAYFLOW_CRASH_AT", raising=False)
    else:
        monkeypatch.setenv("PAYFLOW_CRASH_AT", wanted)
    try:
        faults.crash_point("after_commit", "fund_freeze", keys)
    except Died:
        return True
    return False


def test_unset_never_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not _dies(monkeypatch, None, b"o-1")


def test_a_point_and_stage_die_at_any_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _dies(monkeypatch, "after_commit:fund_freeze")
    assert not _dies(monkeypatch, "after_publish:fund_freeze", b"o-1")
    assert not _dies(monkeypatch, "after_commit:settlement", b"o-1")


def test_with_a_key_only_a_batch_naming_it_dies(monkeypatch: pytest.MonkeyPatch) -> None:
    wanted = "after_commit:fund_freeze:crash-o:1"  # an id may hold a colon
    assert not _dies(monkeypatch, wanted, b"left-by-another-test", None)
    assert _dies(monkeypatch, wanted, b"other", b"crash-o:1")
    # A payment's callbacks are keyed by the payment id, which holds the order id.
    assert _dies(monkeypatch, wanted, b"tx-crash-o:1-p1")
