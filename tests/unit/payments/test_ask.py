"""`ask`: bounded retries with the same idempotency key, then unknown with every exchange
kept; a refusal is final at once (a fake gateway, no I/O)."""

import pytest

from contracts.money import Money
from infra.settings import Settings
from workers.gateway.port import (
    ChargeCreated,
    ChargeRequest,
    Exchange,
    GatewayRefused,
    GatewayUnknown,
)
from workers.payments.calls import ask

REQ = ChargeRequest("tx-1-p1", "ord-1", Money(amount=500, currency="EUR"), "payflow:tx-1-p1")
SETTINGS = Settings(gateway_attempts=3, gateway_timeout_s=0.01, retry_budget_s=30)


class FakeGateway:
    name = "direct"
    can_void = True

    def __init__(self, *answers: object) -> None:
        self.answers = list(answers)
        self.keys: list[str] = []

    async def create_payment(self, req: ChargeRequest) -> ChargeCreated:
        self.keys.append(req.idempotency_key)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, ChargeCreated)
        return answer


def _unknown(n: int) -> GatewayUnknown:
    return GatewayUnknown(f"timeout {n}", Exchange("POST /v1/payments", None, "timeout"))


async def test_unknown_after_every_attempt_keeps_each_exchange() -> None:
    gateway = FakeGateway(_unknown(1), _unknown(2), _unknown(3))
    asked = await ask(gateway, REQ, SETTINGS)  # type: ignore[arg-type]
    assert asked.outcome == "unknown"
    assert [e["note"] for e in asked.evidence] == ["timeout 1", "timeout 2", "timeout 3"]
    assert gateway.keys == ["payflow:tx-1-p1"] * 3  # the same key every time


async def test_an_answer_after_an_unknown_one_is_accepted() -> None:
    created = ChargeCreated("gw-1", "pending", Exchange("POST /v1/payments", 201, "{}"))
    asked = await ask(FakeGateway(_unknown(1), created), REQ, SETTINGS)  # type: ignore[arg-type]
    assert asked.outcome == "accepted" and asked.created == created
    assert len(asked.evidence) == 2


@pytest.mark.parametrize("first", [True, False])
async def test_a_refusal_is_final(first: bool) -> None:
    refused = GatewayRefused(422, "invalid_amount", "no", Exchange("POST", 422, "{}"))
    answers = [refused] if first else [_unknown(1), refused]
    asked = await ask(FakeGateway(*answers), REQ, SETTINGS)  # type: ignore[arg-type]
    assert asked.outcome == "refused" and asked.refusal == "invalid_amount: no"
