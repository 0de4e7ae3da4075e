"""Shared building blocks for contract models."""

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Unknown fields, type coercion and mutation are all refused: a contract is exact.
STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class StrictModel(BaseModel):
    model_config = STRICT


# Identifiers chosen by upstream systems: printable, short, no spaces.
Identifier = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$")
]
# Free text from outside: anything but NUL, which no text column (and few consumers) can hold.
Text = Annotated[str, Field(pattern=r"^[^\x00]*$")]
Quantity = Annotated[StrictInt, Field(gt=0, le=10_000)]


@dataclass(frozen=True)
class Refusal:
    """Why something is not accepted: a stable code (for machines) and a sentence (for
    people). Rules return it; the step decides where it goes (an answer event, a record)."""

    code: str
    detail: str
