"""The commit policy of workers/runtime/offsets.py, over a stand-in for the consumer that
records what it is asked to commit (the real client and broker: tests/integration/
test_offset_commits.py)."""

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from workers.runtime.offsets import Offsets

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class Committing:
    def __init__(self, owned: set[TopicPartition], fail: bool = False) -> None:
        self.owned, self.fail = owned, fail
        self.commits: list[dict[TopicPartition, int]] = []

    def assignment(self) -> set[TopicPartition]:
        return self.owned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        if self.fail:
            raise CommitFailedError("rebalanced")
        self.commits.append(dict(offsets))


async def test_within_the_interval_offsets_wait_and_a_flush_sends_the_latest() -> None:
    offsets, consumer = Offsets("s", 60.0, 1.0), Committing({A, B})
    await offsets.done(consumer, {A: 5})
    await offsets.done(consumer, {A: 9, B: 3})
    assert consumer.commits == [] and offsets.uncommitted
    assert offsets.processed == {A: 9, B: 3}
    await offsets.flush(consumer)
    assert consumer.commits == [{A: 9, B: 3}] and not offsets.uncommitted


@pytest.mark.parametrize("interval_s", [0.0, 60.0])
async def test_no_interval_or_at_once_commits_now(interval_s: float) -> None:
    offsets, consumer = Offsets("s", interval_s, 1.0), Committing({A})
    await offsets.done(consumer, {A: 2}, at_once=interval_s > 0)
    assert consumer.commits == [{A: 2}]


async def test_a_failed_commit_is_tried_again_only_for_what_is_still_owned() -> None:
    offsets, consumer = Offsets("s", 60.0, 1.0), Committing({A}, fail=True)
    await offsets.done(consumer, {A: 4, B: 7})
    await offsets.flush(consumer)
    consumer.fail = False
    await offsets.flush(consumer)
    assert consumer.commits == [{A: 4}]  # B moved to another consumer, which re-reads it


async def test_partitions_given_up_are_forgotten() -> None:
    offsets, consumer = Offsets("s", 60.0, 1.0), Committing({A, B})
    await offsets.done(consumer, {A: 4, B: 7})
    offsets.forget([B])
    await offsets.flush(consumer)
    assert consumer.commits == [{A: 4}] and offsets.processed == {A: 4}
