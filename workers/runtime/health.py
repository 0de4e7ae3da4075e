"""Health: what each stage of this process is doing, and why it is unhealthy when it is.

A stage is unhealthy when it has lag and made no progress for `stuck_after_s` (a stuck
consumer, aiokafka #1154), when its batches keep failing past the retry budget, when a
dependency it needs (Kafka, Postgres, Redis) did not answer the last probe, or when it has
had no partition for several session timeouts. Lag and reachability are refreshed by
probes on a timer (workers/runtime/probes.py), never only after a successful batch.
"""

import time
from dataclasses import dataclass, field
from typing import Any

from workers.runtime import metrics


@dataclass
class Dependencies:
    """The last probe of each dependency, shared by the stages of one process."""

    errors: dict[str, str | None] = field(default_factory=dict)

    def answered(self, name: str) -> None:
        self.errors[name] = None
        metrics.DEPENDENCY_UP.labels(name).set(1)

    def failed(self, name: str, error: str) -> None:
        self.errors[name] = error
        metrics.DEPENDENCY_UP.labels(name).set(0)

    def down(self) -> dict[str, str]:
        return {name: err for name, err in self.errors.items() if err is not None}

    def report(self) -> dict[str, Any]:
        return {name: {"ok": err is None, "error": err} for name, err in self.errors.items()}


@dataclass
class Health:
    stage: str
    stuck_after_s: float = 60.0
    # No partition for this long: the group never assigned us any (or more replicas than
    # partitions, which is worth knowing too).
    unassigned_after_s: float = 30.0
    dependencies: Dependencies = field(default_factory=Dependencies)
    # What this stage cannot work without; only these make it unhealthy when down.
    needs: frozenset[str] = frozenset({"kafka", "postgres"})
    lag: int = 0
    partitions: int = 0
    error: str | None = None
    failing_batches: int = 0
    last_success_at: float | None = None  # wall clock, for people
    last_progress: float = field(default_factory=time.monotonic)
    started: float = field(default_factory=time.monotonic)

    def progressed(self) -> None:
        self.last_progress = time.monotonic()
        self.last_success_at = time.time()
        self.failing_batches = 0
        self.error = None
        metrics.LAST_SUCCESS.labels(self.stage).set(self.last_success_at)

    def failing(self, error: str) -> None:
        """A batch failed past its retry budget (it will be read again)."""
        self.failing_batches += 1
        self.error = error

    def observed_lag(self, lag: int) -> None:
        self.lag = lag
        metrics.LAG.labels(self.stage).set(lag)
        if lag == 0 and self.failing_batches == 0:  # caught up: idle is healthy
            self.last_progress = time.monotonic()

    def assigned(self, partitions: int) -> None:
        self.partitions = partitions
        metrics.PARTITIONS.labels(self.stage).set(partitions)

    def reasons(self) -> list[str]:
        now = time.monotonic()
        since = now - self.last_progress
        found = []
        if self.lag > 0 and since > self.stuck_after_s:
            found.append(f"stuck: lag {self.lag} and no progress for {since:.0f} s")
        if self.failing_batches:
            found.append(
                f"failing: {self.failing_batches} batch attempt(s) failed past the retry "
                f"budget; last error: {self.error}"
            )
        for name, err in sorted(self.dependencies.down().items()):
            if name in self.needs:
                found.append(f"{name} unreachable: {err}")
        if self.partitions == 0 and now - self.started > self.unassigned_after_s:
            found.append(
                f"no partitions assigned after {now - self.started:.0f} s "
                "(group not joined, or more replicas than partitions)"
            )
        return found

    def report(self) -> dict[str, Any]:
        reasons = self.reasons()
        return {
            "stage": self.stage,
            "ok": not reasons,
            "reasons": reasons,
            "lag": self.lag,
            "partitions": self.partitions,
            "seconds_since_progress": round(time.monotonic() - self.last_progress, 1),
            "last_success_at": self.last_success_at,
            "last_error": self.error,
        }
