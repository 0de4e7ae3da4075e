"""Callback bodies exactly as the gateway signs them (docs/gateway-api.md, "Callbacks"):
direct is `GatewayCallbackBody`, redirect is the Alipay-like notify. `delta` is added to the
reported amount (the 99-cent rule, the wrong_amount fault); the records stay right."""

import json
import sqlite3
from datetime import datetime

from contracts.events.gateway import GatewayCallbackBody
from contracts.money import Money
from workers.gateway_simulator.views import REFUND_STATUS, TRADE_STATUS


def charge_body(row: sqlite3.Row, callback_id: str, delta: int) -> str:
    amount = row["amount"] + delta
    if row["product"] == "direct":
        return GatewayCallbackBody(
            callback_id=callback_id,
            kind="payment",
            gateway_ref=row["gateway_ref"],
            payment_id=row["payment_id"],
            status=row["status"],
            amount=Money(amount=amount, currency=row["currency"]),
            failure_reason=row["failure_reason"],
            occurred_at=datetime.fromisoformat(row["updated_at"]),
        ).model_dump_json()
    notify = {
        "notify_id": callback_id,
        "notify_type": "trade_status_sync",
        "out_trade_no": row["payment_id"],
        "trade_no": row["gateway_ref"],
        "trade_status": TRADE_STATUS[row["status"]],
        "total_amount": amount,
        "currency": row["currency"],
    }
    if row["status"] == "succeeded":
        notify["gmt_payment"] = row["succeeded_at"]
    else:
        notify["close_reason"] = row["failure_reason"]
    return json.dumps(notify, separators=(",", ":"))


def refund_body(refund: sqlite3.Row, trade_total: int, callback_id: str, delta: int) -> str:
    amount = refund["amount"] + delta
    if refund["product"] == "direct":
        return GatewayCallbackBody(
            callback_id=callback_id,
            kind="refund",
            gateway_ref=refund["gateway_ref"],
            payment_id=refund["payment_id"],
            refund_id=refund["refund_id"],
            refund_ref=refund["refund_ref"],
            status=refund["status"],
            amount=Money(amount=amount, currency=refund["currency"]),
            failure_reason=refund["failure_reason"],
            occurred_at=datetime.fromisoformat(refund["updated_at"]),
        ).model_dump_json()
    notify = {
        "notify_id": callback_id,
        "notify_type": "refund_status_sync",
        "out_trade_no": refund["payment_id"],
        "trade_no": refund["gateway_ref"],
        "out_request_no": refund["refund_id"],
        "refund_no": refund["refund_ref"],
        "refund_status": REFUND_STATUS[refund["status"]],
        "refund_amount": amount,
        "total_amount": trade_total,  # the trade's, as Alipay's refund notify carries it
        "currency": refund["currency"],
    }
    if refund["failure_reason"]:
        notify["fail_reason"] = refund["failure_reason"]
    return json.dumps(notify, separators=(",", ":"))
