"""Dead letters: messages that cannot be processed, parked where an operator sees them.

Each one is stored in the `dead_letters` table (the operator's index, with replay state)
and published to `<source topic>.dlq` with headers that say why, where from, when and how
many attempts were made.
"""

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from contracts.topics import DLQ_HEADER_FIELDS, DLQ_HEADER_PREFIX, DLQ_SUFFIX
from workers.runtime.outbox import Message

HEADER_PREFIX = DLQ_HEADER_PREFIX
REPLAY_HEADER = "payflow-replay-of"


@dataclass(frozen=True)
class DeadLetter:
    consumer: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
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
            "detail": self.detail[:2000],
            "source-topic": self.topic,
            "source-partition": str(self.partition),
            "source-offset": str(self.offset),
            "failed-at": failed_at,
            "attempts": str(self.attempts),
            "stage": self.consumer,
        }
        assert tuple(why) == DLQ_HEADER_FIELDS
        # Earlier dlq headers (a replayed message that failed again) are replaced.
        kept = tuple(h for h in self.headers if not h[0].startswith(HEADER_PREFIX))
        headers = kept + tuple((HEADER_PREFIX + k, v.encode()) for k, v in why.items())
        return Message(self.topic + DLQ_SUFFIX, self.key, self.value, headers)


async def store(conn: asyncpg.Connection, dl: DeadLetter) -> None:
    headers = [[k, v.decode("utf-8", "replace")] for k, v in dl.headers]
    await conn.execute(
        """INSERT INTO dead_letters (consumer, source_topic, source_partition, source_offset,
               message_key, message_value, headers, event_id, order_id, reason_code, detail,
               attempts)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9, $10, $11, $12)
           ON CONFLICT (consumer, source_topic, source_partition, source_offset) DO UPDATE
           SET attempts = dead_letters.attempts + EXCLUDED.attempts""",
        dl.consumer,
        dl.topic,
        dl.partition,
        dl.offset,
        dl.key,
        dl.value,
        json.dumps(headers),
        dl.event_id,
        dl.order_id,
        dl.reason_code,
        dl.detail,
        dl.attempts,
    )
