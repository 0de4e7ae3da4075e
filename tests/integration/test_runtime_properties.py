"""A property of the delivery runtime, driven by hypothesis through the real stage against the
real Kafka and Postgres: whatever bytes, headers, keys and sizes come before it on a
partition, a valid order sent after them is built, and each of them is accounted for.

Every example publishes a few hostile messages and then one valid order to one partition (an
explicit partition, so keys can be anything, None included, and the order is kept), to a
single order build StageRunner that runs for the whole test. Then:

- the valid order is built and the group's committed offset is past it;
- a message the contract refuses (`contracts.codec.decode` raises) is a row in
  `dead_letters` with the refusal's reason, its key, value and headers stored byte for byte;
- a message the contract accepts is either processed (an `inbox` row at its position) or
  dead-lettered by the stage, never both and never neither;
- every dead letter has a copy on `<topic>.dlq`, found by its source-position headers, with
  each `payflow-dlq-*` header once, the original headers (those that fit) in order, and the
  value whole, or cut with `payflow-dlq-truncated` giving the original size when it is too
  large for the topic;
- the stage never reported a failing batch.

Two explicit examples come first: every branch of the dead-letter copy (a value cut, a
header left out, a key cut, forged `payflow-dlq-*` headers replaced) and the inputs that
once stalled the stage, including a record the Kafka client cannot read (a header name that
is not UTF-8, written by tests/support/raw_records.py), which is dead-lettered by position.
Then MAX_EXAMPLES generated ones, derandomized (the same on every run) and not shrunk: each
runs the real stage, and a failure names the example and the offsets involved.

The messages and their strategies are in tests/support/hostile_messages.py and
tests/support/hostile_orders.py; the checks of a dead letter's row and copy are in
tests/support/dlq.py. This file sends each example and accounts for every message.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from hypothesis import HealthCheck, Phase, example, given, settings

from contracts.codec import ContractError, decode, encode
from contracts.topics import ORDERS_SUBMITTED, namespace
from infra.settings import Settings
from tests.support.dlq import (
    DlqReader,
    check_copy,
    check_row,
    committed_offset,
    dead_letter_rows,
    inboxed_offsets,
)
from tests.support.hostile_messages import (
    BIG_RECORD,
    EXPLICIT,
    UNREADABLE,
    Case,
    cases,
    publish_unreadable,
)
from tests.support.hostile_orders import fresh
from tests.support.pipeline import eventually, order_state, order_submitted, seed_catalogue
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.health import Health

pytestmark = pytest.mark.integration

TOPIC = ORDERS_SUBMITTED.name
STAGE = OrderBuild.name
MAX_EXAMPLES = 100


@dataclass
class Sent:
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    refusal: ContractError | None  # what the contract says of the value; None: accepted
    what: str
    unreadable: bool = False  # its bytes cannot be had from the client: known by position


@dataclass
class Run:
    """What the examples share: one stage runner, the clients that watch it, and counts."""

    services: Settings
    pool: asyncpg.Pool
    producer: AIOKafkaProducer
    big: AIOKafkaProducer
    admin: AIOKafkaAdminClient
    dlq: DlqReader
    health: Health
    runner: "asyncio.Task[None]"
    examples: int = 0
    messages: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    processed: int = 0
    cut_values: int = 0
    cut_headers: int = 0


def _refusal(value: bytes | None) -> ContractError | None:
    try:
        decode(TOPIC, value)
    except ContractError as exc:
        return exc
    return None


def _after_unreadable(sent: list[Sent], next_offset: int) -> None:
    if sent and sent[-1].unreadable:
        sent[-1].offset = next_offset - 1


async def _drive(run: Run, case: Case) -> None:
    run.examples += 1
    sent: list[Sent] = []
    for m in case.messages:
        run.kinds[m.kind] += 1
        if m.kind == UNREADABLE:
            await publish_unreadable(
                run.producer, run.services.kafka_bootstrap, TOPIC, case.partition
            )
            # Its offset is one before the next send's: only this test writes here.
            sent.append(Sent(-1, None, None, (), None, repr(m), unreadable=True))
            continue
        value = fresh(m.value)
        via = run.big if m.size() > BIG_RECORD else run.producer
        md = await via.send_and_wait(
            TOPIC, value, key=m.key, headers=list(m.headers), partition=case.partition
        )
        _after_unreadable(sent, md.offset)
        sent.append(Sent(md.offset, m.key, value, m.headers, _refusal(value), repr(m)))
    good = order_submitted(
        f"prop-{uuid.uuid4().hex[:12]}", "buyer-prop", {"sku-tee": 1}, "wallet_only"
    )
    good_md = await run.producer.send_and_wait(
        TOPIC, encode(good), key=good.correlation_id.encode(), partition=case.partition
    )
    good_at: int = good_md.offset
    _after_unreadable(sent, good_at)
    tp = TopicPartition(TOPIC, case.partition)
    group = f"{namespace()}.{STAGE}"

    async def through() -> bool:
        if run.runner.done():
            raise AssertionError(f"the stage stopped: {run.runner.exception()!r}")
        if await order_state(run.pool, good.correlation_id) != "built":
            return False
        offset = await committed_offset(run.admin, group, tp)
        return offset > good_at

    await eventually(through, 90, f"order {good.correlation_id} built after {case}")
    assert run.health.failing_batches == 0, run.health.error
    await _account(run, case, sent, good_at)


async def _account(run: Run, case: Case, sent: list[Sent], good_at: int) -> None:
    """Each message sent before the valid order is dead-lettered or processed, as it should."""
    offsets = [s.offset for s in sent] + [good_at]
    rows = await dead_letter_rows(run.pool, STAGE, TOPIC, case.partition, offsets)
    inboxed = await inboxed_offsets(run.pool, STAGE, TOPIC, case.partition, offsets)
    assert good_at in inboxed and good_at not in rows
    parked: list[Sent] = []
    for s in sent:
        where = f"{s.what} at {case.partition}/{s.offset}"
        if s.unreadable:
            assert s.offset in rows, f"not dead-lettered: {where}"
            assert rows[s.offset]["reason_code"] == "unreadable_record", where
        elif s.refusal is not None:
            assert s.offset in rows, f"refused ({s.refusal.code}) but not dead-lettered: {where}"
            assert rows[s.offset]["reason_code"] == s.refusal.code, where
            assert s.offset not in inboxed, where
        else:
            assert (s.offset in rows) != (s.offset in inboxed), f"accepted, {where}"
        if s.offset in rows:
            check_row(rows[s.offset], s, where)
            parked.append(s)
            run.reasons[rows[s.offset]["reason_code"]] += 1
        else:
            run.processed += 1
    run.messages += len(sent)

    await run.dlq.wait_for({(TOPIC, case.partition, s.offset) for s in parked})
    for s in parked:
        row = rows[s.offset]
        for copy_ in run.dlq.copies[(TOPIC, case.partition, s.offset)]:
            where = f"copy of {s.what} at {case.partition}/{s.offset}"
            cuts = check_copy(copy_, row, s, STAGE, where)
            run.cut_headers += cuts.headers
            run.cut_values += cuts.value


@pytest.fixture
async def big_producer(services: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer allowed to send what the broker accepts (1 MB), above our 1 MiB request."""
    p = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap, max_request_size=1_100_000)
    await p.start()
    yield p
    await p.stop()


# Hypothesis generates each example in its own thread while the stage keeps running on the
# test's loop, and aiokafka shuffles partitions with the global `random` on every fetch: the
# check that a strategy used `random` sees those draws (the strategies use none).
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
async def test_no_input_stops_the_stage_and_every_bad_one_is_dead_lettered(
    services: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    big_producer: AIOKafkaProducer,
) -> None:
    await seed_catalogue(pool)
    admin = AIOKafkaAdminClient(bootstrap_servers=services.kafka_bootstrap)
    await admin.start()
    dlq = DlqReader(services, ORDERS_SUBMITTED.dlq)
    await dlq.start()
    health = Health(STAGE)
    stop = asyncio.Event()
    runner = StageRunner(OrderBuild(), services, pool, producer, health)
    task = asyncio.create_task(runner.run(stop))
    run = Run(services, pool, producer, big_producer, admin, dlq, health, task)
    loop = asyncio.get_running_loop()
    try:
        partitions = len(await producer.partitions_for(TOPIC))
        await asyncio.to_thread(_property(run, loop, partitions))
    finally:
        stop.set()
        await task
        await dlq.stop()
        await admin.close()

    assert run.examples >= MAX_EXAMPLES + len(EXPLICIT), run.examples
    assert health.failing_batches == 0, health.error
    # The explicit examples make sure the copy's cut branches ran.
    assert run.cut_values >= 1 and run.cut_headers >= 1, (run.cut_values, run.cut_headers)
    print(
        f"\n{run.examples} examples, {run.messages} hostile messages: "
        f"{sum(run.reasons.values())} dead-lettered {dict(run.reasons)}, "
        f"{run.processed} accepted and processed; {run.cut_values} cut values, "
        f"{run.cut_headers} copies with headers left out\n{sorted(run.kinds.items())}"
    )


def _property(run: Run, loop: asyncio.AbstractEventLoop, partitions: int) -> Callable[[], None]:
    """hypothesis is synchronous: it runs in a thread, each example on the test's loop."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(case=cases(partitions))
    @example(case=EXPLICIT[0])
    @example(case=EXPLICIT[1])
    def each(case: Case) -> None:
        asyncio.run_coroutine_threadsafe(_drive(run, case), loop).result(timeout=300)

    return each
