"""Hostile Kafka records for the runtime property test (tests/integration/
test_runtime_properties.py): any key, value (arbitrary bytes or the order.submitted values of
tests/support/hostile_orders.py) and headers, sometimes one part grown large, a few to a
partition (a `Case`); EXPLICIT, the examples that always run first; and `publish_unreadable`,
for a record the Kafka client cannot read back.
"""

import asyncio
import itertools
import json
import sys
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import strategies as st

from contracts.topics import DLQ_HEADER_PREFIX
from infra.settings import PROJECT_ROOT
from tests.support.hostile_orders import PH_ORDER, TEMPLATE, accepted, huge_number, near_valid
from workers.runtime.dead_letters import MAX_DLQ_MESSAGE_BYTES, TRUNCATED_HEADER

# One test record (key + value + headers) stays below what the broker takes (~1 MB).
MAX_RECORD = 1_040_000
# Above this a record goes through the producer allowed to send up to the broker's limit.
BIG_RECORD = 900_000
FILLER = bytes(range(256))
UNREADABLE = "unreadable"  # a header name that is not UTF-8: the client cannot read it


arbitrary_bytes = st.one_of(
    st.none(),  # a tombstone
    st.just(b""),
    st.binary(max_size=300),
    st.sampled_from(
        [
            b"\x00",
            b"\xff\xfe",
            b"{}",
            b"[]",
            b"null",
            b"\xef\xbb\xbf{}",
            b'{"event_type": "order.submitted"}',
            b'{"event_type": "order.submitted", "x": 1}',
        ]
    ),
)
header_keys = st.one_of(
    st.text(max_size=16),  # any Unicode the client can write (not lone surrogates)
    st.sampled_from(
        [
            "",
            "\x00",
            "trace\x00id",
            "ключ",
            "🔑 key",
            "payflow-replay-of",
            f"{DLQ_HEADER_PREFIX}reason",
            f"{DLQ_HEADER_PREFIX}source-offset",
            TRUNCATED_HEADER,
        ]
    ),
)
header_list = st.lists(
    st.tuples(header_keys, st.one_of(st.none(), st.binary(max_size=48))), max_size=5
)


@dataclass(frozen=True, repr=False)
class Hostile:
    """One record to send; `kind` says how it was made, for the test's counts and reports."""

    kind: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]

    def size(self) -> int:
        heads = sum(len(k.encode()) + len(v or b"") for k, v in self.headers)
        return len(self.key or b"") + len(self.value or b"") + heads

    def __repr__(self) -> str:  # a 1 MB value is not printed in a failure report
        return (
            f"Hostile({self.kind}, key={_short(self.key)}, value={_short(self.value)}, "
            f"headers=[{', '.join(f'({k!r}, {_short(v)})' for k, v in self.headers)}])"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints it
        printer.text(repr(self))


def _short(b: bytes | None) -> str:
    if b is None or len(b) <= 40:
        return repr(b)
    return f"{b[:40]!r}...({len(b)} bytes)"


@dataclass(frozen=True)
class Case:
    """One example: hostile records sent in order to one partition."""

    partition: int
    messages: tuple[Hostile, ...]


@st.composite
def hostile(draw: st.DrawFn) -> Hostile:
    kind = draw(st.sampled_from(["bytes"] * 3 + ["near_valid"] * 5 + ["accepted"]))
    made = {
        "bytes": arbitrary_bytes.map(lambda v: ("bytes", v)),
        "near_valid": near_valid(),
        "accepted": accepted(),
    }[kind]
    key, (label, value) = draw(st.one_of(st.none(), st.binary(max_size=40))), draw(made)
    if key is None and value is None:  # the Python client sends neither (Kafka would)
        key = b""
    return Hostile(label, key, value, tuple(draw(header_list)))


def grown(m: Hostile, what: str, size: int) -> Hostile:
    """`m` with one part made large: a value near the broker's limit, a header or key far
    past what a dead-letter copy keeps of them."""
    size = max(0, min(size, MAX_RECORD - m.size()))
    pad = (FILLER * (size // len(FILLER) + 1))[:size]
    if what == "value":
        value = m.value or b""
        if value[:1] in (b"{", b"["):  # JSON may end in any amount of whitespace
            return Hostile(m.kind + "+spaces", m.key, value + b" " * size, m.headers)
        return Hostile(m.kind + "+filler", m.key, value + pad, m.headers)
    if what == "header":
        return Hostile(m.kind + "+big-header", m.key, m.value, (*m.headers, ("big", pad)))
    return Hostile(m.kind + "+big-key", pad, m.value, m.headers)


@st.composite
def cases(draw: st.DrawFn, partitions: int) -> Case:
    messages = draw(st.lists(hostile(), min_size=1, max_size=6))
    # At most one large message per example keeps the test quick on a small machine.
    grow = draw(st.sampled_from([None, None, None, "value", "value", "header", "key"]))
    if grow is not None:
        at = draw(st.integers(0, len(messages) - 1))
        lo = MAX_DLQ_MESSAGE_BYTES - 10_000 if grow == "value" else 60_000
        size = draw(st.integers(lo, MAX_RECORD))
        messages[at] = grown(messages[at], grow, size)
    return Case(draw(st.integers(0, partitions - 1)), tuple(messages))


# Whatever is generated, these run first: each branch of the dead-letter copy (cut value,
# dropped header, cut key, replaced dlq headers) and the inputs that once stalled the stage.
EXPLICIT = [
    Case(
        0,
        (
            Hostile("tombstone", b"", None, ()),
            Hostile(UNREADABLE, None, None, ()),  # read past by position, one at a time
            Hostile("empty", None, b"", (("", None), ("\x00", b""))),
            Hostile("huge-number", b"k", huge_number(), (("trace\x00id", b"a\x00b"),)),
            Hostile("deep", b"k", b"[" * 200_000 + b"]" * 200_000, (("x", b"\xff"),)),
        ),
    ),
    Case(
        1,
        (
            Hostile("cut-value", b"\xff" * 8, (FILLER * 4_100)[: MAX_RECORD - 100], ()),
            Hostile(
                "dlq-headers",
                b"\x00" * 5_000,
                b"not json\x00",
                (
                    (f"{DLQ_HEADER_PREFIX}reason", b"forged"),
                    ("big", FILLER * 300),
                    ("after-big", b"1"),
                ),
            ),
            Hostile(
                "nul-idempotency-key",
                None,
                json.dumps({**TEMPLATE, "idempotency_key": PH_ORDER + "\x00"}).encode(),
                (),
            ),
        ),
    ),
]


async def publish_unreadable(
    producer: AIOKafkaProducer, bootstrap: str, topic: str, partition: int
) -> None:
    """A record whose header name is not UTF-8 (see tests/support/raw_records.py), on
    `partition`: the helper lets the client choose the partition, so the key is chosen."""
    partitions = sorted(await producer.partitions_for(topic))
    key = next(
        k
        for k in (f"unreadable-{i}" for i in itertools.count())
        if DefaultPartitioner()(k.encode(), partitions, partitions) == partition
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.raw_records",
        bootstrap,
        topic,
        key,
        "unreadable",
        cwd=PROJECT_ROOT,
    )
    assert await proc.wait() == 0
