"""Health: each reason a stage is unhealthy (stuck, failing, a needed dependency down, no
partitions), and the cases that must stay healthy."""

import time

import pytest
from prometheus_client import REGISTRY

from workers.runtime.health import Dependencies, Health

STAGE = "health_unit_stage"  # its own metric labels, apart from any real stage's


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "monotonic", fake)
    monkeypatch.setattr(time, "time", lambda: 1_750_000_000.0 + fake.now)
    return fake


def _health(
    clock: Clock,
    *,
    lag: int = 0,
    partitions: int = 3,
    stuck_after_s: float = 60.0,
    unassigned_after_s: float = 30.0,
    dependencies: Dependencies | None = None,
    needs: frozenset[str] = frozenset({"kafka", "postgres"}),
) -> Health:
    # The dataclass's default factories hold the real clock: start from the fake one.
    health = Health(
        STAGE,
        stuck_after_s=stuck_after_s,
        unassigned_after_s=unassigned_after_s,
        dependencies=dependencies or Dependencies(),
        needs=needs,
        last_progress=clock.now,
        started=clock.now,
    )
    health.assigned(partitions)
    health.observed_lag(lag)
    return health


def _reasons(health: Health) -> list[str]:
    report = health.report()
    assert report["ok"] is (not report["reasons"])
    return list(report["reasons"])


def _sample(name: str, **labels: str) -> float | None:
    value: float | None = REGISTRY.get_sample_value(name, labels)
    return value


# --- healthy --------------------------------------------------------------------------


def test_a_fresh_stage_reports_every_field(clock: Clock) -> None:
    assert _health(clock, lag=5).report() == {
        "stage": STAGE,
        "ok": True,
        "reasons": [],
        "lag": 5,
        "partitions": 3,
        "seconds_since_progress": 0.0,
        "last_success_at": None,
        "last_error": None,
    }


def test_idle_with_no_lag_is_healthy_however_long(clock: Clock) -> None:
    health = _health(clock, lag=0)
    clock.now += 3_600
    assert _reasons(health) == []
    health.observed_lag(0)  # the probe still finds nothing to do
    clock.now += 3_600
    assert _reasons(health) == []


def test_lag_with_recent_progress_is_healthy(clock: Clock) -> None:
    health = _health(clock, lag=5)
    clock.now += 50
    health.progressed()
    clock.now += 50  # 100 s since start, 50 s since the last batch
    health.observed_lag(7)
    assert _reasons(health) == []


def test_exactly_stuck_after_seconds_is_not_yet_stuck(clock: Clock) -> None:
    health = _health(clock, lag=5)
    clock.now += 60.0
    assert _reasons(health) == []


def test_a_dependency_the_stage_does_not_need_does_not_count(clock: Clock) -> None:
    deps = Dependencies()
    health = _health(clock, dependencies=deps)  # needs kafka and postgres only
    deps.failed("redis", "ConnectionError: redis down")
    assert _reasons(health) == []
    assert deps.report()["redis"] == {"ok": False, "error": "ConnectionError: redis down"}


def test_no_partitions_before_unassigned_after_is_healthy(clock: Clock) -> None:
    health = _health(clock, partitions=0, unassigned_after_s=18.0)
    clock.now += 18.0
    assert _reasons(health) == []


# --- unhealthy ------------------------------------------------------------------------


def test_lag_without_progress_for_longer_than_stuck_after_is_stuck(clock: Clock) -> None:
    health = _health(clock, lag=5, stuck_after_s=60.0)
    clock.now += 60.5
    health.observed_lag(5)  # the probe keeps finding the same lag
    assert _reasons(health) == ["stuck: lag 5 and no progress for 60 s"]
    assert health.report()["seconds_since_progress"] == 60.5


def test_custom_stuck_after(clock: Clock) -> None:
    health = _health(clock, lag=1, stuck_after_s=5.0)
    clock.now += 5.1
    assert [r.split(":")[0] for r in _reasons(health)] == ["stuck"]


def test_batches_failing_past_the_retry_budget_is_unhealthy_with_the_error(
    clock: Clock,
) -> None:
    health = _health(clock, lag=0)
    health.failing("TransientError: a lock that is never released")
    health.failing("TransientError: a lock that is never released")
    reasons = _reasons(health)
    assert len(reasons) == 1
    assert reasons[0].startswith("failing: 2 batch attempt(s) failed past the retry budget")
    assert reasons[0].endswith("last error: TransientError: a lock that is never released")
    assert health.report()["last_error"] == "TransientError: a lock that is never released"


def test_a_failing_stage_with_lag_becomes_stuck_too_and_the_lag_probe_does_not_hide_it(
    clock: Clock,
) -> None:
    health = _health(clock, lag=3)
    health.failing("OSError: connection refused")
    clock.now += 120
    health.observed_lag(0)  # not caught up: the batch is kept, but failing
    health.observed_lag(3)
    assert [r.split(":")[0] for r in _reasons(health)] == ["stuck", "failing"]


def test_progress_clears_failing_stuck_and_the_last_error(clock: Clock) -> None:
    health = _health(clock, lag=5)
    health.failing("KafkaConnectionError: broker down")
    clock.now += 120
    assert len(_reasons(health)) == 2
    health.progressed()
    report = health.report()
    assert (report["ok"], report["reasons"], report["last_error"]) == (True, [], None)
    assert report["seconds_since_progress"] == 0.0
    assert report["last_success_at"] == 1_750_000_000.0 + clock.now


@pytest.mark.parametrize("name", ["kafka", "postgres"])
def test_a_needed_dependency_that_did_not_answer_is_unhealthy(clock: Clock, name: str) -> None:
    deps = Dependencies()
    health = _health(clock, dependencies=deps)
    deps.failed(name, "OSError: connection refused")
    assert _reasons(health) == [f"{name} unreachable: OSError: connection refused"]
    deps.answered(name)
    assert _reasons(health) == []


def test_redis_down_makes_only_the_stages_that_need_it_unhealthy(clock: Clock) -> None:
    deps = Dependencies()
    callbacks = _health(clock, dependencies=deps, needs=frozenset({"kafka", "postgres", "redis"}))
    orders = _health(clock, dependencies=deps)
    deps.answered("postgres")
    deps.failed("redis", "TimeoutError: ")
    assert _reasons(callbacks) == ["redis unreachable: TimeoutError: "]
    assert _reasons(orders) == []
    assert deps.down() == {"redis": "TimeoutError: "}
    assert deps.report() == {
        "postgres": {"ok": True, "error": None},
        "redis": {"ok": False, "error": "TimeoutError: "},
    }


def test_every_reason_at_once(clock: Clock) -> None:
    deps = Dependencies()
    health = _health(clock, lag=4, partitions=0, dependencies=deps, unassigned_after_s=30)
    health.failing("OSError: reset")
    deps.failed("postgres", "OSError: refused")
    deps.failed("kafka", "KafkaConnectionError: down")
    clock.now += 61
    assert [r.split(":")[0].split(" ")[0] for r in _reasons(health)] == [
        "stuck",
        "failing",
        "kafka",
        "postgres",
        "no",
    ]


def test_no_partitions_after_unassigned_after_says_so(clock: Clock) -> None:
    health = _health(clock, partitions=0, unassigned_after_s=18.0)
    clock.now += 18.5
    (reason,) = _reasons(health)
    assert reason.startswith("no partitions assigned after 18 s")
    health.assigned(2)
    assert _reasons(health) == []


# --- metrics --------------------------------------------------------------------------


def test_lag_partitions_last_success_and_dependencies_are_exported(clock: Clock) -> None:
    deps = Dependencies()
    health = _health(clock, lag=9, partitions=4, dependencies=deps)
    assert _sample("payflow_consumer_lag", stage=STAGE) == 9
    assert _sample("payflow_partitions_assigned", stage=STAGE) == 4
    health.progressed()
    assert _sample("payflow_last_successful_batch_timestamp_seconds", stage=STAGE) == (
        1_750_000_000.0 + clock.now
    )
    deps.failed("redis", "down")
    assert _sample("payflow_dependency_up", dependency="redis") == 0
    deps.answered("redis")
    assert _sample("payflow_dependency_up", dependency="redis") == 1
