"""Making a dead letter out of a record, logging it, and parking one on its own.

`park` is the last resort for a message that made its whole batch fail: stored in its own
transaction, then published to the dead-letter topic. If the topic refuses even the cut
copy, the row in `dead_letters` is the record an operator works from; the stage moves on.
"""

from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord

from contracts.codec import ContractError, decode
from contracts.envelope import Envelope
from workers.runtime import dead_letters, metrics
from workers.runtime.dead_letters import DeadLetter
from workers.runtime.errors import dead_letter_reason, is_transient

log = structlog.get_logger()


def from_record(
    stage: str,
    rec: ConsumerRecord[Any, Any],
    exc: BaseException,
    attempts: int,
    event: Envelope | None = None,
) -> DeadLetter:
    code, detail = dead_letter_reason(exc)
    if event is None:  # name the event and order where the bytes allow it
        try:
            event = decode(rec.topic, rec.value)
        except ContractError:
            event = None
    return DeadLetter(
        consumer=stage,
        topic=rec.topic,
        partition=rec.partition,
        offset=rec.offset,
        key=rec.key,
        value=rec.value,
        headers=tuple(rec.headers or ()),
        reason_code=code,
        detail=detail,
        attempts=attempts,
        event_id=event.event_id if event else None,
        order_id=event.correlation_id if event else None,
    )


def logged(dl: DeadLetter) -> DeadLetter:
    """Every dead letter is one log line an operator can act on, and counted."""
    log.warning(
        "dead_lettered",
        stage=dl.consumer,
        topic=dl.topic,
        partition=dl.partition,
        offset=dl.offset,
        reason=dl.reason_code,
        detail=dl.detail[:500],
        event_id=str(dl.event_id) if dl.event_id else None,
        order_id=dl.order_id,
        size=len(dl.value or b""),
    )
    metrics.DEAD_LETTERED.labels(dl.consumer, dl.reason_code).inc()
    return dl


async def park(pool: asyncpg.Pool, producer: AIOKafkaProducer, dl: DeadLetter) -> None:
    """Store and publish one dead letter on its own. Transient failures propagate."""
    async with pool.acquire() as conn, conn.transaction():
        dead_letter_id = await dead_letters.store(conn, dl)
    logged(dl)
    msg = dl.message()
    try:
        await producer.send_and_wait(msg.topic, msg.value, key=msg.key, headers=list(msg.headers))
    except Exception as exc:
        if is_transient(exc):
            raise
        log.error(
            "dead_letter_not_published",
            stage=dl.consumer,
            dead_letter_id=dead_letter_id,
            topic=msg.topic,
            error_class=type(exc).__name__,
            error=str(exc)[:300],
            note="kept in the dead_letters table; see `payflow dlq show`",
        )
