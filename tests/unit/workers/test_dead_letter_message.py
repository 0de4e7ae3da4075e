"""The dead-letter message: `<source>.dlq`, the original key and value, and why headers."""

from dataclasses import replace
from datetime import UTC, datetime

from workers.runtime.dead_letters import HEADER_PREFIX, REPLAY_HEADER, DeadLetter

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


def _dlq_headers(headers: tuple[tuple[str, bytes], ...]) -> dict[str, bytes]:
    return {k: v for k, v in headers if k.startswith(HEADER_PREFIX)}


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


def test_missing_key_and_value_stay_missing() -> None:
    # Copied unchanged: Kafka partitions a null key differently from an empty one.
    message = replace(DL, key=None, value=None).message()
    assert (message.key, message.value) == (None, None)


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
    failed_at = datetime.fromisoformat(_dlq_headers(headers)["payflow-dlq-failed-at"].decode())
    assert failed_at.utcoffset() is not None
    assert before <= failed_at <= after
