"""Which failures are retried (transient) and what a dead letter says about the others."""

import asyncpg
import pytest
import redis.exceptions
from aiokafka.errors import KafkaConnectionError, KafkaError, RequestTimedOutError

from contracts.codec import ContractError
from workers.runtime.errors import (
    PermanentError,
    TransientError,
    dead_letter_reason,
    is_transient,
)


@pytest.mark.parametrize(
    "exc",
    [
        OSError("disk"),
        ConnectionRefusedError("refused"),
        ConnectionResetError("reset"),
        TimeoutError("slow"),
        asyncpg.PostgresConnectionError("gone"),
        asyncpg.SerializationError("could not serialize"),
        asyncpg.DeadlockDetectedError("deadlock"),
        redis.exceptions.ConnectionError("redis down"),
        redis.exceptions.TimeoutError("redis slow"),
        KafkaError(),
        KafkaConnectionError("broker down"),
        RequestTimedOutError(),
        TransientError("busy"),
    ],
    ids=type,
)
def test_dependency_failures_are_transient(exc: BaseException) -> None:
    assert is_transient(exc) is True


@pytest.mark.parametrize(
    "exc",
    [
        ValueError("bad"),
        TypeError("bug"),
        KeyError("missing"),
        PermanentError("duplicate_order", "order o-1 exists"),
        ContractError("invalid_event", "payload.items: empty"),
        asyncpg.UniqueViolationError("duplicate key"),
    ],
    ids=type,
)
def test_business_and_programming_failures_are_not_transient(exc: BaseException) -> None:
    assert is_transient(exc) is False


def test_subclass_of_transient_error_is_transient() -> None:
    class Busy(TransientError):
        pass

    assert is_transient(Busy()) is True


def test_permanent_error_keeps_code_and_detail() -> None:
    exc = PermanentError("unknown_order", "order o-1 was never built")
    assert (exc.code, exc.detail) == ("unknown_order", "order o-1 was never built")
    assert str(exc) == "unknown_order: order o-1 was never built"


def test_dead_letter_reason_of_a_permanent_error_is_its_code_and_detail() -> None:
    exc = PermanentError("unknown_order", "order o-1 was never built")
    assert dead_letter_reason(exc) == ("unknown_order", "order o-1 was never built")


def test_dead_letter_reason_of_a_contract_error_is_its_code_and_detail() -> None:
    exc = ContractError("not_json", "Expecting value: line 1 column 1")
    assert dead_letter_reason(exc) == ("not_json", "Expecting value: line 1 column 1")


@pytest.mark.parametrize(
    ("exc", "detail"),
    [
        (TypeError("unsupported operand"), "TypeError: unsupported operand"),
        (KeyError("sku"), "KeyError: 'sku'"),
        (ValueError(), "ValueError: "),
    ],
)
def test_dead_letter_reason_of_an_unexpected_error_names_its_type(
    exc: BaseException, detail: str
) -> None:
    assert dead_letter_reason(exc) == ("unhandled_error", detail)
