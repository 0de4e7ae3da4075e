"""Bisection of a batch that fails as a whole: the message that causes it is dead-lettered
alone, every other message goes through in order, and an outage dead-letters nothing."""

import pytest
from aiokafka.structs import ConsumerRecord

from workers.runtime.errors import PermanentError, TransientError
from workers.runtime.isolate import Outage, isolate
from workers.runtime.kafka import Record

TOPIC = "payflow.orders.submitted"


def _record(partition: int, offset: int) -> Record:
    return ConsumerRecord(
        topic=TOPIC,
        partition=partition,
        offset=offset,
        timestamp=1_700_000_000_000,
        timestamp_type=0,
        key=f"o-{partition}-{offset}".encode(),
        value=b"{}",
        checksum=None,
        serialized_key_size=8,
        serialized_value_size=2,
        headers=(),
    )


def _batch(*partitions: int, per_partition: int = 4) -> list[Record]:
    """Ordered as the consumer hands a batch over: by partition, then offset."""
    return [_record(p, o) for p in partitions for o in range(100, 100 + per_partition)]


def _at(rec: Record) -> tuple[int, int]:
    return (rec.partition, rec.offset)


class Fakes:
    """attempt / dead_letter_one over fake records.

    An attempt fails when its part holds a poison record (with that record's error) or
    when `everything_fails` is set; otherwise every record of the part counts as processed,
    in the order the attempt saw them."""

    def __init__(
        self,
        poison: dict[tuple[int, int], BaseException] | None = None,
        everything_fails: BaseException | None = None,
    ) -> None:
        self.poison = poison or {}
        self.everything_fails = everything_fails
        self.attempts: list[list[tuple[int, int]]] = []
        self.processed: list[tuple[int, int]] = []
        self.dead: list[tuple[tuple[int, int], BaseException]] = []

    async def attempt(self, part: list[Record]) -> object:
        self.attempts.append([_at(r) for r in part])
        if self.everything_fails is not None:
            raise self.everything_fails
        for rec in part:
            if _at(rec) in self.poison:
                raise self.poison[_at(rec)]
        self.processed.extend(_at(r) for r in part)
        return {"processed": len(part)}

    async def dead_letter_one(self, rec: Record, exc: BaseException) -> None:
        self.dead.append((_at(rec), exc))

    async def isolate(self, records: list[Record], error: BaseException) -> int:
        return await isolate(records, error, self.attempt, self.dead_letter_one)


def _others(records: list[Record], *excluded: tuple[int, int]) -> list[tuple[int, int]]:
    return [_at(r) for r in records if _at(r) not in excluded]


@pytest.mark.parametrize("size", [2, 3, 8, 13])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
async def test_one_poison_record_is_dead_lettered_alone_and_the_rest_processed_in_order(
    size: int, where: str
) -> None:
    records = _batch(0, per_partition=size)
    index = {"first": 0, "middle": size // 2, "last": size - 1}[where]
    bad = _at(records[index])
    error = ValueError("coalesced write refused")
    fakes = Fakes(poison={bad: error})

    dead = await fakes.isolate(records, error)

    assert dead == 1
    assert fakes.dead == [(bad, error)]
    assert fakes.processed == _others(records, bad)


async def test_partition_order_is_kept_across_partitions() -> None:
    records = _batch(0, 1, 2, per_partition=5)
    bad = (1, 102)
    fakes = Fakes(poison={bad: ValueError("boom")})

    assert await fakes.isolate(records, ValueError("boom")) == 1

    assert fakes.processed == _others(records, bad)
    for partition in (0, 1, 2):
        offsets = [o for p, o in fakes.processed if p == partition]
        assert offsets == sorted(offsets)


async def test_two_poison_records_are_both_dead_lettered() -> None:
    records = _batch(0, 1, per_partition=6)
    first, second = (0, 101), (1, 104)
    fakes = Fakes(
        poison={first: ValueError("first"), second: PermanentError("invalid_event", "second")}
    )

    dead = await fakes.isolate(records, ValueError("first"))

    assert dead == 2
    assert [at for at, _ in fakes.dead] == [first, second]
    assert fakes.processed == _others(records, first, second)


async def test_two_adjacent_poison_records_are_both_dead_lettered() -> None:
    records = _batch(0, per_partition=8)
    first, second = (0, 103), (0, 104)
    fakes = Fakes(poison={first: ValueError("a"), second: ValueError("b")})

    assert await fakes.isolate(records, ValueError("a")) == 2
    assert [at for at, _ in fakes.dead] == [first, second]
    assert fakes.processed == _others(records, first, second)


async def test_a_transient_error_is_an_outage_the_batch_is_kept_and_not_even_split() -> None:
    # Past its retry budget a transient error is an outage (Postgres, Kafka or the gateway
    # down), not a poison message: nothing is dead-lettered, the batch is read again.
    records = _batch(0, per_partition=4)
    error = ConnectionRefusedError("postgres refused")
    fakes = Fakes(everything_fails=error)

    with pytest.raises(Outage) as raised:
        await fakes.isolate(records, error)

    assert raised.value.cause is error
    assert fakes.dead == []
    assert fakes.attempts == []
    assert fakes.processed == []


async def test_a_transient_error_on_a_single_record_batch_is_an_outage() -> None:
    records = _batch(0, per_partition=1)
    error = TransientError("gateway unreachable, outcome unknown")
    fakes = Fakes(poison={(0, 100): error})

    with pytest.raises(Outage):
        await fakes.isolate(records, error)
    assert fakes.dead == []


async def test_a_transient_error_while_bisecting_stops_the_bisection_as_an_outage() -> None:
    # The batch failed for a poison record, then a half fails because the gateway went
    # away: the half is kept, never condemned for the outage.
    records = _batch(0, per_partition=6)
    fakes = Fakes(poison={(0, 101): TransientError("gateway unreachable")})

    with pytest.raises(Outage):
        await fakes.isolate(records, ValueError("coalesced write refused"))
    assert fakes.dead == []


async def test_permanent_error_on_a_single_record_batch_is_dead_lettered() -> None:
    records = _batch(0, per_partition=1)
    error = PermanentError("invalid_event", "payload.items: empty")
    fakes = Fakes(poison={(0, 100): error})

    dead = await fakes.isolate(records, error)

    assert dead == 1
    assert fakes.dead == [((0, 100), error)]
    assert fakes.attempts == []  # alone already: no attempt needed


async def test_a_batch_that_succeeds_on_bisection_dead_letters_nothing() -> None:
    # The batch failed once (a permanent-looking error that does not come back): every half
    # goes through, nothing is condemned.
    records = _batch(0, per_partition=5)
    fakes = Fakes()

    assert await fakes.isolate(records, ValueError("once")) == 0
    assert fakes.dead == []
    assert fakes.processed == _others(records)


async def test_dead_lettering_during_an_outage_is_an_outage_not_a_crash() -> None:
    # Parking the poison record needs Postgres and Kafka; if they go away right then, the
    # batch is kept for later like any outage rather than killing the stage.
    records = _batch(0, per_partition=4)
    bad = (0, 102)
    fakes = Fakes(poison={bad: ValueError("boom")})
    down = ConnectionRefusedError("postgres refused")

    async def park_fails(rec: Record, exc: BaseException) -> None:
        raise down

    with pytest.raises(Outage) as raised:
        await isolate(records, ValueError("boom"), fakes.attempt, park_fails)
    assert raised.value.cause is down
