"""Both gateway adapters against the real simulator process over HTTP (docs/gateway-api.md):
create, query, void, refund, payout and the statement through `direct` (/v1) and `redirect`
(/v2); an idempotent replay charges once; a timeout after the charge is an unknown outcome,
never a second charge; a 4xx is a refusal with the gateway's reason."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from pydantic import SecretStr

from contracts.money import Money
from infra.settings import Settings
from tests.support.gateway_edge import gateway
from tests.support.pipeline import eventually
from workers.gateway.port import (
    Charge,
    ChargeRequest,
    Gateway,
    GatewayRefused,
    GatewayUnknown,
    PayoutRequest,
    RefundRequest,
)
from workers.gateway.registry import Gateways

pytestmark = pytest.mark.integration

CALLBACK_DELAY_MS = "1500"  # long enough to void or close a payment the buyer has not paid


def _eur(amount: int) -> Money:
    return Money(amount=amount, currency="EUR")


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _charge(payment_id: str, amount: int = 1_000) -> ChargeRequest:
    return ChargeRequest(payment_id, f"ord-{payment_id}", _eur(amount), f"payflow:{payment_id}")


async def _settled(adapter: Gateway, payment_id: str, status: str) -> Charge:
    """The payment as the gateway sees it once it reached `status` (asked, not called back)."""
    found: list[Charge] = []

    async def reached() -> bool:
        found[:] = await adapter.query_payment(payment_id)
        return [c.status for c in found] == [status]

    await eventually(reached, 30, f"{payment_id} {status} at the gateway")
    return found[0]


async def _refused(call: Callable[[], Awaitable[Any]]) -> GatewayRefused:
    with pytest.raises(GatewayRefused) as caught:
        await call()
    return caught.value


async def test_direct_adapter(services: Settings) -> None:
    async with gateway(services, {"PAYFLOW_SIM_CALLBACK_DELAY_MS": CALLBACK_DELAY_MS}) as gws:
        direct = gws.adapter("direct")
        paid, voided, declined = _id("pay-d"), _id("pay-dv"), _id("pay-dx")

        created = await direct.create_payment(_charge(paid))
        assert created.status == "pending" and created.exchange.status == 201
        again = await direct.create_payment(_charge(paid))  # the same key: replayed
        assert again.gateway_ref == created.gateway_ref
        reused = await _refused(lambda: direct.create_payment(_charge(paid, 2_000)))
        assert (reused.status, reused.code) == (409, "idempotency_key_reused")

        pending = await direct.create_payment(_charge(voided))
        void = await direct.void_payment(pending.gateway_ref, f"payflow:void:{voided}")
        assert void.status == "voided"
        await direct.create_payment(_charge(declined, 2_013))  # declined: ends in 13

        charge = await _settled(direct, paid, "succeeded")
        assert (charge.gateway_ref, charge.amount) == (created.gateway_ref, _eur(1_000))
        assert (await _settled(direct, voided, "voided")).gateway_ref == pending.gateway_ref
        assert (await _settled(direct, declined, "failed")).failure_reason
        assert await direct.query_payment(_id("pay-never")) == []
        too_late = await _refused(
            lambda: direct.void_payment(created.gateway_ref, f"payflow:void:{paid}")
        )
        assert too_late.code == "not_voidable"

        refund_id = _id("ref-d")
        refund = await direct.refund(
            RefundRequest(
                refund_id,
                created.gateway_ref,
                paid,
                _eur(400),
                "test",
                f"payflow:refund:{refund_id}",
            )
        )
        assert (refund.status, refund.amount) == ("pending", _eur(400))
        over = _id("ref-dx")
        too_much = await _refused(
            lambda: direct.refund(
                RefundRequest(
                    over, created.gateway_ref, paid, _eur(700), "test", f"payflow:refund:{over}"
                )
            )
        )
        assert too_much.code == "exceeds_captured"

        async def refunded() -> bool:
            found = await direct.query_refund(refund_id)
            return found is not None and found.status == "succeeded"

        await eventually(refunded, 30, "refund succeeded")
        assert await direct.query_refund(_id("ref-never")) is None

        out, bounced = _id("wd"), _id("wd")
        payout = await direct.payout(
            PayoutRequest(out, _eur(500), "iban-1", f"payflow:payout:{out}")
        )
        assert payout.paid and payout.payout_ref
        no = await direct.payout(
            PayoutRequest(bounced, _eur(513), "iban-1", f"payflow:payout:{bounced}")
        )
        assert (no.paid, no.payout_ref) == (False, None) and no.reason

        lines = {(x.kind, x.reference): x for x in await direct.statement(datetime.now(UTC).date())}
        line = lines[("charge", paid)]
        assert (line.gateway_ref, line.amount, line.fee, line.net) == (
            created.gateway_ref,
            _eur(1_000),
            _eur(1_000 * 29 // 1000 + 30),
            _eur(1_000 - 59),
        )
        assert lines[("refund", refund_id)].amount == _eur(400)
        assert lines[("payout", out)].amount == _eur(500)
        assert ("charge", voided) not in lines and ("charge", declined) not in lines
        assert ("payout", bounced) not in lines


async def test_redirect_adapter(services: Settings) -> None:
    async with gateway(services, {"PAYFLOW_SIM_CALLBACK_DELAY_MS": CALLBACK_DELAY_MS}) as gws:
        redirect = gws.for_method("qr")
        assert redirect.name == "redirect"
        paid, closed = _id("pay-r"), _id("pay-rc")

        created = await redirect.create_payment(_charge(paid))
        assert created.status == "pending" and created.pay_url and created.qr_payload
        again = await redirect.create_payment(_charge(paid))
        assert again.gateway_ref == created.gateway_ref

        waiting = await redirect.create_payment(_charge(closed))
        void = await redirect.void_payment(waiting.gateway_ref, f"payflow:void:{closed}")
        assert void.status == "voided"
        assert (await _settled(redirect, closed, "voided")).gateway_ref == waiting.gateway_ref

        trade = await _settled(redirect, paid, "succeeded")
        assert (trade.gateway_ref, trade.amount) == (created.gateway_ref, _eur(1_000))
        too_late = await _refused(
            lambda: redirect.void_payment(created.gateway_ref, f"payflow:void:{paid}")
        )
        assert too_late.code == "not_closable"

        refund_id = _id("ref-r")
        refund = await redirect.refund(
            RefundRequest(
                refund_id,
                created.gateway_ref,
                paid,
                _eur(300),
                "test",
                f"payflow:refund:{refund_id}",
            )
        )
        assert (refund.gateway_ref, refund.status) == (created.gateway_ref, "pending")

        async def refunded() -> bool:
            found = await redirect.query_refund(refund_id)
            return found is not None and found.status == "succeeded"

        await eventually(refunded, 30, "refund succeeded")

        lines = {
            (x.kind, x.reference): x for x in await redirect.statement(datetime.now(UTC).date())
        }
        assert lines[("charge", paid)].gateway_ref == created.gateway_ref
        assert lines[("refund", refund_id)].amount == _eur(300)
        assert ("charge", closed) not in lines


async def test_a_timeout_after_the_charge_is_unknown_and_never_charges_twice(
    services: Settings,
) -> None:
    faults = {"PAYFLOW_SIM_FAULTS": "timeout_after_charge=1", "PAYFLOW_SIM_HANG_MS": "3000"}
    impatient = services.model_copy(update={"gateway_timeout_s": 0.5})
    async with gateway(impatient, faults) as gws:
        for name in ("direct", "redirect"):
            adapter, payment_id = gws.adapter(name), _id(f"pay-t{name[0]}")
            for _ in range(2):  # the stage retries with the same key
                with pytest.raises(GatewayUnknown) as caught:
                    await adapter.create_payment(_charge(payment_id))
                assert caught.value.exchange is not None
                assert caught.value.exchange.status is None  # no answer: it may have charged
            charges = await adapter.query_payment(payment_id)
            assert len(charges) == 1, charges  # accepted once, whatever we saw


async def test_a_wrong_api_key_is_refused_and_a_dead_gateway_is_unknown(
    services: Settings,
) -> None:
    stranger = services.model_copy(update={"gateway_api_key": SecretStr("not-our-key")})
    async with gateway(services, {}), aiohttp.ClientSession() as http:
        refused = await _refused(
            lambda: Gateways(stranger, http).adapter("direct").create_payment(_charge(_id("p")))
        )
        assert (refused.status, refused.code) == (401, "unauthorized")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(GatewayUnknown, match="no answer"):
            await Gateways(services, http).adapter("direct").query_payment("pay-1")
