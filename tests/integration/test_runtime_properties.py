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
"""

import asyncio
import copy
import itertools
import json
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from contracts.codec import ContractError, decode, encode
from contracts.topics import DLQ_HEADER_FIELDS, DLQ_HEADER_PREFIX, ORDERS_SUBMITTED, namespace
from infra.settings import PROJECT_ROOT, Settings
from tests.support.dlq import DlqReader, committed_offset, header_values
from tests.support.pipeline import eventually, order_state, order_submitted, seed_catalogue
from workers.order_build.step import OrderBuild
from workers.runtime.consumer import StageRunner
from workers.runtime.dead_letters import MAX_DLQ_MESSAGE_BYTES, TRUNCATED_HEADER
from workers.runtime.health import Health

pytestmark = pytest.mark.integration

TOPIC = ORDERS_SUBMITTED.name
STAGE = OrderBuild.name
MAX_EXAMPLES = 100
# One test record (key + value + headers) stays below what the broker takes (~1 MB).
MAX_RECORD = 1_040_000
# Above this a record goes through the producer allowed to send up to the broker's limit.
BIG_RECORD = 900_000
FILLER = bytes(range(256))
UNREADABLE = "unreadable"  # a header name that is not UTF-8: the client cannot read it

# The near-valid messages start from a valid order.submitted. Its ids are placeholders that
# each send replaces with fresh ones of the same length, so an accepted message is new.
PH_ORDER = "ph-order-000000000000"
PH_EVENT = "00000000-0000-4000-8000-00000000beef"
RAW = "__raw_json_token__"  # where a token json.dumps cannot write is spliced in


def _template() -> dict[str, Any]:
    doc = order_submitted(PH_ORDER, "buyer-prop", {"sku-cap": 1}).model_dump(mode="json")
    doc.update(event_id=PH_EVENT, occurred_at="2024-05-01T12:00:00Z")
    return doc


TEMPLATE = _template()
Path = tuple[str | int, ...]
PATHS: tuple[Path, ...] = (
    ("event_id",),
    ("event_type",),
    ("schema_version",),
    ("occurred_at",),
    ("correlation_id",),
    ("causation_id",),
    ("idempotency_key",),
    ("payload",),
    ("payload", "order_id"),
    ("payload", "buyer_id"),
    ("payload", "currency"),
    ("payload", "items"),
    ("payload", "items", 0),
    ("payload", "items", 0, "sku_id"),
    ("payload", "items", 0, "quantity"),
    ("payload", "coupon_codes"),
    ("payload", "payment_preference"),
)
OBJECT_PATHS: tuple[Path, ...] = ((), ("payload",), ("payload", "items", 0))


def _at(doc: Any, path: Path) -> Any:
    for p in path:
        doc = doc[p]
    return doc


STRING_PATHS = tuple(p for p in PATHS if isinstance(_at(TEMPLATE, p), str))


# --- strategies -------------------------------------------------------------------------

_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # NaN and infinities too: json.dumps writes them, strict JSON refuses them
    st.text(max_size=12),
    st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2),
    st.sampled_from(["order.submitted", "order.built", PH_ORDER, "\x00", "1", "EUR", "sku-cap"]),
)
json_values = st.recursive(
    _leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _nested(shape: tuple[str, int]) -> str:
    opener, depth = shape
    if opener == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "0" + "}" * depth


raw_tokens = st.one_of(
    # Past Python's 4,300-digit int <-> str limit (CVE-2020-10735).
    st.integers(4_301, 20_000).map(lambda n: "9" * n),
    st.integers(4_301, 20_000).map(lambda n: "-1" + "0" * n),
    st.integers(4_301, 8_000).map(lambda n: "1" + "0" * n + ".5"),
    st.tuples(st.sampled_from(["[", "{"]), st.sampled_from([50, 300, 2_000, 60_000])).map(_nested),
    st.sampled_from(
        [
            "NaN",
            "-Infinity",
            "1e999",
            "1.0",
            "1.5",
            "-0",
            "01",
            "1E2",
            "tru",
            "",
            "[",
            "}",
            '"\x00"',
            '"a\x00b"',
            '"\\u0000"',
            '"\\ud800"',
            '"\\udfff\\ud800"',
            '"\t"',
        ]
    ),
)
event_types = st.one_of(
    st.sampled_from(
        [
            "order.built",
            "order.rejected",
            "Order.Submitted",
            "order.submitted ",
            "",
            "order.submitted\x00",
            "order.submitted.v2",
            "ORDER.SUBMITTED",
        ]
    ),
    st.text(max_size=20),
    json_values,
)
schema_versions = st.one_of(
    st.sampled_from([0, 2, -1, 9, "1", 1.0, True, None, 2**63, [1], {"v": 1}, 1.5]),
    st.integers().filter(lambda v: v != 1),
)
bad_quantities = st.one_of(
    st.sampled_from([1.0, 1.5, 0.5, 1e308, -1.0, float("nan"), float("inf"), 0, -1, 10_001]),
    st.floats(),
)
money_floats = st.one_of(
    st.floats(), st.sampled_from([12.5, 0.1, 1e-9, 1e30, 19.99, float("nan")])
).map(lambda amount: {"amount": amount, "currency": "EUR"})


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid order.submitted with one thing wrong, written one way or another."""
    doc: Any = copy.deepcopy(TEMPLATE)
    token: str | None = None
    ops = "set set raw raw delete extra nul event_type schema_version quantity money not_object"
    op = draw(st.sampled_from(ops.split()))
    if op in ("set", "raw", "delete"):
        path = draw(st.sampled_from(PATHS))
        parent, last = _at(doc, path[:-1]), path[-1]
        if op == "set":
            parent[last] = draw(json_values)
        elif op == "raw":
            parent[last], token = RAW, draw(raw_tokens)
        else:
            del parent[last]
    elif op == "extra":
        where = _at(doc, draw(st.sampled_from(OBJECT_PATHS)))
        where[draw(st.text(min_size=1, max_size=10))] = draw(json_values)
    elif op == "nul":
        path = draw(st.sampled_from(STRING_PATHS))
        parent, last = _at(doc, path[:-1]), path[-1]
        text = parent[last]
        at = draw(st.integers(0, len(text)))
        parent[last] = text[:at] + "\x00" + text[at:]
    elif op == "event_type":
        doc["event_type"] = draw(event_types)
    elif op == "schema_version":
        doc["schema_version"] = draw(schema_versions)
    elif op == "quantity":
        doc["payload"]["items"][0]["quantity"] = draw(bad_quantities)
    elif op == "money":
        where = draw(st.sampled_from([doc["payload"], doc["payload"]["items"][0]]))
        where[draw(st.sampled_from(["total", "unit_price", "amount"]))] = draw(money_floats)
    else:
        doc = draw(json_values.filter(lambda v: not isinstance(v, dict)))
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()))
    if token is not None:
        text = text.replace(json.dumps(RAW), token, 1)
    form = draw(
        st.sampled_from(["utf-8"] * 10 + ["utf-16", "utf-32", "bom", "cut", "trailing", "nul"])
    )
    label = f"near_valid/{op}/{form}"
    if form in ("utf-16", "utf-32"):
        return label, text.encode(form, "surrogatepass")
    raw = text.encode("utf-8", "surrogatepass")  # a lone surrogate is invalid UTF-8 here
    if form == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif form == "cut":
        raw = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
    elif form == "trailing":
        raw += draw(st.sampled_from([b"x", b"}", b"\x00", b" {}", b"\n\n1"]))
    elif form == "nul":
        raw += b"\x00"
    return label, raw


@st.composite
def accepted(draw: st.DrawFn) -> tuple[str, bytes]:
    """Orders the contract accepts but that may still trouble the stage."""
    doc: Any = copy.deepcopy(TEMPLATE)
    variant = draw(st.sampled_from(["nul_key", "unknown_sku", "out_of_stock", "as_is"]))
    line = doc["payload"]["items"][0]
    if variant == "nul_key":  # the contract allows any text, Postgres text refuses NUL
        doc["idempotency_key"] = PH_ORDER + "\x00" + draw(st.text(max_size=10))
    elif variant == "unknown_sku":
        line["sku_id"] = "sku-none-" + draw(st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True))
    elif variant == "out_of_stock":
        line.update(sku_id="sku-rare", quantity=10_000)
    return f"accepted/{variant}", json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


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


def _grow(m: Hostile, what: str, size: int) -> Hostile:
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
        messages[at] = _grow(messages[at], grow, size)
    return Case(draw(st.integers(0, partitions - 1)), tuple(messages))


def _huge_number() -> bytes:
    doc = json.dumps({**TEMPLATE, "schema_version": RAW})
    return doc.replace(json.dumps(RAW), "9" * 4_301).encode()


# Whatever is generated, these run first: each branch of the dead-letter copy (cut value,
# dropped header, cut key, replaced dlq headers) and the inputs that once stalled the stage.
EXPLICIT = [
    Case(
        0,
        (
            Hostile("tombstone", b"", None, ()),
            Hostile(UNREADABLE, None, None, ()),  # read past by position, one at a time
            Hostile("empty", None, b"", (("", None), ("\x00", b""))),
            Hostile("huge-number", b"k", _huge_number(), (("trace\x00id", b"a\x00b"),)),
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


# --- running ------------------------------------------------------------------------------


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


def _fresh(value: bytes | None) -> bytes | None:
    """The placeholders replaced by new ids, so an accepted order is a new one."""
    if value is None:
        return None
    order_id = f"pt-{uuid.uuid4().hex[:18]}"
    return value.replace(PH_ORDER.encode(), order_id.encode()).replace(
        PH_EVENT.encode(), str(uuid.uuid4()).encode()
    )


def _refusal(value: bytes | None) -> ContractError | None:
    try:
        decode(TOPIC, value)
    except ContractError as exc:
        return exc
    return None


async def _publish_unreadable(run: Run, partition: int) -> None:
    """A record whose header name is not UTF-8 (see tests/support/raw_records.py), on
    `partition`: the helper lets the client choose the partition, so the key is chosen."""
    partitions = sorted(await run.producer.partitions_for(TOPIC))
    key = next(
        k
        for k in (f"unreadable-{i}" for i in itertools.count())
        if DefaultPartitioner()(k.encode(), partitions, partitions) == partition
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.raw_records",
        run.services.kafka_bootstrap,
        TOPIC,
        key,
        "unreadable",
        cwd=PROJECT_ROOT,
    )
    assert await proc.wait() == 0


def _after_unreadable(sent: list[Sent], next_offset: int) -> None:
    if sent and sent[-1].unreadable:
        sent[-1].offset = next_offset - 1


async def _drive(run: Run, case: Case) -> None:
    run.examples += 1
    sent: list[Sent] = []
    for m in case.messages:
        run.kinds[m.kind] += 1
        if m.kind == UNREADABLE:
            await _publish_unreadable(run, case.partition)
            # Its offset is one before the next send's: only this test writes here.
            sent.append(Sent(-1, None, None, (), None, repr(m), unreadable=True))
            continue
        value = _fresh(m.value)
        via = run.big if m.size() > BIG_RECORD else run.producer
        md = await via.send_and_wait(
            TOPIC, value, key=m.key, headers=list(m.headers), partition=case.partition
        )
        _after_unreadable(sent, md.offset)
        sent.append(Sent(md.offset, m.key, value, m.headers, _refusal(value), repr(m)))
    good = order_submitted(f"prop-{uuid.uuid4().hex[:12]}", "buyer-prop", {"sku-tee": 1})
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

    offsets = [s.offset for s in sent] + [good_at]
    rows = {
        r["source_offset"]: r
        for r in await run.pool.fetch(
            """SELECT * FROM dead_letters WHERE consumer = $1 AND source_topic = $2
               AND source_partition = $3 AND source_offset = ANY($4::bigint[])""",
            STAGE,
            TOPIC,
            case.partition,
            offsets,
        )
    }
    inboxed = {
        r["kafka_offset"]
        for r in await run.pool.fetch(
            """SELECT kafka_offset FROM inbox WHERE consumer = $1 AND topic = $2
               AND kafka_partition = $3 AND kafka_offset = ANY($4::bigint[])""",
            STAGE,
            TOPIC,
            case.partition,
            offsets,
        )
    }
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
            _check_row(rows[s.offset], s, where)
            parked.append(s)
            run.reasons[rows[s.offset]["reason_code"]] += 1
        else:
            run.processed += 1
    run.messages += len(sent)

    await run.dlq.wait_for({(TOPIC, case.partition, s.offset) for s in parked})
    for s in parked:
        row = rows[s.offset]
        for copy_ in run.dlq.copies[(TOPIC, case.partition, s.offset)]:
            _check_copy(run, copy_, row, s, f"copy of {s.what} at {case.partition}/{s.offset}")


def _check_row(row: Any, s: Sent, where: str) -> None:
    """The table keeps the original bytes exactly."""
    assert row["reason_code"], where
    assert row["detail"], where
    assert row["attempts"] >= 1, where
    assert row["message_key"] == s.key, where
    assert row["message_value"] == s.value, where
    assert list(row["header_keys"]) == [k.encode() for k, _ in s.headers], where
    assert list(row["header_values"]) == [v for _, v in s.headers], where


def _check_copy(run: Run, copy_: Any, row: Any, s: Sent, where: str) -> None:
    heads = copy_.headers
    for name in DLQ_HEADER_FIELDS:  # ours, each once, replacing any the input carried
        assert len(header_values(copy_, DLQ_HEADER_PREFIX + name)) == 1, (name, where)
    ours = {k: v for k, v in heads if k.startswith(DLQ_HEADER_PREFIX)}
    assert ours[DLQ_HEADER_PREFIX + "reason"] == row["reason_code"].encode(), where
    assert ours[DLQ_HEADER_PREFIX + "stage"] == STAGE.encode(), where
    assert int(ours[DLQ_HEADER_PREFIX + "attempts"]) >= 1, where
    assert ours[DLQ_HEADER_PREFIX + "detail"], where
    datetime.fromisoformat(ours[DLQ_HEADER_PREFIX + "failed-at"].decode())

    # The original headers, in order: all of them, or those that fit and a note saying so.
    original = [(k, v) for k, v in s.headers if not k.startswith(DLQ_HEADER_PREFIX)]
    kept = [(k, v) for k, v in heads if not k.startswith(DLQ_HEADER_PREFIX)]
    assert kept == original[: len(kept)], where
    if len(kept) < len(original):
        assert header_values(copy_, DLQ_HEADER_PREFIX + "headers-truncated"), where
        run.cut_headers += 1

    if s.key is None:
        assert copy_.key is None, where
    else:
        assert copy_.key == s.key[: len(copy_.key)], where

    cut = header_values(copy_, TRUNCATED_HEADER)
    if s.value is None:  # empty only where the client needs one of key or value
        assert copy_.value is None or (copy_.value == b"" and s.key is None), where
        assert not cut, where
    elif cut:
        assert cut == [str(len(s.value)).encode()], where
        assert len(copy_.value) < len(s.value) and s.value.startswith(copy_.value), where
        run.cut_values += 1
    else:
        assert copy_.value == s.value, where
    if s.value is not None and len(s.value) > MAX_DLQ_MESSAGE_BYTES:
        assert cut, f"a value too large for the topic is copied whole: {where}"


@pytest.fixture
async def big_producer(services: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer allowed to send what the broker accepts (1 MB), above our 1 MiB request."""
    p = AIOKafkaProducer(bootstrap_servers=services.kafka_bootstrap, max_request_size=1_100_000)
    await p.start()
    yield p
    await p.stop()


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
