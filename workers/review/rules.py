"""Which operator action fits which case, as pure rules over what our records say now.

succeed  Confirm: the payment is confirmed (settlement sells the holds and pays merchants;
         a top-up is credited by the wallet stage).
fail     Cancel: the payment failed (settlement releases every hold; a top-up is failed by
         the wallet stage; a withdrawal's hold is cancelled, its funds back in the wallet).
refund   Give the buyer's money back: re-open a held gateway refund, refund the charge of an
         order that cannot be sold (and cancel it), or refund a settled order as a whole.
explain  Close the case with the reason only: allowed when nothing is left held.
"""

from dataclasses import dataclass
from typing import Literal

Action = Literal["succeed", "fail", "refund", "explain"]
ACTIONS: tuple[Action, ...] = ("succeed", "fail", "refund", "explain")
OPERATOR_REASON = "operator_"  # reason codes of the decisions operators publish

# The actions that can make sense for each kind (the state may still refuse one).
FITS: dict[str, tuple[Action, ...]] = {
    "payment_unresolved": ("succeed", "fail"),
    "top_up_unresolved": ("succeed", "fail", "explain"),
    "amount_mismatch": ("refund", "explain"),
    "race_loser": ("refund", "fail", "explain"),
    "hold_expired": ("refund", "fail", "explain"),
    "confirm_after_cancel": ("refund", "explain"),
    "cancel_after_confirm": ("refund", "explain"),
    "late_money_held": ("refund", "explain"),
    "refund_held": ("refund", "explain"),
    "recon_exception": ("explain",),
    "dead_letter": ("explain",),
    "settlement_check": ("refund", "fail", "explain"),
}


@dataclass(frozen=True)
class Facts:
    """What our records say about a case's subject now."""

    kind: str
    order_state: str | None = None
    payment_status: str | None = None
    gateway_ref: str | None = None  # the charge the payment was decided with
    holds_open: bool = False  # a fund, stock or coupon hold of the order is still held
    refund_status: str | None = None  # the case's gateway refund, if it is about one
    refund_kind: str | None = None  # late_payment | order_refund
    charge_refunded: bool = False  # the payment's charge has a gateway refund already
    order_refund_status: str | None = None  # of an order refund: pending | completed
    card_outcome: str | None = None  # of a completed order refund: succeeded | to_wallet
    operation_kind: str | None = None  # the case is about a wallet operation: top_up | withdrawal
    operation_status: str | None = None


@dataclass(frozen=True)
class Plan:
    """What an action does, or why it is refused (`refused` is set)."""

    steps: tuple[str, ...] = ()
    refused: str | None = None


def _refuse(why: str) -> Plan:
    return Plan(refused=why)


def plan(action: Action, f: Facts) -> Plan:
    """The steps `action` takes on a case of facts `f`, or why it does not fit."""
    fits = FITS.get(f.kind, ("explain",))
    if action not in fits:
        if f.kind == "recon_exception":
            return _refuse("resolve a reconciliation exception with `payflow recon resolve`")
        return _refuse(f"{action} does not fit a {f.kind} case; use {' or '.join(fits)}")
    if f.operation_kind is not None:
        return _wallet(action, f, fits)
    if action == "explain":
        closing = " or ".join(a for a in fits if a != "explain")
        if f.refund_kind == "order_refund" and f.order_refund_status == "pending":
            return _refuse(
                "the order refund's card share still waits in card_refunds_payable: refund "
                "sends it again"
            )
        if f.holds_open:
            return _refuse(f"order holds are still held: {closing} first")
        if f.order_state == "manual_review":
            return _refuse(f"the order is still in manual_review: {closing} closes it")
        return Plan(("close",))
    if action == "succeed":
        return _succeed(f)
    if action == "fail":
        return _fail(f)
    return _refund(f)


def _succeed(f: Facts) -> Plan:
    if f.order_state != "manual_review" or f.payment_status != "manual_review":
        return _refuse(
            f"only an order and payment in manual_review can be confirmed "
            f"(order {f.order_state}, payment {f.payment_status})"
        )
    if f.gateway_ref is None:
        return _refuse("the gateway's reference of the charge is unknown: pass --gateway-ref")
    return Plan(("payment_succeeded", "record_charge", "publish_confirm"))


def _fail(f: Facts) -> Plan:
    if f.order_state != "manual_review":
        return _refuse(f"only an order in manual_review can be cancelled (it is {f.order_state})")
    if f.payment_status == "succeeded":
        return _refuse(
            f"the gateway charged this order ({f.gateway_ref}): use refund, which cancels it "
            "and refunds the charge"
        )
    steps = ("payment_failed",) if f.payment_status == "manual_review" else ()
    return Plan((*steps, "publish_cancel"))


def _refund(f: Facts) -> Plan:
    if f.kind in ("late_money_held", "refund_held"):
        if f.refund_kind == "order_refund" and f.order_refund_status != "pending":
            paid = "to the wallet" if f.card_outcome == "to_wallet" else "another way"
            return _refuse(
                f"the order refund's card share was paid back {paid} already: it is not sent "
                "again from review; check with the gateway and use explain"
            )
        if f.refund_kind not in ("late_payment", "order_refund"):
            return _refuse(f"a {f.refund_kind} refund is not sent again from review")
        if f.refund_status != "held_for_review":
            return _refuse(f"the refund is {f.refund_status}, not held for review")
        return Plan(("reopen_refund",))
    if f.order_state == "settled":
        return Plan(("publish_order_refund",))
    if f.order_state not in ("manual_review", "cancelled"):
        return _refuse(f"the order is {f.order_state}: nothing to refund from review")
    if f.gateway_ref is None:
        return _refuse("no gateway charge is known for this order: use fail or explain")
    steps = () if f.charge_refunded else ("open_charge_refund",)
    if f.order_state == "manual_review":
        steps = (*steps, "publish_cancel")
    if not steps:
        return _refuse("the charge is being refunded already and the order is closed")
    return Plan(steps)


def _wallet(action: Action, f: Facts, fits: tuple[Action, ...]) -> Plan:
    """A case about a wallet operation: an unresolved top-up, or a withdrawal whose hold
    could not be confirmed after its payout."""
    in_review = f.operation_status in ("requested", "manual_review")
    if action == "explain":
        if f.holds_open:
            return _refuse("the withdrawal's hold is still held: fail cancels it")
        if f.operation_kind == "top_up" and f.payment_status == "manual_review":
            return _refuse("the top-up is still in manual_review: succeed or fail closes it")
        return Plan(("close",))
    if action == "refund":
        return _refuse("refund fits an order's case: use fail or explain")
    if f.operation_kind == "withdrawal":
        if action != "fail":
            return _refuse(f"{action} does not fit a withdrawal: use fail or explain")
        if not f.holds_open or f.operation_status != "manual_review":
            return _refuse(
                f"nothing is held for this withdrawal (it is {f.operation_status}): use explain"
            )
        return Plan(("cancel_withdrawal",))
    if f.payment_status != "manual_review" or not in_review:
        return _refuse(
            f"only a top-up and its payment in manual_review can be decided "
            f"(operation {f.operation_status}, payment {f.payment_status})"
        )
    if action == "succeed":
        if f.gateway_ref is None:
            return _refuse("the gateway's reference of the charge is unknown: pass --gateway-ref")
        return Plan(("payment_succeeded", "record_charge", "publish_top_up_result"))
    return Plan(("payment_failed", "publish_top_up_result"))
