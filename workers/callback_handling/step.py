"""Callback handling: verify the signature, match the payment, lock it and decide.

Verification is `verify.py`; the decision (shared with the sweeper) is `decision.py`. A forged
or unmatched callback is dead-lettered for an operator; a callback id decided before (a
replay, or the webhook's retry after a publish it could not confirm) is recorded as
'replayed' and changes nothing. The Redis lock on the payment is held until the batch
commits; the decision's fenced UPDATE is what keeps it correct without Redis.
"""

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import asyncpg
from redis.asyncio import Redis

from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackReceived
from contracts.topics import GATEWAY_CALLBACKS, Topic
from workers.callback_handling import decide_batch, decision, store
from workers.callback_handling.verify import verified_notice
from workers.runtime import locks
from workers.runtime.stage import Stage


class CallbackHandling(Stage):
    name: ClassVar[str] = "callback_handling"
    consumes: ClassVar[Topic] = GATEWAY_CALLBACKS

    def __init__(
        self,
        redis: Redis,
        keys: dict[str, str],
        tolerance_s: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis, self.keys, self.tolerance_s, self.clock = redis, keys, tolerance_s, clock

    async def before_batch(self, events: list[Envelope], tx: asyncpg.Connection) -> None:
        verifier = decide_batch.Verifier(self.keys, self.tolerance_s, self.clock())
        await decide_batch.decide_batch(tx, self.redis, verifier, events)

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, GatewayCallbackReceived)
        done = decide_batch.decided(event)
        if done is not None:
            return done
        received = event.payload
        notice = verified_notice(received, self.keys, self.tolerance_s, now=self.clock())
        await locks.held_for_batch(self.redis, f"payment:{notice.payment_id}")
        if await store.callback_decided_before(tx, received.provider, notice.callback_id):
            detail = f"callback {notice.callback_id} was decided before"
            await store.record_callback(tx, event, received, notice, "replayed", detail)
            return []
        decided = await decision.apply(tx, event, notice)
        await store.record_callback(tx, event, received, notice, decided.verdict, decided.detail)
        return decided.events
