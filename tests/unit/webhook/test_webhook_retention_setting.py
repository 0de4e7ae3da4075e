"""PAYFLOW_WEBHOOK_RETENTION_DAYS: a receipt must outlive the callback timestamp tolerance,
or a replay of a pruned callback would still be inside the tolerance and accepted as new."""

import pytest
from pydantic import ValidationError

from infra.settings import Settings


def test_default_keeps_a_week() -> None:
    assert Settings().webhook_retention_days == 7


def test_retention_must_cover_the_tolerance() -> None:
    Settings(webhook_retention_days=1, callback_tolerance_s=86_400)
    with pytest.raises(ValidationError, match="must cover callback_tolerance_s"):
        Settings(webhook_retention_days=1, callback_tolerance_s=86_401)


def test_retention_is_at_least_a_day() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        Settings(webhook_retention_days=0)
