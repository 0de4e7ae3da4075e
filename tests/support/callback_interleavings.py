"""The model behind tests/integration/test_callback_interleavings.py, over plain data: what
the gateway does for a payment (a scenario's timeline of charge states), the messages that
reach us (callbacks, duplicated, late or lost; sweeper queries; settlement), the notices
each becomes, and the final state each scenario must end in."""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import strategies as st

from contracts.events.gateway import GatewayCallbackReceived, GatewayCallbackReceivedPayload
from contracts.events.payments import PaymentFailed
from contracts.money import Money
from workers.gateway.port import Charge, ChargeStatus, Notice
from workers.sweeper import rules

EUR500 = Money(amount=500, currency="EUR")
STEP = 10  # the gateway's events happen at STEP, 2*STEP, ...; messages are drawn around them
LATEST = 4 * STEP  # how late a callback copy may arrive after the gateway sent it
# Where a payment may be when the answers start: sent, answered pending, or timed out.
OPEN = ["requesting", "pending", "unknown"]


@dataclass(frozen=True)
class Scenario:
    name: str
    timeline: tuple[tuple[str, ChargeStatus], ...]  # (charge, status) in the gateway's order
    expired: bool  # the payment window closed the order before the gateway answered
    payment: tuple[str, str | None]  # final (status, role of payment_requests.gateway_ref)
    order: str
    charges: tuple[tuple[str, str], ...]  # (role, status), sorted
    refunds: tuple[tuple[str, str], ...]  # late refunds: (role, reason), sorted
    events: tuple[tuple[str, int], ...]  # events that matter, sorted (name, count)


SCENARIOS = [
    Scenario(
        "one_success",
        (("A", "succeeded"),),
        False,
        ("succeeded", "decided"),
        "paid",
        (("decided", "succeeded"),),
        (),
        (("PaymentSucceeded", 1),),
    ),
    Scenario(
        "pending_then_success",
        (("A", "pending"), ("A", "succeeded")),
        False,
        ("succeeded", "decided"),
        "paid",
        (("decided", "succeeded"),),
        (),
        (("PaymentSucceeded", 1),),
    ),
    Scenario(
        "one_failure",
        (("A", "pending"), ("A", "failed")),
        False,
        ("failed", "decided"),
        "payment_requested",  # settlement cancels it on PaymentFailed
        (("decided", "failed"),),
        (),
        (("PaymentFailed", 1),),
    ),
    Scenario(
        "second_charge",  # a gateway bug: one payment charged twice
        (("A", "succeeded"), ("B", "succeeded")),
        False,
        ("succeeded", "decided"),
        "paid",
        (("decided", "succeeded"), ("other", "succeeded")),
        (("other", "second_charge"),),
        (("PaymentLateMoney", 1), ("PaymentSucceeded", 1)),
    ),
    Scenario(
        "window_closed_then_success",  # the buyer paid after the window cancelled the order
        (("A", "pending"), ("A", "succeeded")),
        True,
        ("expired", None),
        "cancelled",
        (("other", "succeeded"),),
        (("other", "late_success"),),
        (("PaymentFailed", 1), ("PaymentLateMoney", 1)),
    ),
]


@dataclass(frozen=True)
class Msg:
    kind: str  # callback | query | settle (settlement consumes the window's PaymentFailed)
    at: int  # when it reaches us
    charge: str = ""
    status: str = ""
    delta: int = 0  # added to the amount the callback reports (the wrong_amount fault)


@dataclass(frozen=True)
class Draw:
    messages: tuple[Msg, ...]  # in the order they reach us
    action: str  # PAYFLOW_LATE_PAYMENT_ACTION
    initial: str  # the payment's status when the answers start


def callbacks(scenario: Scenario) -> list[Msg]:
    """What the gateway sends: one callback per final state, when it happens."""
    return [
        Msg("callback", (i + 1) * STEP, charge, status)
        for i, (charge, status) in enumerate(scenario.timeline)
        if status != "pending"
    ]


@st.composite
def draws(draw: st.DrawFn, scenario: Scenario) -> Draw:
    end = len(scenario.timeline) * STEP + LATEST
    arriving: list[tuple[int, int, Msg]] = []
    for sent in callbacks(scenario):
        for _ in range(draw(st.integers(0, 3))):  # 0: lost; more: duplicated
            delay = draw(st.integers(0, LATEST))  # late, hence reordered
            arriving.append((sent.at + delay, draw(st.integers(0, 9)), sent))
    for at in draw(st.lists(st.integers(0, end), max_size=3)):
        arriving.append((at, draw(st.integers(0, 9)), Msg("query", at)))
    if scenario.expired:
        at = draw(st.integers(0, end))
        arriving.append((at, draw(st.integers(0, 9)), Msg("settle", at)))
    arriving.sort(key=lambda m: (m[0], m[1]))
    final = Msg("query", end + 1)  # the sweeper's query that finds what was lost
    initial = "unknown" if scenario.expired else draw(st.sampled_from(OPEN))
    messages = (*(m for _, _, m in arriving), final)
    return Draw(messages, draw(st.sampled_from(["refund", "review"])), initial)


def canonical(scenario: Scenario) -> Draw:
    settle = [Msg("settle", 0)] if scenario.expired else []
    # As `draws`: a payment the window closes had no answer from the gateway.
    initial = "unknown" if scenario.expired else "pending"
    return Draw((*settle, *callbacks(scenario)), "refund", initial)


@dataclass(frozen=True)
class Payment:
    correlation: str  # the order id, or the wallet operation id of a top-up
    order_id: str | None  # None for a top-up
    payment_id: str
    refs: dict[str, str]  # charge role in the timeline -> its gateway_ref
    window_failed: PaymentFailed | None


def gateway_at(scenario: Scenario, payment: Payment, at: int) -> list[Charge]:
    """The charges the gateway reports at time `at` (a status query's answer)."""
    now: dict[str, ChargeStatus] = {}
    for i, (charge, status) in enumerate(scenario.timeline):
        if (i + 1) * STEP <= at:
            now[charge] = status
    return [
        Charge(
            payment.refs[c],
            payment.payment_id,
            s,
            EUR500,
            "card_declined" if s == "failed" else None,
        )
        for c, s in now.items()
    ]


def query_notices(scenario: Scenario, payment: Payment, at: int, in_flight: float) -> list[Notice]:
    charges = gateway_at(scenario, payment, at)
    if scenario.expired:  # the void pass: a pending charge cannot be voided (it gets paid)
        return [rules.notice_for(c) for c in charges if c.status == "succeeded"]
    # Asked while the create call may still be in flight and the window is open.
    plan = rules.after_query(
        charges, 1, 0.0, in_flight, [1.0], window_left_s=600.0, resend_margin_s=1.0
    )
    return plan.notices if plan.action == "decide" else []


def callback(payment: Payment, msg: Msg) -> tuple[GatewayCallbackReceived, Notice]:
    """One delivery of a callback: a webhook request of its own, the gateway's callback id."""
    ref = payment.refs[msg.charge]
    notice = Notice(
        callback_id=f"cb:{ref}:{msg.status}",
        kind="payment",
        payment_id=payment.payment_id,
        gateway_ref=ref,
        status=msg.status,  # type: ignore[arg-type]
        amount=Money(amount=EUR500.amount + msg.delta, currency=EUR500.currency),
        failure_reason="card_declined" if msg.status == "failed" else None,
    )
    received = GatewayCallbackReceivedPayload(
        provider="direct",
        raw_body="{}",
        key_id="k1",
        timestamp=0,
        signature="test",
        received_at=datetime.now(UTC),
    )
    cause = GatewayCallbackReceived.new(
        payment.payment_id, received, idempotency_key=f"direct:{uuid.uuid4().hex}"
    )
    return cause, notice


# A top-up's decision is one event whatever the outcome.
TOP_UP_EVENTS = {"PaymentSucceeded": "TopUpGatewayResult", "PaymentFailed": "TopUpGatewayResult"}


def expected(scenario: Scenario, action: str, top_up: bool = False) -> dict[str, object]:
    status = "held_for_review" if action == "review" else "requested"
    events = [((TOP_UP_EVENTS.get(n, n) if top_up else n), c) for n, c in scenario.events]
    clearing = "external:world:gateway_clearing:EUR"
    payable = "platform:payflow:late_payments_payable:EUR"
    return {
        "payment": scenario.payment,
        "order": None if top_up else scenario.order,
        "charges": sorted((role, s, 500) for role, s in scenario.charges),
        "refunds": sorted(
            (role, "late_payment", reason, status, 500, "direct")
            for role, reason in scenario.refunds
        ),
        "postings": [
            ("late_payment", clearing, payable, 500, "late_payment:arrived")
            for _ in scenario.refunds
        ],
        "events": sorted(events),
        "sold_with": []
        if top_up
        else ["decided"] * dict(scenario.events).get("PaymentSucceeded", 0),
    }
