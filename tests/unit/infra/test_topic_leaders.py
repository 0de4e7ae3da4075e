"""Which topics of a metadata answer a client cannot use yet (infra.services.kafka.leaderless)."""

from typing import Any

from infra.services.kafka import leaderless


def _topic(name: str, error: int = 0, leaders: tuple[int, ...] = (1, 1)) -> dict[str, Any]:
    parts = [{"error_code": 0, "partition": i, "leader": ld} for i, ld in enumerate(leaders)]
    return {"error_code": error, "topic": name, "partitions": parts}


def test_a_topic_with_a_leader_for_every_partition_is_ready() -> None:
    assert leaderless([_topic("a"), _topic("b", leaders=(1,))]) == []


def test_unknown_to_the_broker_without_partitions_or_a_leader_is_not() -> None:
    unknown = _topic("unknown", error=3, leaders=())
    empty = _topic("empty", leaders=())
    no_leader = _topic("no-leader", leaders=(1, -1))
    failing = _topic("failing")
    failing["partitions"][0]["error_code"] = 5  # LEADER_NOT_AVAILABLE
    described = [_topic("ok"), unknown, empty, no_leader, failing]
    assert leaderless(described) == ["unknown", "empty", "no-leader", "failing"]
