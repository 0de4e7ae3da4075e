"""Fault modes: which ones exist, how they are written, and which payments they hit.

Each fault has a rate in [0, 1]. Whether it hits a payment is decided from the seed, the
fault's name and the payment id alone, so concurrency or request order never changes which
payments get which fault, and a run can be reproduced.
"""

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FAULTS = (
    "latency",
    "error_before_charge",
    "timeout_after_charge",
    "duplicate_callback",
    "late_callback",
    "reorder_callbacks",
    "lost_callback",
    "wrong_amount",
    "bad_signature",
    "unannounced_charge",
    "double_charge",
    "refund_failure",
)


def parse_fault(text: str) -> tuple[str, float]:
    """ "late_callback=0.2" -> ("late_callback", 0.2); ValueError says what is wrong."""
    name, sep, raw = (part.strip() for part in text.partition("="))
    if not sep:
        raise ValueError(f"fault {text!r} is not NAME=RATE (e.g. late_callback=0.2)")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; faults: {', '.join(FAULTS)}")
    try:
        rate = float(raw)
    except ValueError:
        raise ValueError(f"fault {name}: rate {raw!r} is not a number in [0, 1]") from None
    if not 0.0 <= rate <= 1.0:  # also refuses nan
        raise ValueError(f"fault {name}: rate {raw!r} is not a number in [0, 1]")
    return name, rate


def parse_faults(items: Iterable[str]) -> dict[str, float]:
    """Several NAME=RATE; a later one for the same name wins."""
    return dict(parse_fault(item) for item in items if item.strip())


def parse_fault_list(text: str) -> dict[str, float]:
    """The PAYFLOW_SIM_FAULTS form: "name=rate,name=rate"."""
    return parse_faults(text.split(","))


@dataclass(frozen=True)
class Faults:
    rates: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def hits(self, fault: str, payment_id: str) -> bool:
        if fault not in FAULTS:
            raise KeyError(f"unknown fault {fault!r}")
        rate = self.rates.get(fault, 0.0)
        if rate <= 0.0:
            return False
        return random.Random(f"{self.seed}:{fault}:{payment_id}").random() < rate

    def describe(self) -> str:
        return ",".join(f"{k}={v:g}" for k, v in sorted(self.rates.items())) or "none"
