"""Pure rules of a refund of a settled order, over plain data.

What may be given back: never more than the buyer paid for a sub-order (what a platform
coupon covered was never the buyer's) net of earlier refunds, and never more items than
were bought net of items given back. Where it goes: wallet and card in the proportion the
order was paid, computed on running totals so the shares of all refunds add up exactly and
the card never gets back more than the gateway captured. Who pays it back: each merchant
its share, the platform its fee on that share (rounded down), so the legs sum exactly.
"""

from dataclasses import dataclass

from contracts.base import Refusal
from workers.ledger.postings import Leg

# The platform's liability for card shares between the refund and the gateway's answer.
CARD_REFUNDS = "card_refunds_payable"


@dataclass(frozen=True)
class Line:
    """One item line of a sub-order, as bought."""

    sku_id: str
    quantity: int
    line_total: int
    returned: int = 0  # given back by earlier refunds


@dataclass(frozen=True)
class SubOrder:
    sub_order_id: str
    merchant_id: str
    gross: int  # what the buyer paid for it plus the platform's coupon subsidy
    fee: int
    subsidy: int
    subtotal: int  # list price of its items, before discounts
    refunded: int = 0
    lines: tuple[Line, ...] = ()

    @property
    def paid(self) -> int:
        return self.gross - self.subsidy

    @property
    def left(self) -> int:
        return self.paid - self.refunded


@dataclass(frozen=True)
class Paid:
    """The order as it was paid, and what earlier refunds gave back."""

    order_state: str
    currency: str
    total: int  # wallet part + gateway part
    gateway_part: int
    refunded: int = 0
    card_refunded: int = 0


@dataclass(frozen=True)
class Ask:
    sub_order_id: str | None  # None: the whole order
    amount: int | None  # None: everything left in the scope (or the items' share)
    currency: str | None
    items: tuple[tuple[str, int], ...] = ()
    restock: bool = False


@dataclass(frozen=True)
class Part:
    sub_order_id: str
    merchant_id: str
    amount: int
    fee_back: int


@dataclass(frozen=True)
class Returned:
    sub_order_id: str
    sku_id: str
    quantity: int


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...]
    to_wallet: int
    to_card: int
    returned: tuple[Returned, ...] = ()
    restock: bool = False

    @property
    def amount(self) -> int:
        return self.to_wallet + self.to_card


def plan(paid: Paid, subs: list[SubOrder], ask: Ask) -> Plan | Refusal:
    if ask.currency is not None and ask.currency != paid.currency:
        return Refusal("currency_mismatch", f"the order was paid in {paid.currency}")
    if paid.order_state != "settled":
        return Refusal("order_not_settled", f"the order is {paid.order_state}")
    scope = (
        subs
        if ask.sub_order_id is None
        else [s for s in subs if s.sub_order_id == ask.sub_order_id]
    )
    if not scope:
        return Refusal("unknown_sub_order", f"the order has no sub-order {ask.sub_order_id}")
    returned = _returned(scope, ask)
    if isinstance(returned, Refusal):
        return returned
    left = sum(s.left for s in scope)
    value = sum(item_value(scope[0], r) for r in returned) if ask.items else left
    amount = value if ask.amount is None else ask.amount
    if amount > left:
        return Refusal("exceeds_captured", f"{amount} asked, {left} refundable")
    if ask.items and amount > value:
        return Refusal("exceeds_items_value", f"{amount} asked, the items are worth {value}")
    if amount <= 0:
        return Refusal("nothing_to_refund", "nothing is left to refund")
    shares = allocate(amount, [s.left for s in scope])
    parts = tuple(
        Part(s.sub_order_id, s.merchant_id, a, s.fee * a // s.gross)
        for s, a in zip(scope, shares, strict=True)
        if a > 0
    )
    to_card = card_share(paid, amount)
    return Plan(parts, amount - to_card, to_card, returned, ask.restock)


def _returned(scope: list[SubOrder], ask: Ask) -> tuple[Returned, ...] | Refusal:
    """The items given back: those named, or with restock and none named, every item of
    the scope not given back yet."""
    if not ask.items:
        if not ask.restock:
            return ()
        return tuple(
            Returned(s.sub_order_id, line.sku_id, line.quantity - line.returned)
            for s in scope
            for line in s.lines
            if line.quantity > line.returned
        )
    if ask.sub_order_id is None:
        return Refusal("items_need_sub_order", "items can be named only with their sub_order_id")
    sub = scope[0]
    lines = {line.sku_id: line for line in sub.lines}
    out = []
    for sku_id, qty in ask.items:
        line = lines.get(sku_id)
        if line is None:
            return Refusal("unknown_item", f"sub-order {sub.sub_order_id} has no item {sku_id}")
        if qty > line.quantity - line.returned:
            left = line.quantity - line.returned
            return Refusal("exceeds_quantity", f"{qty} of {sku_id} asked, {left} not given back")
        out.append(Returned(sub.sub_order_id, sku_id, qty))
    if len({r.sku_id for r in out}) != len(out):
        return Refusal("duplicate_item", "each item may be named once")
    return tuple(out)


def item_value(sub: SubOrder, item: Returned) -> int:
    """The items' share of what the buyer paid for the sub-order (discounts spread over
    its lines by list price), rounded down."""
    line = next(line for line in sub.lines if line.sku_id == item.sku_id)
    if sub.subtotal == 0:
        return 0
    return line.line_total * item.quantity * sub.paid // (line.quantity * sub.subtotal)


def allocate(amount: int, lefts: list[int]) -> list[int]:
    """Split `amount` (at most sum(lefts)) over the sub-orders in proportion to what each
    has left; the rounding remainder goes one unit each to the largest fractions, so no
    share exceeds its sub-order's left."""
    total = sum(lefts)
    if not 0 < amount <= total:
        raise ValueError(f"cannot allocate {amount} over {total}")
    shares = [amount * left // total for left in lefts]
    fractions = sorted(range(len(lefts)), key=lambda i: -(amount * lefts[i] % total))
    for i in fractions[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def card_share(paid: Paid, amount: int) -> int:
    """The card's part of this refund: the card's proportion of everything refunded so far,
    this one included, less what the card got back before; never more than is left of the
    gateway part."""
    if paid.total == 0:
        return 0
    due = (paid.refunded + amount) * paid.gateway_part // paid.total - paid.card_refunded
    return max(0, min(due, amount, paid.gateway_part - paid.card_refunded))


def refund_legs(
    plan: Plan,
    *,
    merchants: dict[str, str],
    clearing: str,
    fee_income: str,
    wallet: str,
    card_refunds: str,
) -> list[Leg]:
    """Merchants and the fee account give back into the clearing account; it pays the
    wallet share to the wallet and parks the card share until the gateway answers."""
    legs = []
    for p in plan.parts:
        account = merchants[p.merchant_id]
        legs.append(
            Leg(account, clearing, p.amount - p.fee_back, f"refund:merchant:{p.sub_order_id}")
        )
        legs.append(Leg(fee_income, clearing, p.fee_back, f"refund:fee:{p.sub_order_id}"))
    legs.append(Leg(clearing, wallet, plan.to_wallet, "refund:wallet"))
    legs.append(Leg(clearing, card_refunds, plan.to_card, "refund:card"))
    return legs


def card_outcome_leg(
    *, succeeded: bool, card_refunds: str, gateway_clearing: str, wallet: str, amount: int
) -> Leg:
    """The gateway's answer on the card share: it left through the gateway, or the gateway
    would not refund the card and the buyer gets it in the wallet instead."""
    if succeeded:
        return Leg(card_refunds, gateway_clearing, amount, "card_refund:sent")
    return Leg(card_refunds, wallet, amount, "card_refund:to_wallet")
