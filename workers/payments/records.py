"""The record of a charge request (payment_requests): completed with what the gateway answered."""

import json
from datetime import datetime

import asyncpg

from workers.payments.rules import Asked


async def record_answer(
    conn: asyncpg.Connection, payment_id: str, asked: Asked, next_check_at: datetime
) -> None:
    """Only a payment still 'requesting' moves: a callback or the sweeper may have decided
    it already (the evidence is kept either way)."""
    await record_answers(conn, [(payment_id, asked, next_check_at)])


_STATUS = {"accepted": "pending", "refused": "failed", "unknown": "unknown"}
_LOCK_IN_ORDER = """SELECT 1 FROM payment_requests WHERE payment_id = ANY($1::text[])
 ORDER BY coalesce(order_id, wallet_operation_id), payment_id FOR NO KEY UPDATE"""


async def record_answers(
    conn: asyncpg.Connection, answers: list[tuple[str, Asked, datetime]]
) -> None:
    """`record_answer` for many payments (payment id, answer, next check): one statement,
    and one more for each further answer to a payment already in it (an UPDATE changes a
    row once, and every answer's evidence is kept)."""
    if not answers:
        return
    # Locked first in the order every stage locks an order's rows in (callback handling's
    # lock_requests): an UPDATE's own row locks follow its plan, and a callback arriving
    # with the answer locked the same rows the other way round (a deadlock, seen once in
    # the benchmark).
    await conn.execute(_LOCK_IN_ORDER, sorted({pid for pid, _, _ in answers}))
    rounds: list[list[tuple[str, Asked, datetime]]] = []
    for answer in answers:
        free = (r for r in rounds if all(answer[0] != pid for pid, _, _ in r))
        room = next(free, None)
        if room is None:
            rounds.append([answer])
        else:
            room.append(answer)
    for each in rounds:
        await _record(conn, each)


async def _record(conn: asyncpg.Connection, answers: list[tuple[str, Asked, datetime]]) -> None:
    lasts = [a.evidence[-1] if a.evidence else {} for _, a, _ in answers]
    created = [a.created for _, a, _ in answers]
    await conn.execute(
        """UPDATE payment_requests p SET
               evidence = p.evidence || u.evidence::jsonb,
               response_status = u.response_status, response_body = u.response_body,
               gateway_ref = coalesce(p.gateway_ref, u.ref),
               pay_url = coalesce(p.pay_url, u.pay_url),
               qr_payload = coalesce(p.qr_payload, u.qr_payload),
               next_check_at = CASE WHEN p.status = 'requesting' THEN u.check_at
                                    ELSE p.next_check_at END,
               status = CASE WHEN p.status = 'requesting' THEN u.status ELSE p.status END,
               updated_at = now()
          FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                      $7::text[], $8::text[], $9::timestamptz[])
               AS u(id, evidence, response_status, response_body, ref, pay_url, qr_payload,
                    status, check_at)
         WHERE p.payment_id = u.id""",
        [pid for pid, _, _ in answers],
        [json.dumps(a.evidence) for _, a, _ in answers],
        [last.get("status") for last in lasts],
        [last.get("response") for last in lasts],
        [c.gateway_ref if c else None for c in created],
        [c.pay_url if c else None for c in created],
        [c.qr_payload if c else None for c in created],
        [_STATUS[a.outcome] for _, a, _ in answers],
        [at for _, _, at in answers],
    )
