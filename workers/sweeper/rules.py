"""What the sweeper does with what it learned, over plain data (Kill Bill's janitor)."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from workers.gateway.port import Charge, Notice

Action = Literal["decide", "next_check", "resend", "never_received", "manual_review"]
Resent = Literal["accepted", "refused", "unknown"]


def sync_task_key(payment_id: str, check_no: int) -> str:
    return f"sync:{payment_id}:{check_no}"


def void_task_key(payment_id: str, try_no: int) -> str:
    return f"void:{payment_id}:{try_no}"


def window_task_key(order_id: str) -> str:
    return f"window:{order_id}"


def void_key(payment_id: str) -> str:
    return f"payflow:void:{payment_id}"


def step_s(checks_done: int, schedule: list[float]) -> float | None:
    """Seconds until the next check after `checks_done` checks; None past the schedule."""
    return schedule[checks_done] if checks_done < len(schedule) else None


def in_flight_s(gateway_timeout_s: float, gateway_attempts: int) -> float:
    """How long after its request a create call can still be in flight: until then an
    empty answer to a query does not mean the gateway never got it."""
    return gateway_timeout_s * gateway_attempts


def pay_by(created_at: datetime, explicit: datetime | None, window_s: float) -> datetime:
    return explicit or created_at + timedelta(seconds=window_s)


def notice_for(charge: Charge) -> Notice:
    """A charge the gateway reported, read as a verified notice (the query is our own
    authenticated request): decided by the same path as a callback."""
    succeeded = charge.status == "succeeded"
    reason = None if succeeded else (charge.failure_reason or charge.status)
    return Notice(
        callback_id=f"sync:{charge.gateway_ref}:{charge.status}",
        kind="payment",
        payment_id=charge.payment_id,
        gateway_ref=charge.gateway_ref,
        status="succeeded" if succeeded else "failed",
        amount=charge.amount,
        failure_reason=reason,
    )


@dataclass(frozen=True)
class Plan:
    action: Action
    result: str  # for metrics and the task row
    notices: list[Notice] = field(default_factory=list)
    next_in_s: float | None = None


def after_query(
    charges: list[Charge],
    checks_done: int,
    age_s: float,
    in_flight: float,
    schedule: list[float],
    *,
    window_left_s: float,
    resend_margin_s: float,
) -> Plan:
    """`checks_done` counts this check. Decided charges are decided (successes first, so a
    payment with any success succeeds and the others are refunded as second charges);
    charges still pending are asked about again (the payment window bounds them).

    Nothing at the gateway, once the create call cannot be in flight any more: the request
    never arrived. While the payment window is open (`window_left_s`, seconds until it
    closes) the buyer could still pay, so the same request is sent again (same key, same
    parameters: the gateway charges at most once) and we keep asking on the schedule; a
    re-send is made only while its answer (`resend_margin_s`, one call's timeout) can come
    before the window closes. Once the window has closed it is never received."""
    final = [c for c in charges if c.status != "pending"]
    if final:
        final.sort(key=lambda c: c.status != "succeeded")
        pending_left = len(final) < len(charges)
        return Plan(
            "decide",
            final[0].status,
            [notice_for(c) for c in final],
            _keep_asking(checks_done, schedule) if pending_left else None,
        )
    if charges:
        return Plan("next_check", "pending", next_in_s=_keep_asking(checks_done, schedule))
    if age_s < in_flight:
        wait = max(in_flight - age_s, _keep_asking(checks_done, schedule))
        return Plan("next_check", "not_found_yet", next_in_s=wait)
    if window_left_s > resend_margin_s:
        return Plan("resend", "resend", next_in_s=_keep_asking(checks_done, schedule))
    if window_left_s > 0:  # too late to re-send; asked once more when the window closes
        wait = min(window_left_s, _keep_asking(checks_done, schedule))
        return Plan("next_check", "window_closing", next_in_s=wait)
    return Plan("never_received", "never_received")


def after_resend(outcome: Resent, checks_done: int, schedule: list[float]) -> Plan:
    """What the re-sent create call came to. Accepted: the charge now exists and is decided
    by its callback or the next check. Unknown: asked again on the schedule (the window
    bounds it). Refused: a definite no, so the payment was never received."""
    if outcome == "refused":
        return Plan("never_received", "resend_refused")
    result = "resent" if outcome == "accepted" else "resend_unknown"
    return Plan("next_check", result, next_in_s=_keep_asking(checks_done, schedule))


def after_unknown(checks_done: int, schedule: list[float]) -> Plan:
    """The query itself got no answer: next step of the schedule, then a human."""
    nxt = step_s(checks_done, schedule)
    if nxt is None:
        return Plan("manual_review", "manual_review")
    return Plan("next_check", "unknown", next_in_s=nxt)


def _keep_asking(checks_done: int, schedule: list[float]) -> float:
    nxt = step_s(checks_done, schedule)
    return schedule[-1] if nxt is None else nxt
