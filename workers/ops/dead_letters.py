"""Dead letters for operators: list, show, and replay back to the source topic.

Replay is idempotent twice over: a dead letter is marked replayed (and skipped next time
unless forced), and the replayed message keeps its event id, so a consumer that already
processed it (inbox) has no second effect.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from workers.review.cases import close_subject
from workers.runtime.dead_letters import REPLAY_HEADER, case_subject, stored_headers


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
    out["headers"] = [
        [k, None if v is None else v.decode("utf-8", "replace")] for k, v in stored_headers(row)
    ]
    del out["header_keys"], out["header_values"]
    for column in ("message_key", "message_value"):
        raw = out[column]
        out[column] = None if raw is None else bytes(raw).decode("utf-8", "replace")
    return out


def _already(dead_letter_id: int, replayed_at: datetime) -> str:
    return (
        f"dead letter #{dead_letter_id} was already replayed at {replayed_at:%Y-%m-%d %H:%M:%S %Z}; "
        "use --force to replay it again"
    )


def _missing(dead_letter_id: int) -> str:
    return f"no dead letter #{dead_letter_id}; see `payflow dlq list --all`"


@dataclass
class ReplayResult:
    sent: list[int] = field(default_factory=list)
    # Each id that was not replayed, with one line saying why.
    refused: dict[int, str] = field(default_factory=dict)


async def refusals(
    conn: asyncpg.Connection | asyncpg.Pool, ids: list[int], *, force: bool = False
) -> dict[int, str]:
    """Why each of `ids` cannot be replayed: it does not exist, or was replayed (no force).
    Checked before any Kafka connection is made; `replay` checks again under a row lock."""
    rows = await conn.fetch(
        "SELECT dead_letter_id, replayed_at FROM dead_letters "
        "WHERE dead_letter_id = ANY($1::bigint[])",
        ids,
    )
    replayed_at = {r["dead_letter_id"]: r["replayed_at"] for r in rows}
    refused = {}
    for dead_letter_id in ids:
        if dead_letter_id not in replayed_at:
            refused[dead_letter_id] = _missing(dead_letter_id)
        elif replayed_at[dead_letter_id] is not None and not force:
            refused[dead_letter_id] = _already(dead_letter_id, replayed_at[dead_letter_id])
    return refused


async def replay(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, ids: list[int], *, force: bool = False
) -> ReplayResult:
    """Publish each dead letter's original message to its source topic; say which were sent
    and why the others were not."""
    result = ReplayResult()
    for dead_letter_id in ids:
        async with pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM dead_letters WHERE dead_letter_id = $1 FOR UPDATE SKIP LOCKED",
                dead_letter_id,
            )
            if row is None:
                exists = await conn.fetchval(
                    "SELECT 1 FROM dead_letters WHERE dead_letter_id = $1", dead_letter_id
                )
                result.refused[dead_letter_id] = (
                    f"dead letter #{dead_letter_id} is being replayed by another process"
                    if exists
                    else _missing(dead_letter_id)
                )
                continue
            if row["replayed_at"] is not None and not force:
                result.refused[dead_letter_id] = _already(dead_letter_id, row["replayed_at"])
                continue
            headers = [
                (k, v)
                for k, v in stored_headers(row)
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
            # Its case is done: the message is back where it came from (if it fails again it
            # is a new dead letter, and a new case).
            await close_subject(
                conn, "dead_letter", case_subject(dead_letter_id), "replayed", "payflow dlq replay"
            )
            result.sent.append(dead_letter_id)
    return result
