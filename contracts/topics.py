"""The topic registry: names, the events each carries, partition key and dead-letter topic.

Every topic is keyed by the order id (the envelope's correlation_id), so all of one order's
events land on one partition and are consumed in order.
"""

from dataclasses import dataclass

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen
from contracts.events.gateway import GatewayCallbackReceived
from contracts.events.orders import OrderBuilt, OrderSubmitted
from contracts.events.outcomes import (
    OrderCancelled,
    OrderManualReview,
    OrderRejected,
    OrderSettled,
)
from contracts.events.payments import PaymentFailed, PaymentNeedsReview, PaymentSucceeded

DLQ_SUFFIX = ".dlq"
PARTITION_KEY = "correlation_id"


@dataclass(frozen=True)
class Topic:
    name: str
    events: tuple[type[Envelope], ...]
    description: str
    consumed_by: str | None  # the payflow stage that consumes it, if any

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


ORDERS_SUBMITTED = Topic(
    "payflow.orders.submitted", (OrderSubmitted,), "Orders from upstream shops.", "order_build"
)
ORDERS_BUILT = Topic(
    "payflow.orders.built", (OrderBuilt,), "Priced and split orders, stock held.", "fund_freeze"
)
FUNDS_FROZEN = Topic(
    "payflow.funds.frozen",
    (FundsFrozen,),
    "Wallet part frozen, pending payment.",
    "gateway_request",
)
GATEWAY_CALLBACKS = Topic(
    "payflow.gateway.callbacks",
    (GatewayCallbackReceived,),
    "Raw, unverified gateway callbacks.",
    "callback_handling",
)
PAYMENTS_DECIDED = Topic(
    "payflow.payments.decided",
    (PaymentSucceeded, PaymentFailed, PaymentNeedsReview),
    "The decision on each payment.",
    "settlement",
)
ORDERS_OUTCOMES = Topic(
    "payflow.orders.outcomes",
    (OrderSettled, OrderCancelled, OrderRejected, OrderManualReview),
    "Final outcome of each order, for upstream systems.",
    None,
)

TOPICS: tuple[Topic, ...] = (
    ORDERS_SUBMITTED,
    ORDERS_BUILT,
    FUNDS_FROZEN,
    GATEWAY_CALLBACKS,
    PAYMENTS_DECIDED,
    ORDERS_OUTCOMES,
)
BY_NAME: dict[str, Topic] = {t.name: t for t in TOPICS}


def topic_for(event: type[Envelope]) -> Topic:
    for topic in TOPICS:
        if event in topic.events:
            return topic
    raise KeyError(f"no topic carries {event.__name__}")


def all_topic_names() -> list[str]:
    """Every topic to create, dead-letter topics included."""
    names = [t.name for t in TOPICS]
    return names + [t.dlq for t in TOPICS if t.consumed_by]
