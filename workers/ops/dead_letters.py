"""Dead letters for operators: list, show, and replay back to the source topic.

Replay is idempotent twice over: a dead letter is marked replayed (and skipped next time
unless forced), and the replayed message keeps its event id, so a consumer that already
processed it (inbox) has no second effect.
"""

import json
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from workers.runtime.dead_letters import REPLAY_HEADER


@dataclass(frozen=True)
class Filter:
    include_replayed: bool = False
    stage: str | None = None
    reason: str | None = None
    ids: tuple[int, ...] = ()


async def find(conn: asyncpg.Connection | asyncpg.Pool, f: Filter) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT dead_letter_id, consumer, source_topic, source_partition, source_offset,
                  event_id, order_id, reason_code, detail, attempts, failed_at, replayed_at,
                  replay_count
           FROM dead_letters
           WHERE ($1 OR replayed_at IS NULL)
             AND ($2::text IS NULL OR consumer = $2)
             AND ($3::text IS NULL OR reason_code = $3)
             AND (cardinality($4::bigint[]) = 0 OR dead_letter_id = ANY($4::bigint[]))
           ORDER BY dead_letter_id""",
        f.include_replayed or bool(f.ids),
        f.stage,
        f.reason,
        list(f.ids),
    )
    return [dict(r) for r in rows]


async def show(
    conn: asyncpg.Connection | asyncpg.Pool, dead_letter_id: int
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM dead_letters WHERE dead_letter_id = $1", dead_letter_id
    )
    if row is None:
        return None
    out = dict(row)
    out["headers"] = json.loads(out["headers"])
    for field in ("message_key", "message_value"):
        raw = out[field]
        out[field] = None if raw is None else bytes(raw).decode("utf-8", "replace")
    return out


async def replay(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, ids: list[int], *, force: bool = False
) -> list[int]:
    """Publish each dead letter's original message to its source topic; return those sent."""
    sent = []
    for dead_letter_id in ids:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT * FROM dead_letters WHERE dead_letter_id = $1
                   AND ($2 OR replayed_at IS NULL) FOR UPDATE SKIP LOCKED""",
                dead_letter_id,
                force,
            )
            if row is None:
                continue
            headers = [
                (k, v.encode())
                for k, v in json.loads(row["headers"])
                if not k.startswith("payflow-dlq-") and k != REPLAY_HEADER
            ]
            headers.append((REPLAY_HEADER, str(dead_letter_id).encode()))
            await producer.send_and_wait(
                row["source_topic"],
                value=row["message_value"],
                key=row["message_key"],
                headers=headers,
            )
            await conn.execute(
                """UPDATE dead_letters SET replayed_at = now(), replay_count = replay_count + 1
                   WHERE dead_letter_id = $1""",
                dead_letter_id,
            )
            sent.append(dead_letter_id)
    return sent
