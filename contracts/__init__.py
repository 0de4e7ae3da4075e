"""Contracts: the events payflow consumes and publishes, and the topics they travel on.

Everything on every topic is an `Envelope` subclass; money is always `Money`
(integer minor units plus an ISO 4217 code).
"""

from contracts.codec import ContractError, decode, encode
from contracts.envelope import Envelope
from contracts.money import Money

__all__ = ["ContractError", "Envelope", "Money", "decode", "encode"]
