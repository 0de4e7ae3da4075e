"""Refunds of settled orders through the whole pipeline and the real gateway simulator: the
wallet share goes back to the wallet at once, the card share through the gateway (its own
callback, or the refund job's query), merchants and fees give back their share, items go
back on sale when asked, never more than was captured, and the audit stays clean.

Why a refund survives a crash anywhere: the request, its posting, its parts and the card
share's gateway refund are written in one transaction (all or nothing; a redelivery finds
the refund id and answers the same); the gateway call is keyed by our refund id, so the
job re-sending after a crash cannot refund twice; the answer completes the refund once,
under the refund's row lock."""

import aiohttp
import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from contracts.envelope import Envelope
from contracts.events.outcomes import OrderRefunded
from contracts.events.refunds import RefundItem, RefundRequested, RefundRequestedPayload
from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import gateway, pipeline, reaches, uid, with_method
from tests.support.orders_idempotency import outcomes
from tests.support.pipeline import (
    assert_audit_clean,
    balances,
    eventually,
    fund_wallet,
    order_submitted,
    publish,
    seed_catalogue,
)
from workers.gateway.registry import Gateways
from workers.ledger import accounts
from workers.refunds.store import card_refund_id

pytestmark = pytest.mark.integration

WALLET = 500  # the rest of each order is charged to the card


def refund(
    order_id: str,
    sub: int | None = None,
    amount: int | None = None,
    items: dict[str, int] | None = None,
    restock: bool = False,
) -> RefundRequested:
    rid = uid("rf")
    payload = RefundRequestedPayload(
        refund_id=rid,
        order_id=order_id,
        sub_order_id=None if sub is None else f"{order_id}-{sub}",
        amount=None if amount is None else Money(amount=amount, currency="EUR"),
        items=[RefundItem(sku_id=k, quantity=v) for k, v in (items or {}).items()],
        restock=restock,
        reason="returned by the buyer",
    )
    return RefundRequested.new(order_id, payload, idempotency_key=rid)


async def answered(pool: asyncpg.Pool, event: RefundRequested, status: str) -> asyncpg.Record:
    rid = event.payload.refund_id

    async def done() -> bool:
        found = await pool.fetchval("SELECT status FROM refunds WHERE refund_id = $1", rid)
        return bool(found == status)

    await eventually(done, 60, f"refund {rid} {status}")
    row: asyncpg.Record = await pool.fetchrow("SELECT * FROM refunds WHERE refund_id = $1", rid)
    return row


def refunded(events: list[Envelope]) -> dict[str, OrderRefunded]:
    return {e.payload.refund_id: e for e in events if isinstance(e, OrderRefunded)}


async def sold(pool: asyncpg.Pool, sku: str) -> int:
    n: int = await pool.fetchval("SELECT sold FROM stock WHERE sku_id = $1", sku)
    return n


async def test_card_and_wallet_shares_go_back_where_they_came_from(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-rf")
    await fund_wallet(pool, buyer, WALLET, f"refunds:{buyer}")
    wallet = accounts.wallet(buyer, "EUR").account_id
    order = order_submitted(uid("ord-rf"), buyer, {"sku-tee": 2, "sku-novel": 1})
    oid = order.correlation_id  # 3,000 of tees (sub-order 1) and a 2,500 novel (2): 5,500
    async with pipeline(services, pool, producer, {}) as settings:
        await publish(producer, order)
        await reaches(pool, oid, "settled")
        assert (await balances(pool, wallet))[1] == 0
        tees_sold = await sold(pool, "sku-tee")

        one_tee = refund(oid, 1, items={"sku-tee": 1}, restock=True)  # worth 1,500
        await publish(producer, one_tee)
        first = await answered(pool, one_tee, "completed")
        # 1,500 of 5,500 paid 500 : 5,000, the card's share rounded down.
        assert (first["wallet_amount"], first["card_amount"]) == (137, 1_363)
        assert first["card_outcome"] == "succeeded"
        assert await sold(pool, "sku-tee") == tees_sold - 1

        rest = refund(oid)  # the whole order: what is left of it
        await publish(producer, rest)
        second = await answered(pool, rest, "completed")
        assert (second["amount"], second["wallet_amount"], second["card_amount"]) == (
            4_000,
            363,
            3_637,
        )
        more = refund(oid, 2, amount=1)
        await publish(producer, more)
        assert (await answered(pool, more, "rejected"))["status_reason"] == "exceeds_captured"
        await publish(producer, rest)  # redelivered: answered already, nothing moves

        # The gateway gave back to the card exactly the card shares, never more than captured.
        async with aiohttp.ClientSession() as http:
            adapter = Gateways(settings, http).adapter("direct")
            for event, card in ((one_tee, 1_363), (rest, 3_637)):
                found = await adapter.query_refund(card_refund_id(event.payload.refund_id))
                assert found is not None and found.status == "succeeded"
                assert found.amount == Money(amount=card, currency="EUR")

    assert (await balances(pool, wallet))[1] == WALLET  # 137 + 363: its whole share back
    events = refunded(await outcomes(pool, oid))
    assert set(events) == {one_tee.payload.refund_id, rest.payload.refund_id}
    assert events[rest.payload.refund_id].payload.to_card == Money(amount=3_637, currency="EUR")
    # Merchants gave back everything they were paid net of the fee (both sub-orders whole).
    merchant_back = await pool.fetchval(
        """SELECT sum(e.amount) FROM ledger_entries e JOIN ledger_transactions t
           USING (ledger_txn_id) WHERE t.order_id = $1 AND t.kind = 'refund'
           AND e.debit_account_id = ANY($2::text[])""",
        oid,
        [accounts.merchant_payable(m, "EUR").account_id for m in ("m-acme", "m-bolt")],
    )
    fees = await pool.fetchval(
        """SELECT sum(d.fee) FROM transaction_details d JOIN transactions t
           USING (transaction_id) WHERE t.order_id = $1""",
        oid,
    )
    assert merchant_back == 5_500 - fees
    await assert_audit_clean(pool)


async def test_a_card_the_gateway_will_not_refund_is_paid_to_the_wallet(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    await seed_catalogue(pool)
    buyer = uid("buyer-rff")
    await fund_wallet(pool, buyer, WALLET, f"refunds:{buyer}")
    wallet = accounts.wallet(buyer, "EUR").account_id
    order = order_submitted(uid("ord-rff"), buyer, {"sku-tee": 1})  # 1,500: 1,000 by card
    oid = order.correlation_id
    async with pipeline(services, pool, producer, {"PAYFLOW_SIM_FAULTS": "refund_failure=1"}):
        await publish(producer, order)
        await reaches(pool, oid, "settled")
        whole = refund(oid)
        await publish(producer, whole)
        row = await answered(pool, whole, "completed")
    assert (row["wallet_amount"], row["card_amount"], row["card_outcome"]) == (
        500,
        1_000,
        "to_wallet",
    )
    status = await pool.fetchval(
        "SELECT status FROM gateway_refunds WHERE order_refund_id = $1", whole.payload.refund_id
    )
    assert status == "failed"
    assert (await balances(pool, wallet))[1] == 1_500
    event = refunded(await outcomes(pool, oid))[whole.payload.refund_id]
    assert event.payload.to_wallet == Money(amount=1_500, currency="EUR")
    assert event.payload.to_card is None
    await assert_audit_clean(pool)


async def test_a_card_refund_sent_while_the_gateway_is_down_completes_once_it_is_back(
    services: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    """The order was paid through the redirect (QR) adapter; its card share is sent while
    the gateway is down: the job records the outcome unknown, keeps the money parked, and
    sends it again with the same key once the gateway answers. One refund at the gateway."""
    await seed_catalogue(pool)
    buyer = uid("buyer-rfu")
    order = with_method(order_submitted(uid("ord-rfu"), buyer, {"sku-mug": 1}), "qr")  # 890
    oid = order.correlation_id
    async with pipeline(services, pool, producer, None) as settings:
        async with gateway(settings, {}):
            await publish(producer, order)
            await reaches(pool, oid, "settled")
        whole = refund(oid)  # the simulator is down now
        await publish(producer, whole)
        gid = card_refund_id(whole.payload.refund_id)

        async def unknown() -> bool:
            found = await pool.fetchval(
                "SELECT status FROM gateway_refunds WHERE refund_id = $1", gid
            )
            return bool(found == "unknown")

        await eventually(unknown, 60, f"{gid} unknown while the gateway is down")
        assert (
            await pool.fetchval(
                "SELECT status FROM refunds WHERE refund_id = $1", whole.payload.refund_id
            )
        ) == "pending"
        async with gateway(settings, {}) as gateways:
            row = await answered(pool, whole, "completed")
            found = await gateways.adapter("redirect").query_refund(gid)
    assert row["card_outcome"] == "succeeded" and row["card_amount"] == 890
    assert found is not None and found.amount == Money(amount=890, currency="EUR")
    await assert_audit_clean(pool)
