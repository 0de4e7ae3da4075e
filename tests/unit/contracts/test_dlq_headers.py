"""The dead-letter headers the runtime writes are the ones the contract documents."""

from contracts.generate import DLQ_HEADERS
from contracts.topics import DLQ_HEADER_FIELDS, DLQ_HEADER_PREFIX
from workers.runtime.dead_letters import DeadLetter


def test_documented_headers_are_the_registry_headers() -> None:
    assert [name for name, _, _ in DLQ_HEADERS] == [
        DLQ_HEADER_PREFIX + f for f in DLQ_HEADER_FIELDS
    ]


def test_runtime_writes_exactly_the_registry_headers() -> None:
    dl = DeadLetter(
        "order_build",
        "payflow.orders.submitted",
        0,
        1,
        b"k",
        b"v",
        (("x", b"1"),),
        "not_json",
        "value is not JSON",
        1,
    )
    names = [k for k, _ in dl.message().headers if k.startswith(DLQ_HEADER_PREFIX)]
    assert names == [DLQ_HEADER_PREFIX + f for f in DLQ_HEADER_FIELDS]
