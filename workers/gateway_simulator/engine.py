"""The gateway's business: charges and trades, voids, refunds, payouts, and settling what is
due. Synchronous SQLite work only (no await), called inside one write (writes.py) by the API."""

import secrets
import sqlite3
import time
from datetime import UTC, datetime

import structlog

from workers.gateway_simulator import records, views
from workers.gateway_simulator.answers import Answer, error
from workers.gateway_simulator.config import SimConfig
from workers.gateway_simulator.rules import decide, payout_declined
from workers.runtime.logs import debug_enabled

log = structlog.get_logger()


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def new_ref(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Engine:
    def __init__(self, conn: sqlite3.Connection, cfg: SimConfig) -> None:
        self.conn, self.cfg = conn, cfg

    def _charge_view(self, row: sqlite3.Row) -> dict[str, object]:
        return views.charge(row) if row["product"] == "direct" else views.trade(row)

    def _created_view(self, row: sqlite3.Row) -> dict[str, object]:
        if row["product"] == "direct":
            return views.charge_created(row)
        return views.checkout(row, self.cfg.public_url)

    def create_charge(
        self,
        product: str,
        payment_id: str,
        amount: int,
        currency: str,
        *,
        order_id: str | None = None,
        subject: str | None = None,
    ) -> Answer:
        faults = self.cfg.faults
        existing = records.charges_for(self.conn, product, payment_id)
        if existing:
            first = existing[0]
            same = (first["order_id"], first["amount"], first["currency"]) == (
                order_id,
                amount,
                currency,
            )
            if not same:
                return error(
                    409, "payment_id_reused", f"payment {payment_id} exists with other terms"
                )
            log.debug(
                "charge_exists",
                product=product,
                payment_id=payment_id,
                gateway_ref=first["gateway_ref"],
            )
            return Answer(200, self._created_view(first))
        outcome = decide(amount)
        unannounced = faults.hits("unannounced_charge", payment_id)
        copies = 2 if faults.hits("double_charge", payment_id) else 1
        rows = []
        for n in range(copies):
            stamp = now_iso()
            ref = new_ref("gw" if product == "direct" else "T")
            row = records.insert_charge(
                self.conn,
                gateway_ref=ref,
                product=product,
                payment_id=payment_id,
                order_id=order_id,
                subject=subject,
                amount=amount,
                currency=currency,
                status="pending",
                failure_reason=None,
                outcome=outcome.status,
                outcome_reason=outcome.failure_reason,
                deliveries=outcome.deliveries,
                reported_delta=outcome.reported_delta,
                announce=0 if unannounced else 1,
                settle_at=time.time() + self.cfg.timings.callback_delay_ms / 1000,
                created_at=stamp,
                updated_at=stamp,
            )
            rows.append(row)
            if debug_enabled():
                log.debug(
                    "charge_created",
                    product=product,
                    gateway_ref=ref,
                    payment_id=payment_id,
                    order_id=order_id,
                    amount=amount,
                    currency=currency,
                    outcome=outcome.status,
                    double_charge=n > 0,
                    unannounced=unannounced,
                )
        hold = (
            self.cfg.timings.hang_ms / 1000
            if faults.hits("timeout_after_charge", payment_id)
            else 0.0
        )
        if unannounced:
            return Answer(
                500, {"error": "internal_error", "detail": "try again later"}, hold_s=hold
            )
        return Answer(201, self._created_view(rows[0]), hold_s=hold)

    def void(self, product: str, gateway_ref: str) -> Answer:
        row = records.charge(self.conn, product, gateway_ref)
        what = "payment" if product == "direct" else "trade"
        if row is None:
            return error(404, "not_found", f"no {what} {gateway_ref!r}")
        if row["status"] == "pending":
            records.void_charge(self.conn, gateway_ref, views.CLOSED_BY_MERCHANT, now_iso())
            row = records.charge(self.conn, product, gateway_ref)
            assert row is not None
            log.info(
                "charge_voided",
                product=product,
                gateway_ref=gateway_ref,
                payment_id=row["payment_id"],
            )
        elif row["status"] != "voided":
            code = "not_voidable" if product == "direct" else "not_closable"
            return error(409, code, f"{what} {gateway_ref} is {row['status']}")
        return Answer(200, self._charge_view(row))

    def create_refund(
        self,
        product: str,
        refund_id: str,
        gateway_ref: str,
        amount: int,
        currency: str,
        reason: str | None,
    ) -> Answer:
        view = views.refund if product == "direct" else views.trade_refund
        existing = records.refund(self.conn, product, refund_id)
        if existing is not None:
            same = (existing["gateway_ref"], existing["amount"], existing["currency"]) == (
                gateway_ref,
                amount,
                currency,
            )
            if not same:
                return error(409, "refund_id_reused", f"refund {refund_id} exists with other terms")
            return Answer(200, view(existing))
        charge = records.charge(self.conn, product, gateway_ref)
        if charge is None:
            return error(404, "not_found", f"no payment {gateway_ref!r}")
        if charge["currency"] != currency:
            return error(400, "currency_mismatch", f"the payment is in {charge['currency']}")
        if charge["status"] != "succeeded":
            return error(409, "not_captured", f"payment {gateway_ref} is {charge['status']}")
        left = charge["amount"] - records.refunded_total(self.conn, gateway_ref)
        if amount > left:
            return error(
                409,
                "exceeds_captured",
                f"{amount} is more than the {left} left to refund on {gateway_ref}",
            )
        stamp, ref = now_iso(), new_ref("re" if product == "direct" else "R")
        records.insert_refund(
            self.conn,
            refund_ref=ref,
            product=product,
            refund_id=refund_id,
            gateway_ref=gateway_ref,
            payment_id=charge["payment_id"],
            amount=amount,
            currency=currency,
            reason=reason,
            status="pending",
            failure_reason=None,
            settle_at=time.time() + self.cfg.timings.callback_delay_ms / 1000,
            created_at=stamp,
            updated_at=stamp,
        )
        row = records.refund_by_ref(self.conn, ref)
        assert row is not None
        log.info(
            "refund_created",
            product=product,
            refund_ref=ref,
            refund_id=refund_id,
            gateway_ref=gateway_ref,
            payment_id=charge["payment_id"],
            amount=amount,
        )
        return Answer(201, view(row))

    def payout(self, payout_id: str, amount: int, currency: str, destination: str) -> Answer:
        row = records.payout(self.conn, payout_id)
        if row is None:
            declined = payout_declined(amount)
            records.insert_payout(
                self.conn,
                payout_id=payout_id,
                payout_ref=None if declined else new_ref("po"),
                amount=amount,
                currency=currency,
                destination=destination,
                status="declined" if declined else "paid",
                reason="account_closed" if declined else None,
                created_at=now_iso(),
            )
            row = records.payout(self.conn, payout_id)
            assert row is not None
            log.info(
                "payout_" + row["status"],
                payout_id=payout_id,
                amount=amount,
                currency=currency,
                payout_ref=row["payout_ref"],
            )
        elif (row["amount"], row["currency"], row["destination"]) != (
            amount,
            currency,
            destination,
        ):
            return error(409, "payout_id_reused", f"payout {payout_id} exists with other terms")
        if row["status"] == "declined":
            return Answer(
                402, {"payout_id": payout_id, "status": "declined", "reason": row["reason"]}
            )
        return Answer(
            201, {"payout_id": payout_id, "status": "paid", "payout_ref": row["payout_ref"]}
        )
