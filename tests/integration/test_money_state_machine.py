"""A stateful test of the money core: TCC funds holds, the ledger and the audit, driven by
hypothesis against the real Postgres and checked step by step against an in-memory model.

Every rule runs one real transaction through the real code (`funds.freeze`, `funds.confirm`
plus the purchase posting settlement makes, `funds.cancel`, `postings.post`). After every
step the model's balances, holds, barrier rows and postings must equal the database's, and
`run_audit` must be clean.

hypothesis state machines are synchronous, so the machine runs its coroutines on an event
loop of its own in a separate thread, with an asyncpg pool created on that loop.
"""

import asyncio
import itertools
import threading
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from infra.settings import Settings
from tests.support.pipeline import fund_wallet
from tests.support.services import create_scratch, drop_scratch
from workers.ledger import accounts, postings
from workers.ledger.postings import Leg
from workers.ops.audit import run_audit
from workers.participants import funds
from workers.runtime.db import create_pool
from workers.settlement.legs import Payout, purchase_legs
from workers.tcc.barrier import Verdict

pytestmark = pytest.mark.integration

T = TypeVar("T")
CUR = "EUR"
WALLETS = 3
MERCHANTS = 2
FEE_BPS = 300  # 3 % of each sub-order goes to the platform's fee income

MACHINE_SETTINGS = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class LoopThread:
    """An event loop running in a thread of its own; `run` blocks until a coroutine ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=30)
        self.loop.close()


# ---------------------------------------------------------------------------- the model


class OrderPhase(Enum):
    NONE = "none"
    TRIED = "tried"
    CONFIRMED = "confirmed"
    CANCELLED = "cancelled"
    EMPTY_CANCELLED = "empty_cancelled"


# (phase, origin) rows the barrier must hold for an order in each phase.
BARRIER_ROWS: dict[OrderPhase, set[tuple[str, str]]] = {
    OrderPhase.NONE: set(),
    OrderPhase.TRIED: {("try", "applied")},
    OrderPhase.CONFIRMED: {("try", "applied"), ("confirm", "applied")},
    OrderPhase.CANCELLED: {("try", "applied"), ("cancel", "applied")},
    OrderPhase.EMPTY_CANCELLED: {("try", "empty_cancel"), ("cancel", "empty_cancel")},
}
HOLD_STATE = {
    OrderPhase.TRIED: "held",
    OrderPhase.CONFIRMED: "confirmed",
    OrderPhase.CANCELLED: "cancelled",
}


@dataclass
class WalletModel:
    buyer: str
    account_id: str
    available: int = 0
    frozen: int = 0

    @property
    def total(self) -> int:
        return self.available + self.frozen


@dataclass
class OrderModel:
    gid: str
    phase: OrderPhase = OrderPhase.NONE
    wallet: int = 0
    amount: int = 0
    expired: bool = False
    # The last phase called on the order and its arguments, for the `duplicate` rule.
    last: tuple[Any, ...] | None = None

    @property
    def hold(self) -> tuple[str, int, int] | None:
        """(state, amount, confirmed_amount) of the order's fund hold, None if no row."""
        state = HOLD_STATE.get(self.phase)
        if state is None or self.amount == 0:  # a zero freeze writes no hold
            return None
        return state, self.amount, self.amount if state == "confirmed" else 0


Outcome = Verdict | type[Exception]


def split(wallet_part: int) -> list[tuple[int, int]]:
    """(gross, fee) per merchant for a purchase paid from the wallet."""
    first = wallet_part // 2
    parts = [first, wallet_part - first]
    return [(gross, gross * FEE_BPS // 10_000) for gross in parts]


# ---------------------------------------------------------------------------- the machine


class MoneyCore(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self, runner: LoopThread, pool: asyncpg.Pool) -> None:
        super().__init__()
        self.runner, self.pool = runner, pool
        self.run_id = uuid.uuid4().hex[:10]
        self._ids = itertools.count()
        self.wallets: list[WalletModel] = []
        self.orders_by_gid: dict[str, OrderModel] = {}
        self.merchants = [
            accounts.merchant_payable(f"sm-{self.run_id}-m{i}", CUR) for i in range(MERCHANTS)
        ]
        self.merchant_accounts = [ref.account_id for ref in self.merchants]
        self.merchant_totals = [0] * MERCHANTS
        # Shared accounts: the model tracks their change since the start of the example.
        self.shared = {
            "funding": accounts.external("funding", CUR),
            "fee_income": accounts.platform("fee_income", CUR),
            "order_clearing": accounts.platform("order_clearing", CUR),
            "gateway_clearing": accounts.external("gateway_clearing", CUR),
        }
        self.shared_base: dict[str, int] = {}
        self.shared_delta = dict.fromkeys(self.shared, 0)
        self.last_top_up: tuple[int, int, str] | None = None

    def _next(self, kind: str) -> str:
        return f"sm-{self.run_id}-{kind}{next(self._ids)}"

    # ------------------------------------------------------------------ real transactions

    async def _freeze(self, gid: str, account_id: str, amount: int, expired: bool) -> Verdict:
        now = datetime.now(UTC)
        expires_at = now - timedelta(hours=1) if expired else now + timedelta(hours=1)
        async with self.pool.acquire() as conn, conn.transaction():
            entry = await funds.freeze(conn, gid, account_id, amount, CUR, expires_at)
            return entry.verdict

    async def _confirm(self, gid: str) -> tuple[Verdict, list[funds.Held]]:
        """What settlement does: confirm the holds and, when applied, post the purchase."""
        async with self.pool.acquire() as conn, conn.transaction():
            entry, held = await funds.confirm(conn, gid)
            if not entry.apply:
                return entry.verdict, held
            wallet_part = sum(h.amount for h in held)
            wallets = {h.account_id for h in held}
            assert len(wallets) <= 1, held
            payouts = [
                Payout(f"{gid}-s{i}", self.merchant_accounts[i], gross, fee)
                for i, (gross, fee) in enumerate(split(wallet_part))
            ]
            legs = purchase_legs(
                wallet=wallets.pop() if wallets else self.wallets[0].account_id,
                gateway_clearing=await accounts.ensure(conn, self.shared["gateway_clearing"]),
                clearing=await accounts.ensure(conn, self.shared["order_clearing"]),
                fee_income=await accounts.ensure(conn, self.shared["fee_income"]),
                wallet_part=wallet_part,
                gateway_part=0,
                payouts=payouts,
            )
            txn = await postings.post(
                conn,
                kind="purchase",
                order_id=gid,
                idempotency_key=f"purchase:{gid}",
                currency=CUR,
                legs=legs,
            )
            assert txn is not None, f"purchase of {gid} was already posted"
            return entry.verdict, held

    async def _cancel(self, gid: str) -> Verdict:
        async with self.pool.acquire() as conn, conn.transaction():
            return (await funds.cancel(conn, gid)).verdict

    async def _top_up(self, account_id: str, amount: int, key: str) -> int | None:
        async with self.pool.acquire() as conn, conn.transaction():
            funding = await accounts.ensure(conn, self.shared["funding"])
            return await postings.post(
                conn,
                kind="top_up",
                order_id=None,
                idempotency_key=key,
                currency=CUR,
                legs=[Leg(funding, account_id, amount, "top_up")],
            )

    def _outcome(self, call: Callable[[], Coroutine[Any, Any, T]]) -> T | type[Exception]:
        try:
            return self.runner.run(call())
        except (funds.InsufficientFunds, funds.HoldExpired) as exc:
            return type(exc)

    # ------------------------------------------------------------------ model + real calls

    def do_freeze(self, order: OrderModel, wallet: int, amount: int, expired: bool) -> Outcome:
        order.last = ("freeze", wallet, amount, expired)
        w = self.wallets[wallet]
        expected: Outcome
        if order.phase is OrderPhase.NONE:
            expected = funds.InsufficientFunds if amount > w.available else Verdict.APPLY
        elif order.phase is OrderPhase.EMPTY_CANCELLED:
            expected = Verdict.REFUSED  # anti-hanging: a Try after its Cancel
        else:
            expected = Verdict.DUPLICATE
        got = self._outcome(lambda: self._freeze(order.gid, w.account_id, amount, expired))
        assert got == expected, f"freeze {order.gid} ({order.phase.value}): {got}"
        if expected is Verdict.APPLY:
            order.phase, order.wallet, order.amount = OrderPhase.TRIED, wallet, amount
            order.expired = expired
            w.available -= amount
            w.frozen += amount
        return got

    def do_confirm(self, order: OrderModel) -> Outcome:
        order.last = ("confirm",)
        expected: Outcome
        if order.phase is OrderPhase.TRIED:
            # Past its deadline a hold can only be cancelled (a zero freeze holds nothing).
            expired = order.expired and order.amount > 0
            expected = funds.HoldExpired if expired else Verdict.APPLY
        elif order.phase is OrderPhase.CONFIRMED:
            expected = Verdict.DUPLICATE
        else:  # confirm without try, after cancel, after an empty cancel
            expected = Verdict.REFUSED
        got = self._outcome(lambda: self._confirm(order.gid))
        verdict = got[0] if isinstance(got, tuple) else got
        assert verdict == expected, f"confirm {order.gid} ({order.phase.value}): {verdict}"
        if expected is Verdict.APPLY:
            assert isinstance(got, tuple)
            w = self.wallets[order.wallet]
            held = [(h.account_id, h.amount) for h in got[1]]
            assert held == ([(w.account_id, order.amount)] if order.amount else []), held
            order.phase = OrderPhase.CONFIRMED
            w.frozen -= order.amount
            for i, (gross, fee) in enumerate(split(order.amount)):
                self.merchant_totals[i] += gross - fee
                self.shared_delta["fee_income"] += fee
        elif isinstance(got, tuple):
            assert got[1] == [], f"confirm {order.gid} returned holds without applying"
        return verdict

    def do_cancel(self, order: OrderModel) -> Outcome:
        order.last = ("cancel",)
        expected: Outcome
        if order.phase is OrderPhase.NONE:
            expected = Verdict.EMPTY_CANCEL
        elif order.phase is OrderPhase.TRIED:
            expected = Verdict.APPLY  # also when expired: Cancel is always possible
        elif order.phase is OrderPhase.CONFIRMED:
            expected = Verdict.REFUSED
        else:
            expected = Verdict.DUPLICATE
        got = self._outcome(lambda: self._cancel(order.gid))
        assert got == expected, f"cancel {order.gid} ({order.phase.value}): {got}"
        if expected is Verdict.EMPTY_CANCEL:
            order.phase = OrderPhase.EMPTY_CANCELLED
        elif expected is Verdict.APPLY:
            order.phase = OrderPhase.CANCELLED
            w = self.wallets[order.wallet]
            w.available += order.amount
            w.frozen -= order.amount
        return got

    # ------------------------------------------------------------------ rules

    @initialize(balances=st.lists(st.integers(0, 10_000), min_size=WALLETS, max_size=WALLETS))
    def open_wallets(self, balances: list[int]) -> None:
        async def setup() -> dict[str, int]:
            for i, amount in enumerate(balances):
                buyer = f"sm-{self.run_id}-b{i}"
                await fund_wallet(self.pool, buyer, amount, f"sm-seed:{buyer}")
                self.wallets.append(
                    WalletModel(buyer, accounts.wallet(buyer, CUR).account_id, amount)
                )
            async with self.pool.acquire() as conn:
                for ref in [*self.merchants, *self.shared.values()]:
                    await accounts.ensure(conn, ref)
                rows = await conn.fetch(
                    "SELECT account_id, total FROM accounts WHERE account_id = ANY($1)",
                    [ref.account_id for ref in self.shared.values()],
                )
            totals = {r["account_id"]: int(r["total"]) for r in rows}
            return {name: totals[ref.account_id] for name, ref in self.shared.items()}

        self.shared_base = self.runner.run(setup())

    @initialize(target=orders)
    def first_orders(self) -> object:
        return multiple(*(self._new_order() for _ in range(2)))

    @rule(
        target=orders,
        wallet=st.integers(0, WALLETS - 1),
        amount=st.integers(0, 4_000),
        expired=st.sampled_from([False, False, True]),
    )
    def try_new_order(self, wallet: int, amount: int, expired: bool) -> str:
        """The usual start of an order: its Try (an order refused for lack of funds stays
        untried, so it serves later as a Confirm or Cancel without Try)."""
        gid = self._new_order()
        self.do_freeze(self.orders_by_gid[gid], wallet, amount, expired)
        return gid

    def _new_order(self) -> str:
        gid = self._next("o")
        self.orders_by_gid[gid] = OrderModel(gid)
        return gid

    @rule(
        gid=orders,
        wallet=st.integers(0, WALLETS - 1),
        amount=st.integers(0, 6_000),
        expired=st.sampled_from([False, False, True]),
    )
    def freeze(self, gid: str, wallet: int, amount: int, expired: bool) -> None:
        """A Try on a known order: a late, repeated or retried Try."""
        self.do_freeze(self.orders_by_gid[gid], wallet, amount, expired)

    @rule(gid=orders)
    def confirm(self, gid: str) -> None:
        self.do_confirm(self.orders_by_gid[gid])

    @rule(gid=orders)
    def cancel(self, gid: str) -> None:
        self.do_cancel(self.orders_by_gid[gid])

    def _open(self) -> list[str]:
        return sorted(g for g, o in self.orders_by_gid.items() if o.phase is OrderPhase.TRIED)

    @precondition(lambda self: self._open())
    @rule(data=st.data())
    def confirm_open(self, data: st.DataObject) -> None:
        """The payment succeeded: Confirm an order whose Try applied (the usual path)."""
        self.do_confirm(self.orders_by_gid[data.draw(st.sampled_from(self._open()), "order")])

    @precondition(lambda self: self._open())
    @rule(data=st.data())
    def cancel_open(self, data: st.DataObject) -> None:
        """The payment failed: Cancel an order whose Try applied."""
        self.do_cancel(self.orders_by_gid[data.draw(st.sampled_from(self._open()), "order")])

    @precondition(lambda self: any(o.last for o in self.orders_by_gid.values()))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """Redeliver: run the last phase of an order again, with the same arguments."""
        called = sorted(gid for gid, o in self.orders_by_gid.items() if o.last)
        order = self.orders_by_gid[data.draw(st.sampled_from(called), "order")]
        assert order.last is not None
        kind, *args = order.last
        if kind == "freeze":
            self.do_freeze(order, *args)
        elif kind == "confirm":
            self.do_confirm(order)
        else:
            self.do_cancel(order)

    @rule(
        target=orders,
        wallet=st.integers(0, WALLETS - 1),
        amount=st.integers(0, 6_000),
    )
    def reorder(self, wallet: int, amount: int) -> str:
        """The Cancel overtakes its Try: empty compensation, then the late Try is refused."""
        gid = self._next("r")
        order = self.orders_by_gid[gid] = OrderModel(gid)
        assert self.do_cancel(order) is Verdict.EMPTY_CANCEL
        assert self.do_freeze(order, wallet, amount, False) is Verdict.REFUSED
        return gid

    @rule(wallet=st.integers(0, WALLETS - 1), amount=st.integers(1, 3_000))
    def top_up(self, wallet: int, amount: int) -> None:
        w = self.wallets[wallet]
        key = f"{self._next('t')}:top-up"
        txn = self.runner.run(self._top_up(w.account_id, amount, key))
        assert txn is not None
        w.available += amount
        self.shared_delta["funding"] -= amount
        self.last_top_up = (wallet, amount, key)

    @precondition(lambda self: self.last_top_up is not None)
    @rule()
    def replay_top_up(self) -> None:
        """The same top-up again (same idempotency key) is not posted a second time."""
        assert self.last_top_up is not None
        wallet, amount, key = self.last_top_up
        txn = self.runner.run(self._top_up(self.wallets[wallet].account_id, amount, key))
        assert txn is None

    # ------------------------------------------------------------------ invariants

    @invariant()
    def database_matches_model(self) -> None:
        gids = list(self.orders_by_gid)

        async def snapshot() -> dict[str, Any]:
            async with self.pool.acquire() as conn:
                ids = [w.account_id for w in self.wallets] + self.merchant_accounts
                ids += [ref.account_id for ref in self.shared.values()]
                balances = await conn.fetch(
                    """SELECT account_id, total, available, frozen FROM accounts
                       WHERE account_id = ANY($1)""",
                    ids,
                )
                holds = await conn.fetch(
                    """SELECT order_id, account_id, state, amount, confirmed_amount
                       FROM fund_holds WHERE order_id = ANY($1)""",
                    gids,
                )
                barrier = await conn.fetch(
                    """SELECT gid, phase, origin FROM tcc_barrier
                       WHERE branch = 'funds' AND gid = ANY($1)""",
                    gids,
                )
                posted = await conn.fetch(
                    """SELECT order_id, count(*) AS n FROM ledger_transactions
                       WHERE kind = 'purchase' AND order_id = ANY($1) GROUP BY order_id""",
                    gids,
                )
                # No sweeper runs here: expired holds stay held by design (liveness is the
                # pipeline's business), so only the consistency checks apply.
                audit = await run_audit(conn, liveness=False)
            return {
                "balances": {
                    r["account_id"]: (r["total"], r["available"], r["frozen"]) for r in balances
                },
                "holds": holds,
                "barrier": barrier,
                "posted": {r["order_id"]: r["n"] for r in posted},
                "audit": audit,
            }

        snap = self.runner.run(snapshot())
        balances = snap["balances"]
        for w in self.wallets:
            assert balances[w.account_id] == (w.total, w.available, w.frozen), w
        for account_id, total in zip(self.merchant_accounts, self.merchant_totals, strict=True):
            assert balances[account_id] == (total, total, 0), account_id
        for name, ref in self.shared.items():
            expected = self.shared_base[name] + self.shared_delta[name]
            assert balances[ref.account_id][0] == expected, name

        holds: dict[str, list[tuple[str, int, int]]] = {}
        for r in snap["holds"]:
            order = self.orders_by_gid[r["order_id"]]
            assert r["account_id"] == self.wallets[order.wallet].account_id, dict(r)
            holds.setdefault(r["order_id"], []).append(
                (r["state"], r["amount"], r["confirmed_amount"])
            )
        barrier: dict[str, set[tuple[str, str]]] = {}
        for r in snap["barrier"]:
            barrier.setdefault(r["gid"], set()).add((r["phase"], r["origin"]))
        for gid, order in self.orders_by_gid.items():
            hold = order.hold
            assert holds.get(gid, []) == ([hold] if hold else []), (gid, order)
            assert barrier.get(gid, set()) == BARRIER_ROWS[order.phase], (gid, order)
            expected_posts = 1 if order.phase is OrderPhase.CONFIRMED else 0
            assert snap["posted"].get(gid, 0) == expected_posts, (gid, order)

        audit = snap["audit"]
        assert audit["ok"], audit["violations"]


def bind(runner: LoopThread, pool: asyncpg.Pool) -> type[MoneyCore]:
    """The machine class hypothesis instantiates, bound to this test's loop and pool."""

    class MoneyMachine(MoneyCore):
        def __init__(self) -> None:
            super().__init__(runner, pool)

    return MoneyMachine


def test_money_core_matches_its_model(services: Settings) -> None:
    runner = LoopThread()
    try:
        # A database of its own: the expired holds it leaves would be flagged by the
        # liveness checks of every later test's audit.
        scratch = runner.run(create_scratch(services, "sm"))
        try:
            pool = runner.run(create_pool(scratch, max_size=4))
            try:
                run_state_machine_as_test(bind(runner, pool), settings=MACHINE_SETTINGS)
            finally:
                runner.run(pool.close())
        finally:
            runner.run(drop_scratch(scratch))
    finally:
        runner.close()
