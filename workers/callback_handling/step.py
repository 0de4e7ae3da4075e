"""Callback handling: verify the signature, match the payment, lock the order and decide.

Verification is `verify.py`; the decision (shared with the sweeper) is `decision.py`. A forged
or unmatched callback is dead-lettered for an operator.
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import asyncpg
from redis.asyncio import Redis

from contracts.envelope import Envelope
from contracts.events.gateway import GatewayCallbackReceived
from contracts.topics import GATEWAY_CALLBACKS, Topic
from workers.callback_handling import decision, store
from workers.callback_handling.verify import verified_notice
from workers.runtime import locks
from workers.runtime.stage import Stage


class CallbackHandling(Stage):
    name: ClassVar[str] = "callback_handling"
    consumes: ClassVar[Topic] = GATEWAY_CALLBACKS

    def __init__(self, redis: Redis, keys: dict[str, str], tolerance_s: int) -> None:
        self.redis, self.keys, self.tolerance_s = redis, keys, tolerance_s

    async def handle(
        self, event: Envelope, tx: asyncpg.Connection, prepared: Any
    ) -> Sequence[Envelope]:
        assert isinstance(event, GatewayCallbackReceived)
        received = event.payload
        notice = verified_notice(received, self.keys, self.tolerance_s)
        async with locks.held(self.redis, f"payment:{notice.payment_id}"):
            decided = await decision.apply(tx, event, notice)
        await store.record_callback(tx, event, received, notice, decided.verdict, decided.detail)
        return decided.events
