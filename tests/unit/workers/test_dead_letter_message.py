"""The dead-letter message: `<source>.dlq`, the original key and value, and why headers."""

from dataclasses import replace
from datetime import UTC, datetime

from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY

from contracts.codec import ContractError
from workers.runtime import park
from workers.runtime.dead_letters import (
    HEADER_PREFIX,
    MAX_DLQ_MESSAGE_BYTES,
    MAX_ORIGINAL_HEADER_BYTES,
    REPLAY_HEADER,
    TRUNCATED_HEADER,
    DeadLetter,
)
from workers.runtime.outbox import Message

Headers = tuple[tuple[str, bytes | None], ...]

FAILED_AT = datetime(2025, 6, 1, 12, 30, 15, tzinfo=UTC)

DL = DeadLetter(
    consumer="order_build",
    topic="payflow.orders.submitted",
    partition=3,
    offset=1_234,
    key=b"o-1",
    value=b'{"event_type": "order.submitted"}',
    headers=(("traceparent", b"00-abc-01"), ("content-type", b"application/json")),
    reason_code="invalid_event",
    detail="order.submitted: payload.items.0.quantity: Input should be greater than 0",
    attempts=4,
    failed_at=FAILED_AT,
)

DLQ_HEADERS = {
    "payflow-dlq-reason": b"invalid_event",
    "payflow-dlq-detail": (
        b"order.submitted: payload.items.0.quantity: Input should be greater than 0"
    ),
    "payflow-dlq-source-topic": b"payflow.orders.submitted",
    "payflow-dlq-source-partition": b"3",
    "payflow-dlq-source-offset": b"1234",
    "payflow-dlq-failed-at": b"2025-06-01T12:30:15+00:00",
    "payflow-dlq-attempts": b"4",
    "payflow-dlq-stage": b"order_build",
}


def _dlq_headers(headers: Headers) -> dict[str, bytes | None]:
    return {k: v for k, v in headers if k.startswith(HEADER_PREFIX)}


def _total_size(message: Message) -> int:
    """Key, value and headers (names and values): what counts against the broker's limit."""
    headers = sum(len(k.encode()) + len(v or b"") for k, v in message.headers)
    return len(message.key or b"") + len(message.value or b"") + headers


def test_dead_letter_goes_to_the_source_topics_dlq() -> None:
    assert DL.message().topic == "payflow.orders.submitted.dlq"


def test_dead_letter_keeps_the_original_key_and_value() -> None:
    message = DL.message()
    assert message.key == b"o-1"
    assert message.value == b'{"event_type": "order.submitted"}'


def test_dead_letter_headers_say_why_where_from_when_and_how_often() -> None:
    headers = DL.message().headers
    assert _dlq_headers(headers) == DLQ_HEADERS
    assert all(isinstance(v, bytes) for _, v in headers)


def test_each_dlq_header_appears_once() -> None:
    names = [k for k, _ in DL.message().headers]
    assert len(names) == len(set(names))


def test_other_original_headers_are_kept_in_order_before_the_dlq_headers() -> None:
    headers = DL.message().headers
    assert headers[:2] == (("traceparent", b"00-abc-01"), ("content-type", b"application/json"))
    assert all(k.startswith(HEADER_PREFIX) for k, _ in headers[2:])


def test_earlier_dlq_headers_are_replaced_and_the_replay_header_kept() -> None:
    replayed = replace(
        DL,
        headers=(
            ("payflow-dlq-reason", b"old_reason"),
            ("payflow-dlq-attempts", b"1"),
            ("payflow-dlq-obsolete", b"x"),
            (REPLAY_HEADER, b"42"),
            ("traceparent", b"00-abc-01"),
        ),
    )
    headers = replayed.message().headers
    assert _dlq_headers(headers) == DLQ_HEADERS
    assert [h for h in headers if not h[0].startswith(HEADER_PREFIX)] == [
        (REPLAY_HEADER, b"42"),
        ("traceparent", b"00-abc-01"),
    ]


def test_missing_key_stays_missing_and_a_missing_value_too_unless_both_are() -> None:
    # A null key is copied unchanged (Kafka partitions it differently from an empty one);
    # a message needs a key or a value, so with neither the copy carries an empty value.
    assert replace(DL, key=None).message().key is None
    assert replace(DL, value=None).message().value is None
    message = replace(DL, key=None, value=None).message()
    assert (message.key, message.value) == (None, b"")


def test_long_detail_is_cut_to_2000_characters() -> None:
    headers = replace(DL, detail="x" * 5_000).message().headers
    assert _dlq_headers(headers)["payflow-dlq-detail"] == b"x" * 2_000


def test_non_ascii_detail_is_utf8_encoded() -> None:
    headers = replace(DL, detail="prix négatif: 5 € ✗").message().headers
    assert _dlq_headers(headers)["payflow-dlq-detail"] == "prix négatif: 5 € ✗".encode()


def test_failed_at_defaults_to_now_in_utc() -> None:
    before = datetime.now(UTC)
    headers = replace(DL, failed_at=None).message().headers
    after = datetime.now(UTC)
    stamp = _dlq_headers(headers)["payflow-dlq-failed-at"]
    assert stamp is not None
    failed_at = datetime.fromisoformat(stamp.decode())
    assert failed_at.utcoffset() is not None
    assert before <= failed_at <= after


def test_a_value_that_fits_is_not_cut_and_has_no_truncated_header() -> None:
    message = replace(DL, value=b"v" * 500_000).message()
    assert message.value == b"v" * 500_000
    assert TRUNCATED_HEADER not in dict(message.headers)


def test_a_value_over_the_limit_is_cut_with_its_original_size_in_a_header() -> None:
    big = b"x" * 1_040_000  # accepted by the broker (1 MB), above what the producer sends
    message = replace(DL, value=big).message()
    assert dict(message.headers)[TRUNCATED_HEADER] == b"1040000"
    assert message.value is not None
    assert 0 < len(message.value) < len(big)
    assert big.startswith(message.value)
    assert _total_size(message) < MAX_DLQ_MESSAGE_BYTES


def test_the_whole_message_stays_under_the_limit_with_a_big_key_and_big_headers() -> None:
    headers = tuple((f"h{i}", b"h" * 1_000) for i in range(200))  # 200 kB of headers
    message = replace(DL, key=b"k" * 50_000, value=b"x" * 3_000_000, headers=headers).message()
    assert dict(message.headers)[TRUNCATED_HEADER] == b"3000000"
    assert _total_size(message) < MAX_DLQ_MESSAGE_BYTES


def test_nul_bytes_in_the_detail_are_made_storable() -> None:
    # Postgres text cannot hold NUL: the detail (stored and sent) spells it out instead.
    message = replace(DL, detail="not json: a\x00b\x00").message()
    detail = _dlq_headers(message.headers)["payflow-dlq-detail"]
    assert detail == b"not json: a\\x00b\\x00"
    assert b"\x00" not in detail


def test_nul_bytes_in_original_headers_and_value_are_kept_as_they_were() -> None:
    # Kafka headers and values are bytes: only the detail, which is text, is rewritten.
    message = replace(DL, value=b"not json\x00", headers=(("trace\x00id", b"a\x00b"),)).message()
    assert message.value == b"not json\x00"
    assert message.headers[0] == ("trace\x00id", b"a\x00b")


def test_oversized_original_headers_are_cut_and_say_so() -> None:
    headers = tuple((f"h{i}", b"h" * 10_000) for i in range(20))  # 200 kB
    message = replace(DL, headers=headers).message()
    originals = [h for h in message.headers if not h[0].startswith(HEADER_PREFIX)]
    assert 0 < len(originals) < len(headers)
    assert originals == list(headers[: len(originals)])  # the first ones, in order
    assert sum(len(k) + len(v or b"") for k, v in originals) <= MAX_ORIGINAL_HEADER_BYTES
    assert _dlq_headers(message.headers)[HEADER_PREFIX + "headers-truncated"] == b"20"
    assert _dlq_headers(message.headers)["payflow-dlq-reason"] == b"invalid_event"


def test_one_huge_original_header_is_dropped_whole() -> None:
    message = replace(DL, headers=(("blob", b"b" * 500_000),)).message()
    assert [k for k, _ in message.headers if not k.startswith(HEADER_PREFIX)] == []
    assert _dlq_headers(message.headers)[HEADER_PREFIX + "headers-truncated"] == b"1"
    assert message.value == DL.value
    assert _total_size(message) < MAX_DLQ_MESSAGE_BYTES


def test_an_undecodable_record_is_counted_by_its_reason() -> None:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="payflow.orders.submitted",
        partition=0,
        offset=7,
        timestamp=0,
        timestamp_type=0,
        key=b"o-1",
        value=b"not json\x00",
        checksum=None,
        serialized_key_size=3,
        serialized_value_size=9,
        headers=(),
    )
    labels = {"stage": "dead_letter_unit", "reason": "not_json"}
    before = REGISTRY.get_sample_value("payflow_dead_lettered_total", labels) or 0.0
    dl = park.logged(
        park.from_record("dead_letter_unit", record, ContractError("not_json", "bad bytes"), 1)
    )
    assert (dl.reason_code, dl.value, dl.event_id) == ("not_json", b"not json\x00", None)
    assert REGISTRY.get_sample_value("payflow_dead_lettered_total", labels) == before + 1
