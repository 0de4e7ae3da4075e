"""Records as the API shows them: /v1 charges and refunds, /v2 trades and refunds."""

import sqlite3
from typing import Any

CLOSED_BY_MERCHANT = "closed_by_merchant"  # close_reason of a trade we were asked to close
TRADE_STATUS = {
    "pending": "WAIT_BUYER_PAY",
    "succeeded": "TRADE_SUCCESS",
    "failed": "TRADE_CLOSED",
    "voided": "TRADE_CLOSED",
}
REFUND_STATUS = {
    "pending": "REFUND_PENDING",
    "succeeded": "REFUND_SUCCESS",
    "failed": "REFUND_FAIL",
}


def charge(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "gateway_ref": row["gateway_ref"],
        "payment_id": row["payment_id"],
        "order_id": row["order_id"],
        "status": row["status"],
        "amount": {"amount": row["amount"], "currency": row["currency"]},
        "failure_reason": row["failure_reason"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def charge_created(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "gateway_ref": row["gateway_ref"],
        "payment_id": row["payment_id"],
        "status": row["status"],
    }


def refund(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "refund_id": row["refund_id"],
        "refund_ref": row["refund_ref"],
        "gateway_ref": row["gateway_ref"],
        "status": row["status"],
        "amount": {"amount": row["amount"], "currency": row["currency"]},
        "failure_reason": row["failure_reason"],
        "created_at": row["created_at"],
    }


def trade(row: sqlite3.Row) -> dict[str, Any]:
    closed = row["status"] in ("failed", "voided")
    return {
        "trade_no": row["gateway_ref"],
        "out_trade_no": row["payment_id"],
        "subject": row["subject"],
        "trade_status": TRADE_STATUS[row["status"]],
        "total_amount": row["amount"],
        "currency": row["currency"],
        "close_reason": row["failure_reason"] if closed else None,
        "gmt_create": row["created_at"],
        "gmt_payment": row["succeeded_at"],
    }


def checkout(row: sqlite3.Row, public_url: str) -> dict[str, Any]:
    pay_url = f"{public_url}/pay/{row['gateway_ref']}"
    return {
        "trade_no": row["gateway_ref"],
        "out_trade_no": row["payment_id"],
        "trade_status": TRADE_STATUS[row["status"]],
        "pay_url": pay_url,
        "qr_code": pay_url,  # a QR code encodes the pay URL
    }


def trade_refund(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "out_request_no": row["refund_id"],
        "refund_no": row["refund_ref"],
        "trade_no": row["gateway_ref"],
        "out_trade_no": row["payment_id"],
        "refund_status": REFUND_STATUS[row["status"]],
        "refund_amount": row["amount"],
        "currency": row["currency"],
        "fail_reason": row["failure_reason"],
        "gmt_create": row["created_at"],
    }
