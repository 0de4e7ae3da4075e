"""Per-partition first and last offsets of a batch (seek back on failure, commit after)."""

from typing import Any

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from hypothesis import given
from hypothesis import strategies as st

from workers.runtime.consumer import _first_offsets, _last_offsets


def _record(topic: str, partition: int, offset: int) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"k",
        value=b"v",
        checksum=None,
        serialized_key_size=1,
        serialized_value_size=1,
        headers=(),
    )


BATCH = [
    _record("payflow.orders.submitted", 0, 10),
    _record("payflow.orders.submitted", 1, 7),
    _record("payflow.orders.submitted", 0, 11),
    _record("payflow.payments.callbacks", 0, 3),
    _record("payflow.orders.submitted", 1, 8),
    _record("payflow.orders.submitted", 0, 12),
]


def test_first_offsets_per_partition() -> None:
    assert _first_offsets(BATCH) == {
        TopicPartition("payflow.orders.submitted", 0): 10,
        TopicPartition("payflow.orders.submitted", 1): 7,
        TopicPartition("payflow.payments.callbacks", 0): 3,
    }


def test_last_offsets_per_partition() -> None:
    assert _last_offsets(BATCH) == {
        TopicPartition("payflow.orders.submitted", 0): 12,
        TopicPartition("payflow.orders.submitted", 1): 8,
        TopicPartition("payflow.payments.callbacks", 0): 3,
    }


def test_same_partition_number_on_two_topics_is_kept_apart() -> None:
    batch = [_record("a", 0, 5), _record("b", 0, 9)]
    assert _last_offsets(batch) == {TopicPartition("a", 0): 5, TopicPartition("b", 0): 9}


def test_offsets_do_not_depend_on_record_order() -> None:
    shuffled = list(reversed(BATCH))
    assert _first_offsets(shuffled) == _first_offsets(BATCH)
    assert _last_offsets(shuffled) == _last_offsets(BATCH)


def test_empty_batch_has_no_offsets() -> None:
    assert _first_offsets([]) == {}
    assert _last_offsets([]) == {}


def test_offset_zero_is_a_real_offset() -> None:
    batch = [_record("a", 0, 0), _record("a", 0, 1)]
    assert _first_offsets(batch) == {TopicPartition("a", 0): 0}
    assert _last_offsets(batch) == {TopicPartition("a", 0): 1}


_records = st.lists(
    st.builds(
        _record,
        st.sampled_from(["a", "b"]),
        st.integers(min_value=0, max_value=3),
        st.integers(min_value=0, max_value=10**12),
    ),
    max_size=30,
)


@given(_records)
def test_first_and_last_are_the_min_and_max_offset_of_each_partition(
    records: list[ConsumerRecord[Any, Any]],
) -> None:
    first, last = _first_offsets(records), _last_offsets(records)
    partitions = {TopicPartition(r.topic, r.partition) for r in records}
    assert set(first) == set(last) == partitions
    for tp in partitions:
        offsets = [r.offset for r in records if (r.topic, r.partition) == tp]
        assert first[tp] == min(offsets)
        assert last[tp] == max(offsets)
