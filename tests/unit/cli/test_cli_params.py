"""What the CLI accepts: stage names in either spelling, reason codes, zoned times."""

from datetime import UTC, datetime, timedelta, timezone

import click
import pytest

from workers.callback_handling.step import CallbackHandling
from workers.cli.params import REASON, RUN_TARGET, STAGE, ZONED_TIME, stored_name
from workers.fund_freeze.step import FundFreeze
from workers.gateway_request.step import GatewayRequest
from workers.order_build.step import OrderBuild
from workers.settlement.step import Settlement
from workers.stage_names import STAGE_NAMES
from workers.wallet.step import WalletOperations


def test_the_cli_knows_every_stage_by_the_name_it_stores() -> None:
    stages = (
        OrderBuild,
        FundFreeze,
        GatewayRequest,
        CallbackHandling,
        Settlement,
        WalletOperations,
    )
    assert STAGE_NAMES == tuple(stage.name for stage in stages)


@pytest.mark.parametrize("typed", ["order-build", "order_build", "Order-Build", " order-build "])
def test_both_spellings_give_the_stored_name(typed: str) -> None:
    assert stored_name(typed) == "order_build"
    assert STAGE.convert(typed, None, None) == "order_build"


def test_run_also_takes_all_and_the_gateway_simulator() -> None:
    assert RUN_TARGET.convert("gateway-simulator", None, None) == "gateway_simulator"
    assert RUN_TARGET.convert("all", None, None) == "all"
    assert RUN_TARGET.convert("fund-freeze", None, None) == "fund_freeze"


def test_an_unknown_stage_lists_the_valid_ones() -> None:
    with pytest.raises(click.BadParameter) as info:
        STAGE.convert("order-built", None, None)
    message = info.value.format_message()
    assert "'order-built'" in message
    for name in STAGE_NAMES:
        assert name.replace("_", "-") in message


def test_dlq_stages_do_not_include_the_run_extras() -> None:
    with pytest.raises(click.BadParameter):
        STAGE.convert("all", None, None)


@pytest.mark.parametrize("code", ["forged_callback", "unhandled_error", "declined", "v2_schema"])
def test_reason_codes_are_lowercase_snake_case(code: str) -> None:
    assert REASON.convert(code, None, None) == code


@pytest.mark.parametrize(
    "code", ["Forged_Callback", "forged-callback", "_x", "x_", "a__b", "", "2x"]
)
def test_anything_else_is_not_a_reason_code(code: str) -> None:
    with pytest.raises(click.BadParameter, match="lowercase snake case"):
        REASON.convert(code, None, None)


def test_a_zoned_iso_time_is_accepted() -> None:
    assert ZONED_TIME.convert("2026-11-25T00:00:00+01:00", None, None) == datetime(
        2026, 11, 25, tzinfo=timezone(timedelta(hours=1))
    )
    assert ZONED_TIME.convert("2026-11-25T00:00:00Z", None, None) == datetime(
        2026, 11, 25, tzinfo=UTC
    )


def test_a_time_that_is_not_iso_says_the_expected_format() -> None:
    with pytest.raises(click.BadParameter, match="ISO 8601 time with a time zone"):
        ZONED_TIME.convert("yesterday", None, None)


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(click.BadParameter, match="give a time zone"):
        ZONED_TIME.convert("2026-11-25T00:00:00", None, None)
