"""Property (issue 7): whatever the delivery does to the gateway's answers (duplicated,
reordered, late, lost callbacks) and wherever sweeper queries fall between them, a payment
ends in the same final state as when each callback arrives once, in the gateway's order.

The gateway's truth is a timeline of charge states (SCENARIOS). Hypothesis draws, for each
callback the gateway sends, how many copies arrive (0: lost) and how late each is; sweeper
queries at any time, each seeing the gateway as it is at that time (the sweeper's own rules
make the notices: `after_query` for an open payment, the successes for an expired one); and
one query at the end, which is what the sweeper guarantees for a lost callback. Each message
is applied through `decision.apply` in a transaction of its own, its events stored in the
outbox as the runtime does, on the real Postgres (a database of this module's own, so the
audit sees these payments only; each example its own ids). Then the final state (payment,
order, charges, late refunds, ledger postings, decision and late-money events) must equal
the canonical run's and the scenario's, and the audit must be clean.

Charges are compared by role: the one the payment was decided with ('decided') or another
('other'). With two successes, the one learned first is kept and the other refunded, so
which gateway_ref is kept depends on the order; what is kept, refunded and posted does not.
The scenarios run for an order, and (those without a payment window) for a wallet top-up.

What the property found outside the sweeper's queries, a second charge whose callbacks are
all lost once the payment is decided, is found by the statement sweep
(tests/integration/test_statement_sweep.py). A callback with a wrong amount ends the same
whenever it comes: it decides nothing, the gateway's own record does.
"""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings

from contracts.codec import decode
from contracts.events.payments import PaymentFailed, PaymentSucceeded
from infra.settings import Settings
from tests.support.callback_interleavings import (
    SCENARIOS,
    STEP,
    Draw,
    Msg,
    Payment,
    Scenario,
    callback,
    canonical,
    draws,
    expected,
    query_notices,
)
from tests.support.gateway_edge import plant_payment
from tests.support.services import scratch_database
from workers.callback_handling import decision
from workers.ops.audit import run_audit
from workers.runtime import outbox
from workers.settlement.step import Settlement
from workers.sweeper import rules, window

pytestmark = pytest.mark.integration

PRODUCER = "test_interleavings"


@pytest_asyncio.fixture(scope="module")
async def pool(services: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A database of this module's own: the audit sees only these payments."""
    async with scratch_database(services, "interleave") as p:
        yield p


async def new_payment(
    pool: asyncpg.Pool, settings: Settings, scenario: Scenario, initial: str, top_up: bool = False
) -> Payment:
    """An order's gateway payment (or a wallet top-up's) in `initial`, as gateway_request
    leaves it; closed by the real payment window first when the scenario says so."""
    uid = uuid.uuid4().hex[:10]
    order_id, txn_id, payment_id = f"ord-il-{uid}", f"txn-il-{uid}", f"pay-il-{uid}"
    refs = {charge: f"gw-{charge}-{uid}" for charge, _ in scenario.timeline}
    # A pending payment has the ref the gateway's create answer named, its first charge
    # (gateway_request records it); a timed-out or unanswered request has none.
    created_ref = refs[scenario.timeline[0][0]] if initial == "pending" else None
    async with pool.acquire() as conn, conn.transaction():
        if top_up:
            await conn.execute(
                """INSERT INTO wallet_operations (operation_id, kind, buyer_id, currency,
                       amount, request_digest, status)
                   VALUES ($1, 'top_up', 'buyer-il', 'EUR', 500, 'test', 'requested')""",
                f"top-il-{uid}",
            )
            await conn.execute(
                """INSERT INTO payment_requests (payment_id, wallet_operation_id, attempt,
                       idempotency_key, currency, amount, status, request_body, gateway_ref)
                   VALUES ($1, $2, 1, $1, 'EUR', 500, $3, '{}', $4)""",
                payment_id,
                f"top-il-{uid}",
                initial,
                created_ref,
            )
            return Payment(f"top-il-{uid}", None, payment_id, refs, None)
        await plant_payment(
            conn,
            order_id=order_id,
            transaction_id=txn_id,
            payment_id=payment_id,
            order_state="payment_requested",
            status=initial,
            buyer="buyer-il",
            gateway_ref=created_ref,
        )
    failed = None
    if scenario.expired:  # the real payment window: the payment expires, PaymentFailed out
        [message] = await window.expire(pool, settings, order_id)
        event = decode(message.topic, message.value)
        assert isinstance(event, PaymentFailed)
        failed = event
    return Payment(order_id, order_id, payment_id, refs, failed)


async def deliver(
    pool: asyncpg.Pool, settings: Settings, scenario: Scenario, payment: Payment, run: Draw
) -> None:
    in_flight = rules.in_flight_s(settings.gateway_timeout_s, settings.gateway_attempts)
    for msg in run.messages:
        async with pool.acquire() as conn, conn.transaction():
            if msg.kind == "settle":
                assert payment.window_failed is not None
                settlement = Settlement()
                events = list(await settlement.handle(payment.window_failed, conn, None))
                await settlement.before_commit(conn)
                await outbox.store(conn, PRODUCER, payment.window_failed.event_id, events)
                continue
            if msg.kind == "callback":
                cause, notice = callback(payment, msg)
                decided = await decision.apply(conn, cause, notice, late_action=run.action)
                await outbox.store(conn, PRODUCER, cause.event_id, decided.events)
                continue
            for notice in query_notices(scenario, payment, msg.at, in_flight):
                decided = await decision.apply(conn, None, notice, late_action=run.action)
                await outbox.store(conn, PRODUCER, None, decided.events)


COUNTED = {
    "PaymentSucceeded",
    "PaymentFailed",
    "PaymentNeedsReview",
    "PaymentLateMoney",
    "TopUpGatewayResult",
}


LATE_POSTINGS = ("late_payment", "late_payment_refund")  # idempotency key prefixes


async def final_state(pool: asyncpg.Pool, payment: Payment) -> dict[str, object]:
    """Everything the answers changed, with charges named by role."""
    pay = await pool.fetchrow(
        "SELECT status, gateway_ref FROM payment_requests WHERE payment_id = $1",
        payment.payment_id,
    )

    def role(ref: str | None) -> str | None:
        return None if ref is None else "decided" if ref == pay["gateway_ref"] else "other"

    charges = await pool.fetch(
        "SELECT gateway_ref, status, amount FROM gateway_charges WHERE payment_id = $1",
        payment.payment_id,
    )
    refunds = await pool.fetch(
        """SELECT gateway_ref, kind, reason, status, amount, adapter FROM gateway_refunds
           WHERE payment_id = $1""",
        payment.payment_id,
    )
    # The order's postings, and the late money's (a top-up's have no order).
    keys = [f"{k}:late:{ref}" for ref in payment.refs.values() for k in LATE_POSTINGS]
    postings = await pool.fetch(
        """SELECT l.kind, e.debit_account_id, e.credit_account_id, e.amount, e.leg
           FROM ledger_transactions l JOIN ledger_entries e USING (ledger_txn_id)
           WHERE l.order_id = $1 OR l.idempotency_key = ANY($2::text[])""",
        payment.order_id,
        keys,
    )
    stored = await pool.fetch(
        "SELECT topic, message_value FROM outbox WHERE message_key = $1", payment.correlation
    )
    events = [decode(r["topic"], bytes(r["message_value"])) for r in stored]
    names = (type(e).__name__ for e in events)
    return {
        "payment": (pay["status"], role(pay["gateway_ref"])),
        "order": await pool.fetchval(
            "SELECT state FROM orders WHERE order_id = $1", payment.order_id
        ),
        "charges": sorted((role(c["gateway_ref"]), c["status"], c["amount"]) for c in charges),
        "refunds": sorted(
            (role(r["gateway_ref"]), r["kind"], r["reason"], r["status"], r["amount"], r["adapter"])
            for r in refunds
        ),
        "postings": sorted(tuple(p) for p in postings),
        "events": sorted(Counter(n for n in names if n in COUNTED).items()),
        # Settlement sells only for the charge the payment was decided with.
        "sold_with": sorted(
            str(role(e.payload.gateway_ref)) for e in events if isinstance(e, PaymentSucceeded)
        ),
    }


MAX_EXAMPLES = 60


# Every scenario for an order; those without a payment window for a wallet top-up too.
CASES = [pytest.param(s, False, id=s.name) for s in SCENARIOS] + [
    pytest.param(s, True, id=f"{s.name}-top_up") for s in SCENARIOS if not s.expired
]


@pytest.mark.parametrize(("scenario", "top_up"), CASES)
async def test_every_interleaving_ends_in_the_canonical_state(
    services: Settings, pool: asyncpg.Pool, scenario: Scenario, top_up: bool
) -> None:
    canon: dict[str, dict[str, object]] = {}
    for action in ("refund", "review"):
        run = canonical(scenario)
        payment = await new_payment(pool, services, scenario, run.initial, top_up)
        await deliver(pool, services, scenario, payment, Draw(run.messages, action, run.initial))
        canon[action] = await final_state(pool, payment)
        assert canon[action] == expected(scenario, action, top_up)

    async def one(run: Draw) -> None:
        payment = await new_payment(pool, services, scenario, run.initial, top_up)
        await deliver(pool, services, scenario, payment, run)
        assert await final_state(pool, payment) == canon[run.action], run
        async with pool.acquire() as conn:
            report = await run_audit(conn, services)
        assert report["ok"], report["violations"]

    loop = asyncio.get_running_loop()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(run=draws(scenario))
    def each(run: Draw) -> None:  # hypothesis is synchronous: each example on the test's loop
        asyncio.run_coroutine_threadsafe(one(run), loop).result(timeout=120)

    await asyncio.to_thread(each)


SECOND_CHARGE = next(s for s in SCENARIOS if s.name == "second_charge")
ONE_SUCCESS = next(s for s in SCENARIOS if s.name == "one_success")


async def test_a_callback_with_a_wrong_amount_ends_the_same_whenever_it_comes(
    services: Settings, pool: asyncpg.Pool
) -> None:
    wrong = Msg("callback", STEP, "A", "succeeded", delta=1)
    query = Msg("query", 2 * STEP)
    states = []
    for messages in ((wrong, query), (query, wrong)):
        payment = await new_payment(pool, services, ONE_SUCCESS, "pending")
        await deliver(pool, services, ONE_SUCCESS, payment, Draw(messages, "refund", "pending"))
        states.append(await final_state(pool, payment))
    assert states[0] == states[1]
