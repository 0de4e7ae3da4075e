"""Turning one settled charge or refund into queued callbacks, with the callback faults of
its payment applied: lost, wrong_amount, bad_signature, duplicate, late, reorder."""

import secrets
import sqlite3
from collections.abc import Callable

import structlog

from workers.gateway_simulator import callback_queue
from workers.gateway_simulator.config import SimConfig

log = structlog.get_logger()

MIN_COPY_GAP_S = 0.05  # a second copy goes at least this long after the first


def new_callback_id() -> str:
    return f"cb_{secrets.token_hex(12)}"


def announce(
    conn: sqlite3.Connection,
    cfg: SimConfig,
    *,
    provider: str,
    kind: str,
    payment_id: str,
    reference: str,
    body_for: Callable[[str, int], str],  # (callback_id, amount delta) -> raw body
    rule_delta: int = 0,
    rule_copies: int = 1,
    now: float,
) -> None:
    faults, t = cfg.faults, cfg.timings
    callback_id = new_callback_id()
    if faults.hits("lost_callback", payment_id):
        log.warning(
            "callback_lost",
            fault="lost_callback",
            kind=kind,
            reference=reference,
            payment_id=payment_id,
            callback_id=callback_id,
        )
        return
    delta = rule_delta + (1 if faults.hits("wrong_amount", payment_id) else 0)
    body = body_for(callback_id, delta)
    copies = max(rule_copies, 2 if faults.hits("duplicate_callback", payment_id) else 1)
    due = now + (t.late_ms / 1000 if faults.hits("late_callback", payment_id) else 0.0)
    held = faults.hits("reorder_callbacks", payment_id)
    # A held callback goes once a later one was delivered, at the latest after late_ms.
    first_due = due + t.late_ms / 1000 if held else due
    gap = max(t.callback_delay_ms / 1000, MIN_COPY_GAP_S)
    for n in range(copies):
        callback_queue.enqueue(
            conn,
            callback_id=callback_id,
            provider=provider,
            kind=kind,
            payment_id=payment_id,
            reference=reference,
            body=body,
            due_at=first_due + n * gap,
            wrong_key=faults.hits("bad_signature", payment_id),
            held=held and n == 0,
        )
