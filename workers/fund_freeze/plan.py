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
