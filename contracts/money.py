"""Money: an integer number of minor units and an ISO 4217 currency. Never a float."""

from typing import Annotated, Any, Self

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, StrictInt
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

from contracts.base import StrictModel

# ISO 4217 codes we accept, with their minor-unit exponent (for display only).
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2,
    "AUD": 2,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CNY": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "PHP": 2,
    "PLN": 2,
    "SAR": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
    "BHD": 3,
}


class _CurrencyCode:
    """An accepted ISO 4217 code, checked inside pydantic's own validator (a Python
    callback per amount was about a tenth of decoding an order). Its refusal still names the
    problem; the codec adds the value that was sent."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.custom_error_schema(
            core_schema.literal_schema(list(CURRENCY_EXPONENTS)),
            custom_error_type=UNKNOWN_CURRENCY,
            custom_error_message="unknown ISO 4217 currency",
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "pattern": "^[A-Z]{3}$", "enum": sorted(CURRENCY_EXPONENTS)}


UNKNOWN_CURRENCY = "unknown_currency"  # the error type of a refused currency code
Currency = Annotated[str, _CurrencyCode]
MinorUnits = Annotated[StrictInt, Field(ge=0, le=10**15)]


class CurrencyMismatch(ValueError):
    pass


class Money(StrictModel):
    """A non-negative amount; direction is carried by the event or ledger entry, not the sign."""

    amount: MinorUnits
    currency: Currency

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(amount=0, currency=currency)

    def _same(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise CurrencyMismatch(f"{self.currency} vs {other.currency}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __str__(self) -> str:
        exp = CURRENCY_EXPONENTS[self.currency]
        if exp == 0:
            return f"{self.amount} {self.currency}"
        whole, minor = divmod(self.amount, 10**exp)
        return f"{whole}.{minor:0{exp}d} {self.currency}"
