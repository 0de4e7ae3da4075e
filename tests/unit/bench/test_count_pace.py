"""How often the bench counts final orders: often near the end, rarely while most remain."""

import pytest

from workers.bench.phases import COUNT_EVERY_S, MAX_COUNT_EVERY_S, _until_next_count


def test_the_first_count_and_a_stall_come_again_soon() -> None:
    assert _until_next_count(None, 1.0, 0, 10_000) == COUNT_EVERY_S
    assert _until_next_count((1.0, 500), 2.0, 500, 10_000) == COUNT_EVERY_S


def test_the_pace_of_the_last_two_counts_sets_the_wait() -> None:
    # 500 orders a second, 5,000 left: ten seconds more, counted again in five.
    assert _until_next_count((1.0, 4_500), 2.0, 5_000, 10_000) == MAX_COUNT_EVERY_S
    # 1,000 left: counted again when three fifths of the two seconds have passed.
    assert _until_next_count((1.0, 8_500), 2.0, 9_000, 10_000) == pytest.approx(1.2)
    # a few left: no sooner than COUNT_EVERY_S.
    assert _until_next_count((1.0, 9_490), 2.0, 9_990, 10_000) == COUNT_EVERY_S
