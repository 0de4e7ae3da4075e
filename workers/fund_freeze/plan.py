"""Pure rules: how an order is paid (wallet part, gateway part) and the platform's fee."""

from dataclasses import dataclass


class InsufficientWallet(Exception):
    pass


@dataclass(frozen=True)
class PaymentPlan:
    wallet_part: int
    gateway_part: int


def plan_payment(preference: str, total: int, wallet_available: int) -> PaymentPlan:
    if preference == "gateway_only":
        return PaymentPlan(0, total)
    if preference == "wallet_only":
        if wallet_available < total:
            raise InsufficientWallet(f"wallet has {wallet_available}, order needs {total}")
        return PaymentPlan(total, 0)
    if preference == "wallet_first":
        wallet = min(max(wallet_available, 0), total)
        return PaymentPlan(wallet, total - wallet)
    raise ValueError(f"unknown payment preference {preference!r}")


def platform_fee(amount: int, fee_bps: int) -> int:
    """Rounded down: a fraction of a minor unit is never taken from a merchant."""
    return amount * fee_bps // 10_000


@dataclass(frozen=True)
class Wanted:
    """What one order asks of its buyer's wallet."""

    order_id: str
    wallet: str
    preference: str
    total: int


def plan_batch(
    wanted: list[Wanted], available: dict[str, int]
) -> dict[str, PaymentPlan | InsufficientWallet]:
    """Each order's plan, in the batch's order: a wallet that pays for one order has that
    much less for the next (the freezes are applied together at the end of the batch)."""
    left = dict(available)
    plans: dict[str, PaymentPlan | InsufficientWallet] = {}
    for w in wanted:
        try:
            plan = plan_payment(w.preference, w.total, left.get(w.wallet, 0))
        except InsufficientWallet as short:
            # Kept without its traceback: its frames (this one, and through it every caller's,
            # with the whole batch) would be a reference cycle only the garbage collector
            # frees, tens of thousands of objects per batch.
            plans[w.order_id] = short.with_traceback(None)
            continue
        left[w.wallet] = left.get(w.wallet, 0) - plan.wallet_part
        plans[w.order_id] = plan
    return plans
