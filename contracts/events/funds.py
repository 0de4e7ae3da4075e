"""Fund freeze (TCC Try on the buyer's wallet)."""

from typing import Literal

from pydantic import AwareDatetime

from contracts.base import Identifier, StrictModel
from contracts.envelope import Envelope
from contracts.events.orders import SubOrder
from contracts.money import Money


class FundsFrozenPayload(StrictModel):
    order_id: Identifier
    transaction_id: Identifier
    buyer_id: Identifier
    total: Money
    wallet_part: Money
    gateway_part: Money
    hold_expires_at: AwareDatetime
    payment_method: Identifier = "card"
    sub_orders: list[SubOrder]


class FundsFrozen(Envelope):
    """The wallet part is frozen and the transaction is pending payment."""

    event_type: Literal["funds.frozen"] = "funds.frozen"
    payload: FundsFrozenPayload
