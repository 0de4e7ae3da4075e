"""Dead letters: messages that cannot be processed, parked where an operator sees them.

Each one is stored in the `dead_letters` table (the operator's index, with replay state)
and published to `<source topic>.dlq` with headers that say why, where from, when and how
many attempts were made. The table keeps the original bytes exactly (key, value, header
names and values are bytea: raw input may hold NUL bytes or invalid UTF-8, which text and
jsonb refuse). The topic copy is cut to fit the producer's request limit, with a header
saying so; the full value stays in the table.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from contracts.topics import DLQ_HEADER_FIELDS, DLQ_HEADER_PREFIX, DLQ_SUFFIX
from workers.review.cases import open_case
from workers.runtime.outbox import Message

HEADER_PREFIX = DLQ_HEADER_PREFIX
REPLAY_HEADER = "payflow-replay-of"
# Present only when the topic copy was cut: the original value's size in bytes.
TRUNCATED_HEADER = DLQ_HEADER_PREFIX + "truncated"
# Below the producer's 1 MiB max_request_size and the broker's 1 MB message.max.bytes, with
# room for the record and batch overhead.
MAX_DLQ_MESSAGE_BYTES = 900_000
MAX_ORIGINAL_HEADER_BYTES = 64_000
MAX_DETAIL = 2_000
# Poison: the bytes themselves can never be processed (not a record we can read, not JSON,
# not a contract). Anything else dead-lettered (a business refusal such as an unverified
# decision, or a bug: unhandled_error) needs a human and is a review case too.
POISON = frozenset(
    {
        "unreadable_record",
        "empty_message",
        "not_json",
        "not_an_object",
        "number_too_large",
        "undecodable",
        "unknown_topic",
        "invalid_event",
    }
)


def case_subject(dead_letter_id: int) -> str:
    return f"dead_letter:{dead_letter_id}"


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    reason_code: str
    detail: str
    attempts: int
    event_id: uuid.UUID | None = None
    order_id: str | None = None
    failed_at: datetime | None = None

    def message(self) -> Message:
        failed_at = (self.failed_at or datetime.now(UTC)).isoformat()
        why = {
            "reason": self.reason_code,
            "detail": _text(self.detail)[:MAX_DETAIL],
            "source-topic": self.topic,
            "source-partition": str(self.partition),
            "source-offset": str(self.offset),
            "failed-at": failed_at,
            "attempts": str(self.attempts),
            "stage": self.consumer,
        }
        assert tuple(why) == DLQ_HEADER_FIELDS
        ours = tuple((HEADER_PREFIX + k, v.encode()) for k, v in why.items())
        # Earlier dlq headers (a replayed message that failed again) are replaced.
        kept = _fit_headers(tuple(h for h in self.headers if not h[0].startswith(HEADER_PREFIX)))
        key = self.key[:1024] if self.key else self.key
        room = MAX_DLQ_MESSAGE_BYTES - _size(key, kept + ours)
        value = self.value
        if value is not None and len(value) > room:
            ours += ((TRUNCATED_HEADER, str(len(value)).encode()),)
            value = value[: max(0, room - 64)]
        if key is None and value is None:
            # aiokafka refuses to send a record with neither (an unreadable record's copy,
            # or a null-key tombstone from another client); the key (partitioning) is kept.
            value = b""
        return Message(self.topic + DLQ_SUFFIX, key, value, kept + ours)


def _text(s: str) -> str:
    # Postgres text cannot hold NUL; nothing else needs changing.
    return s.replace("\x00", "\\x00")


def _size(key: bytes | None, headers: tuple[tuple[str, bytes | None], ...]) -> int:
    return len(key or b"") + sum(len(k.encode()) + len(v or b"") + 8 for k, v in headers)


def _fit_headers(
    headers: tuple[tuple[str, bytes | None], ...],
) -> tuple[tuple[str, bytes | None], ...]:
    """The original headers, as many as fit in their share of the message (in order)."""
    kept: list[tuple[str, bytes | None]] = []
    used = 0
    for k, v in headers:
        size = len(k.encode()) + len(v or b"")
        if used + size > MAX_ORIGINAL_HEADER_BYTES:
            kept.append((HEADER_PREFIX + "headers-truncated", str(len(headers)).encode()))
            break
        kept.append((k, v))
        used += size
    return tuple(kept)


async def store(conn: asyncpg.Connection, dl: DeadLetter) -> int:
    """Record a dead letter (once per source position; a repeat adds its attempts); one that
    is not poison opens a review case with it."""
    dead_letter_id: int = await conn.fetchval(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset,
               message_key, message_value, header_keys, header_values, event_id, order_id,
               reason_code, detail, attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
           ON CONFLICT (consumer, source_topic, source_partition, source_offset) DO UPDATE
           SET attempts = dead_letters.attempts + EXCLUDED.attempts
           RETURNING dead_letter_id""",
        _text(dl.consumer),
        _text(dl.topic),
        dl.partition,
        dl.offset,
        dl.key,
        dl.value,
        [k.encode("utf-8", "surrogateescape") for k, _ in dl.headers],
        [v for _, v in dl.headers],
        dl.event_id,
        None if dl.order_id is None else _text(dl.order_id),
        _text(dl.reason_code),
        _text(dl.detail),
        dl.attempts,
    )
    if dl.reason_code not in POISON:
        evidence = {
            "consumer": dl.consumer,
            "topic": dl.topic,
            "partition": dl.partition,
            "offset": dl.offset,
            "reason_code": dl.reason_code,
            "detail": dl.detail[:MAX_DETAIL],
            "operator_must": "fix the cause, then `payflow dlq replay` it (or explain it)",
        }
        reason = f"{dl.reason_code}: {dl.detail[:300]}"
        await open_case(
            conn,
            "dead_letter",
            case_subject(dead_letter_id),
            reason,
            evidence,
            order_id=dl.order_id,
        )
    return dead_letter_id


def stored_headers(row: Mapping[str, Any]) -> list[tuple[str, bytes | None]]:
    """A stored dead letter's original headers, as the Kafka client takes them."""
    keys = row["header_keys"] or []
    values = row["header_values"] or []
    return [
        (bytes(k).decode("utf-8", "surrogateescape"), None if v is None else bytes(v))
        for k, v in zip(keys, values, strict=True)
    ]
