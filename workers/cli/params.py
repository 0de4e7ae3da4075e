"""What the CLI accepts: stage names in either spelling, reason codes, zoned times.

Validation happens while parsing, so a bad value is a usage error (exit 2) naming the
option and what it expects, before any service is contacted.
"""

import os
import re
from datetime import datetime
from typing import Any

import click

from workers.stage_names import STAGE_NAMES

RUN_EXTRAS = ("all", "gateway_simulator", "webhook", "sweeper")
REASON_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
ZONED_EXAMPLE = "2026-11-25T00:00:00+00:00"

# Every command: -h as well as --help, and every option shows its default.
CONTEXT_SETTINGS: dict[str, Any] = {
    "help_option_names": ["-h", "--help"],
    "show_default": True,
    "max_content_width": 100,
}


def stored_name(text: str) -> str:
    """`order-build` and `order_build` are the same stage; the stored name has underscores."""
    return text.strip().lower().replace("-", "_")


class StageName(click.ParamType):
    """A stage, in either spelling, normalised to its stored name (`order_build`)."""

    name = "stage"

    def __init__(self, extras: tuple[str, ...] = ()) -> None:
        self.choices = STAGE_NAMES + extras

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        name = stored_name(str(value))
        if name not in self.choices:
            self.fail(
                f"{value!r} is not one of: {spelled(self.choices)} "
                "(order-build and order_build both work)",
                param,
                ctx,
            )
        return name

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "STAGE"


def spelled(names: tuple[str, ...] = STAGE_NAMES) -> str:
    """The names as a user types them, for help texts."""
    return ", ".join(n.replace("_", "-") for n in names)


class ReasonCode(click.ParamType):
    """A dead-letter reason code: lowercase snake case, such as `forged_callback`."""

    name = "reason"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if REASON_PATTERN.fullmatch(text) is None:
            self.fail(
                f"{text!r} is not a reason code: expected lowercase snake case, "
                "e.g. forged_callback or unhandled_error",
                param,
                ctx,
            )
        return text


class ZonedTime(click.ParamType):
    """An ISO 8601 time with a time zone; a time without one would be ambiguous."""

    name = "time"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value)
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            self.fail(
                f"{text!r} is not an ISO 8601 time with a time zone, e.g. {ZONED_EXAMPLE}",
                param,
                ctx,
            )
        if moment.tzinfo is None:
            self.fail(f"give a time zone in {text!r}, e.g. {ZONED_EXAMPLE}", param, ctx)
        return moment


STAGE = StageName()
RUN_TARGET = StageName(RUN_EXTRAS)
REASON = ReasonCode()
ZONED_TIME = ZonedTime()


def operator_name(flag: str | None) -> str:
    """Who acts, for the operator action log: --operator, else PAYFLOW_OPERATOR, else USER."""
    who = (flag or os.environ.get("PAYFLOW_OPERATOR") or os.environ.get("USER") or "").strip()
    if not who:
        raise click.UsageError("no operator name: pass --operator NAME or set PAYFLOW_OPERATOR")
    return who
