"""Which failures are retried (transient) and what a dead letter says about the others."""

import asyncpg
import pytest
import redis.exceptions
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RecordTooLargeError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

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
        KafkaConnectionError("broker down"),
        RequestTimedOutError(),
        LeaderNotAvailableError(),
        NotLeaderForPartitionError(),
        NodeNotReadyError("node 1 not ready"),
        KafkaTimeoutError(),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.InternalClientError("unexpected message after a lost connection"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
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
        asyncpg.DataError("invalid input for query argument $1"),
        asyncpg.CheckViolationError("new row violates check constraint"),
        KafkaError(),
        MessageSizeTooLargeError(),
    ],
    ids=type,
)
def test_business_and_programming_failures_are_not_transient(exc: BaseException) -> None:
    assert is_transient(exc) is False


def test_kafka_errors_follow_aiokafkas_retriable_flag() -> None:
    # A bare KafkaError is what aiokafka raises for what it cannot name; it is not marked
    # retriable, so a message that causes it is isolated rather than retried for ever.
    assert KafkaError.retriable is False
    assert is_transient(KafkaError()) is False
    assert KafkaConnectionError.retriable is True
    assert is_transient(KafkaConnectionError()) is True


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (MessageSizeTooLargeError(), "message_too_large"),
        (RecordTooLargeError(), "record_too_large"),
        (TopicAuthorizationFailedError(), "topic_authorization_failed"),
        (ClusterAuthorizationFailedError(), "cluster_authorization_failed"),
        (InvalidTopicError(), "invalid_topic"),
    ],
    ids=type,
)
def test_kafka_errors_no_retry_can_fix_are_permanent_with_a_reason(
    exc: BaseException, code: str
) -> None:
    assert is_transient(exc) is False
    reason, detail = dead_letter_reason(exc)
    assert reason == code
    assert detail.startswith(f"{type(exc).__name__}:")


def test_other_non_retriable_kafka_errors_are_dead_lettered_as_kafka_errors() -> None:
    for exc in (KafkaError("unknown"), GroupAuthorizationFailedError()):
        assert is_transient(exc) is False
        assert dead_letter_reason(exc)[0] == "kafka_error"


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
