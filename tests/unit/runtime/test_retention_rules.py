"""The retention's pure rules: the cutoff, and which retentions are refused (shorter than our
topics keep a message, not a whole positive number of days)."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from infra.settings import KAFKA_TOPIC_RETENTION_DAYS, Settings, check_retention_days
from workers.runtime.retention import PruneResult, cutoff_for

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_cutoff_is_now_minus_the_retention() -> None:
    assert cutoff_for(NOW, 7) == datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert cutoff_for(NOW, 30) == NOW - timedelta(days=30)


def test_cutoff_needs_an_aware_time() -> None:
    with pytest.raises(ValueError, match="time zone"):
        cutoff_for(NOW.replace(tzinfo=None), 7)


@pytest.mark.parametrize("days", [0, -1, 1, KAFKA_TOPIC_RETENTION_DAYS - 1])
def test_a_retention_shorter_than_redelivery_is_refused(days: int) -> None:
    with pytest.raises(ValueError) as refused:
        check_retention_days(days)
    assert str(days) in str(refused.value)
    with pytest.raises(ValueError):
        cutoff_for(NOW, days)


def test_the_default_covers_the_topics_retention() -> None:
    assert Settings().retention_days >= KAFKA_TOPIC_RETENTION_DAYS
    check_retention_days(KAFKA_TOPIC_RETENTION_DAYS)
    check_retention_days(KAFKA_TOPIC_RETENTION_DAYS + 1)


def test_settings_refuse_a_short_retention_naming_the_topics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PAYFLOW_RETENTION_DAYS", "3")
    with pytest.raises(ValidationError) as refused:
        Settings()
    error = refused.value.errors()[0]
    assert error["loc"] == ("retention_days",)
    assert "Kafka topics" in error["msg"] and "applied twice" in error["msg"]


@pytest.mark.parametrize("value", ["seven", "7.5", ""])
def test_settings_refuse_a_retention_that_is_not_whole_days(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PAYFLOW_RETENTION_DAYS", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["loc"] == ("retention_days",)


def test_settings_refuse_a_negative_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYFLOW_RETENTION_INTERVAL_S", "-5")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert refused.value.errors()[0]["loc"] == ("retention_interval_s",)
    monkeypatch.setenv("PAYFLOW_RETENTION_INTERVAL_S", "0")  # 0: the sweeper never prunes
    assert Settings().retention_interval_s == 0


def test_result_as_json_separates_deleted_from_kept() -> None:
    result = PruneResult(NOW, False, 3, 2, 1, 4, 5)
    assert result.as_json() == {
        "cutoff": NOW.isoformat(),
        "dry_run": False,
        "deleted": {"inbox": 3, "outbox": 2, "dead_letters": 1},
        "kept": {"unpublished_outbox": 4, "open_dead_letters": 5},
    }
