"""The topic registry: names, the events each carries, partition key and dead-letter topic.

Every topic is keyed by the order id (the envelope's correlation_id), so all of one order's
events land on one partition and are consumed in order.
"""

import os
from dataclasses import dataclass

from contracts.envelope import Envelope
from contracts.events.funds import FundsFrozen
from contracts.events.gateway import GatewayCallbackReceived
from contracts.events.orders import OrderBuilt, OrderSubmitted
from contracts.events.outcomes import (
    OrderCancelled,
    OrderDuplicate,
    OrderManualReview,
    OrderRefunded,
    OrderRefundRejected,
    OrderRejected,
    OrderSettled,
    OrderSubmissionRefused,
)
from contracts.events.payments import (
    PaymentFailed,
    PaymentLateMoney,
    PaymentNeedsReview,
    PaymentSucceeded,
)
from contracts.events.refunds import RefundRequested
from contracts.events.wallet import (
    TopUpGatewayResult,
    TopUpRequested,
    WalletOperationCompleted,
    WalletOperationFailed,
    WalletOperationNeedsReview,
    WithdrawalFrozen,
    WithdrawalRequested,
)

DLQ_SUFFIX = ".dlq"
PARTITION_KEY = "correlation_id"
DEFAULT_NAMESPACE = "payflow"
# Headers on every dead letter: payflow-dlq-<field>, all text.
DLQ_HEADER_PREFIX = "payflow-dlq-"
DLQ_HEADER_FIELDS = (
    "reason",
    "detail",
    "source-topic",
    "source-partition",
    "source-offset",
    "failed-at",
    "attempts",
    "stage",
)


def namespace() -> str:
    """Topic names start with PAYFLOW_TOPIC_NAMESPACE (default "payflow"), so several
    environments (or test sessions) can share one Kafka cluster without seeing each other."""
    return os.environ.get("PAYFLOW_TOPIC_NAMESPACE") or DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Topic:
    base: str
    events: tuple[type[Envelope], ...]
    description: str
    consumed_by: str | None  # the payflow stage that consumes it, if any

    @property
    def name(self) -> str:
        return f"{namespace()}.{self.base}"

    @property
    def dlq(self) -> str:
        return self.name + DLQ_SUFFIX


ORDERS_SUBMITTED = Topic(
    "orders.submitted", (OrderSubmitted,), "Orders from upstream shops.", "order_build"
)
ORDERS_BUILT = Topic(
    "orders.built", (OrderBuilt,), "Priced and split orders, stock held.", "fund_freeze"
)
FUNDS_FROZEN = Topic(
    "funds.frozen",
    (FundsFrozen,),
    "Wallet part frozen, pending payment.",
    "gateway_request",
)
GATEWAY_CALLBACKS = Topic(
    "gateway.callbacks",
    (GatewayCallbackReceived,),
    "Raw, unverified gateway callbacks.",
    "callback_handling",
)
PAYMENTS_DECIDED = Topic(
    "payments.decided",
    (PaymentSucceeded, PaymentFailed, PaymentNeedsReview),
    "The decision on each payment.",
    "settlement",
)
ORDERS_OUTCOMES = Topic(
    "orders.outcomes",
    (
        OrderSettled,
        OrderCancelled,
        OrderRejected,
        OrderDuplicate,
        OrderSubmissionRefused,
        OrderManualReview,
        OrderRefunded,
        OrderRefundRejected,
        PaymentLateMoney,
    ),
    "Final outcome of each order (and of each refund, and of money paid for an order we did "
    "not sell), for upstream systems and operators.",
    None,
)
ORDERS_REFUNDS = Topic(
    "orders.refunds",
    (RefundRequested,),
    "Refunds of settled orders asked for by upstream systems.",
    "settlement",
)

WALLET_REQUESTS = Topic(
    "wallet.requests",
    (TopUpRequested, WithdrawalRequested),
    "Top-ups and withdrawals asked for by upstream systems.",
    "wallet",
)
WALLET_STEPS = Topic(
    "wallet.steps",
    (TopUpGatewayResult, WithdrawalFrozen),
    "Internal steps of wallet operations; never published by upstream systems.",
    "wallet",
)
WALLET_OUTCOMES = Topic(
    "wallet.outcomes",
    (WalletOperationCompleted, WalletOperationFailed, WalletOperationNeedsReview),
    "Final outcome of each wallet operation, for upstream systems.",
    None,
)

TOPICS: tuple[Topic, ...] = (
    ORDERS_SUBMITTED,
    ORDERS_BUILT,
    FUNDS_FROZEN,
    GATEWAY_CALLBACKS,
    PAYMENTS_DECIDED,
    ORDERS_OUTCOMES,
    ORDERS_REFUNDS,
    WALLET_REQUESTS,
    WALLET_STEPS,
    WALLET_OUTCOMES,
)


_named: dict[str, dict[str, Topic]] = {}  # namespace -> name -> topic


def by_name(name: str) -> Topic | None:
    """Per message on every stage: one environment read, then a dict lookup."""
    ns = namespace()
    named = _named.get(ns)
    if named is None:
        named = _named[ns] = {t.name: t for t in TOPICS}
    return named.get(name)


def topic_for(event: type[Envelope]) -> Topic:
    for topic in TOPICS:
        if event in topic.events:
            return topic
    raise KeyError(f"no topic carries {event.__name__}")


def all_topic_names() -> list[str]:
    """Every topic to create, dead-letter topics included."""
    names = [t.name for t in TOPICS]
    return names + [t.dlq for t in TOPICS if t.consumed_by]
