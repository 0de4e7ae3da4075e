"""Reading verified callback bodies into one `Notice`, per provider (docs/gateway-api.md).

Pure functions: the webhook reads a notice to key it, the callback stage to decide on it.
"""

import json
from typing import Any

from pydantic import ValidationError

from contracts.events.gateway import GatewayCallbackBody
from contracts.money import Money
from workers.gateway.port import Notice

PROVIDERS = ("direct", "redirect")


class MalformedNotice(ValueError):
    """A verified body we cannot read: the gateway changed its format or sent garbage."""


def read_notice(provider: str, raw_body: str) -> Notice:
    if provider == "direct":
        return _direct(raw_body)
    if provider == "redirect":
        return _redirect(raw_body)
    raise MalformedNotice(f"unknown provider {provider!r}; providers: {', '.join(PROVIDERS)}")


def _direct(raw_body: str) -> Notice:
    try:
        body = GatewayCallbackBody.model_validate_json(raw_body)
    except ValidationError as exc:
        raise MalformedNotice(str(exc).replace("\n", " ")[:500]) from exc
    return Notice(
        callback_id=body.callback_id,
        kind=body.kind,
        payment_id=body.payment_id,
        gateway_ref=body.gateway_ref,
        status=body.status,
        amount=body.amount,
        failure_reason=body.failure_reason,
        refund_id=body.refund_id,
        refund_ref=body.refund_ref,
    )


_REDIRECT_STATUS = {"TRADE_SUCCESS": "succeeded", "TRADE_CLOSED": "failed"}
_REFUND_STATUS = {"REFUND_SUCCESS": "succeeded", "REFUND_FAIL": "failed"}


def _redirect(raw_body: str) -> Notice:
    """The redirect/QR gateway's notify: Alipay-like names, amounts in minor units."""
    try:
        data: Any = json.loads(raw_body)
        if not isinstance(data, dict):
            raise TypeError("not a JSON object")
        notify_type = _text(data, "notify_type")
        amount = Money(amount=data["total_amount"], currency=data["currency"])
        common = {
            "callback_id": _text(data, "notify_id"),
            "payment_id": _text(data, "out_trade_no"),
            "gateway_ref": _text(data, "trade_no"),
        }
        if notify_type == "trade_status_sync":
            status = _REDIRECT_STATUS[_text(data, "trade_status")]
            return Notice(
                kind="payment",
                status=status,  # type: ignore[arg-type]
                amount=amount,
                failure_reason=data.get("close_reason") if status == "failed" else None,
                **common,
            )
        if notify_type == "refund_status_sync":
            return Notice(
                kind="refund",
                status=_REFUND_STATUS[_text(data, "refund_status")],  # type: ignore[arg-type]
                amount=Money(amount=data["refund_amount"], currency=data["currency"]),
                refund_id=_text(data, "out_request_no"),
                refund_ref=_text(data, "refund_no"),
                failure_reason=data.get("fail_reason"),
                **common,
            )
        raise KeyError(f"notify_type {notify_type!r}")
    except (ValueError, TypeError, KeyError, ValidationError) as exc:
        raise MalformedNotice(f"redirect notify: {exc}"[:500]) from exc


def _text(data: dict[str, Any], name: str) -> str:
    value = data[name]
    if not isinstance(value, str) or not value or len(value) > 64 or "\x00" in value:
        raise ValueError(f"{name} must be a non-empty string of at most 64 characters")
    return value
