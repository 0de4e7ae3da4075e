"""Health: a stage is stuck only when it has lag and has made no progress for too long."""

import time

import pytest

from workers.runtime.health import Health


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def _health(clock: Clock, *, lag: int, stuck_after_s: float = 60.0) -> Health:
    # last_progress's default factory is bound to the real clock: start from the fake one.
    health = Health("order_build", stuck_after_s=stuck_after_s, lag=lag)
    health.progressed()
    return health


def test_fresh_stage_is_healthy(clock: Clock) -> None:
    assert _health(clock, lag=5).report() == {
        "stage": "order_build",
        "ok": True,
        "lag": 5,
        "seconds_since_progress": 0.0,
        "last_error": None,
    }


def test_lag_without_progress_for_longer_than_stuck_after_is_stuck(clock: Clock) -> None:
    health = _health(clock, lag=5)
    clock.now += 60.5
    report = health.report()
    assert report["ok"] is False
    assert report["seconds_since_progress"] == 60.5


def test_exactly_stuck_after_seconds_is_not_yet_stuck(clock: Clock) -> None:
    health = _health(clock, lag=5)
    clock.now += 60.0
    assert health.report()["ok"] is True


def test_lag_with_recent_progress_is_healthy(clock: Clock) -> None:
    health = _health(clock, lag=5)
    clock.now += 59.9
    assert health.report()["ok"] is True


def test_idle_with_no_lag_is_healthy_however_long(clock: Clock) -> None:
    health = _health(clock, lag=0)
    clock.now += 3_600
    assert health.report()["ok"] is True


def test_progress_clears_stuck_and_the_last_error(clock: Clock) -> None:
    health = _health(clock, lag=5)
    health.failing("KafkaConnectionError: broker down")
    clock.now += 120
    assert health.report()["ok"] is False
    assert health.report()["last_error"] == "KafkaConnectionError: broker down"
    health.progressed()
    report = health.report()
    assert (report["ok"], report["last_error"], report["seconds_since_progress"]) == (
        True,
        None,
        0.0,
    )


def test_failing_alone_does_not_make_a_stage_stuck(clock: Clock) -> None:
    health = _health(clock, lag=0)
    health.failing("boom")
    assert health.report()["ok"] is True
    assert health.report()["last_error"] == "boom"


def test_idle_check_counts_as_progress_only_when_caught_up(clock: Clock) -> None:
    health = _health(clock, lag=0)
    clock.now += 120
    health.idle_check()
    assert health.report()["seconds_since_progress"] == 0.0

    health.lag = 3
    clock.now += 120
    health.idle_check()
    report = health.report()
    assert report["seconds_since_progress"] == 120.0
    assert report["ok"] is False


def test_custom_stuck_after(clock: Clock) -> None:
    health = _health(clock, lag=1, stuck_after_s=5.0)
    clock.now += 5.1
    assert health.report()["ok"] is False
