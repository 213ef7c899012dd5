"""Alert history, on SQLite and on PostgreSQL: what was sent, when, to which sinks; the cool-down reads it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from autoinspect.errors import ConfigError
from autoinspect.store import AlertHistory, AlertRecord, SentAlert

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class FakeAlert:
    """Shaped like monitoring's Alert (the store may not import it); a plain record, not a mock of our code."""

    rule: str = "input_drift"
    severity: str = "warning"
    message: str = "42% of the image features drifted (alert at 30%)."
    value: float = 0.42
    threshold: float = 0.3
    model_version: str | None = "7"

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}@{self.model_version or ''}"


@pytest.fixture
def history(engine: Engine) -> AlertHistory:
    return AlertHistory(engine)


def test_recorded_alert_reads_back_with_every_field(history: AlertHistory) -> None:
    alert = FakeAlert()
    history.record(alert, ["log", "webhook"], sent_at=T0)
    assert history.between(T0, T0 + timedelta(seconds=1)) == [
        SentAlert(
            fingerprint="input_drift@7",
            rule="input_drift",
            severity="warning",
            message=alert.message,
            value=0.42,
            threshold=0.3,
            model_version="7",
            sent_at=T0,
            sinks=["log", "webhook"],
        )
    ]


def test_last_sent_is_the_latest_time_for_that_fingerprint_only(history: AlertHistory) -> None:
    assert history.last_sent("input_drift@7") is None
    history.record(FakeAlert(), ["log"], sent_at=T0 + timedelta(hours=2))
    history.record(FakeAlert(), ["log"], sent_at=T0)
    history.record(FakeAlert(model_version="8"), ["log"], sent_at=T0 + timedelta(hours=5))
    history.record(FakeAlert(rule="review_rate"), ["log"], sent_at=T0 + timedelta(hours=9))
    last = history.last_sent("input_drift@7")
    assert last == T0 + timedelta(hours=2)
    assert last is not None and last.utcoffset() == timedelta(0)
    assert history.last_sent("input_drift@8") == T0 + timedelta(hours=5)
    assert history.last_sent("input_drift@9") is None


def test_times_are_stored_in_utc_whatever_zone_they_came_in(history: AlertHistory) -> None:
    paris = timezone(timedelta(hours=1))
    history.record(FakeAlert(), ["log"], sent_at=datetime(2025, 3, 1, 13, 0, tzinfo=paris))
    assert history.last_sent("input_drift@7") == T0
    assert history.between(T0, T0 + timedelta(minutes=1))[0].sent_at.tzinfo == UTC


def test_between_is_half_open_and_oldest_first(history: AlertHistory) -> None:
    for minutes, rule in [(30, "b"), (0, "a"), (60, "c"), (-1, "before")]:
        history.record(FakeAlert(rule=rule), ["log"], sent_at=T0 + timedelta(minutes=minutes))
    window = history.between(T0, T0 + timedelta(minutes=60))
    assert [alert.rule for alert in window] == ["a", "b"]
    assert history.between(T0 + timedelta(hours=2), T0 + timedelta(hours=3)) == []


def test_alert_without_model_version_is_stored_as_null(history: AlertHistory, engine: Engine) -> None:
    history.record(FakeAlert(model_version=None), ["email"], sent_at=T0)
    with engine.connect() as connection:
        row = connection.execute(select(AlertRecord.__table__)).mappings().one()
    assert row["model_version"] is None and row["fingerprint"] == "input_drift@"
    assert history.last_sent("input_drift@") == T0


def test_an_alert_no_sink_accepted_is_refused_so_it_stays_retryable(history: AlertHistory) -> None:
    with pytest.raises(ConfigError, match="no sink"):
        history.record(FakeAlert(), [], sent_at=T0)
    assert history.last_sent("input_drift@7") is None


def test_a_fingerprint_longer_than_the_column_is_refused(history: AlertHistory) -> None:
    with pytest.raises(ConfigError, match="limit is 128"):
        history.record(FakeAlert(rule="r" * 200), ["log"], sent_at=T0)
    assert history.between(T0, T0 + timedelta(seconds=1)) == []


def test_naive_times_are_refused(history: AlertHistory) -> None:
    with pytest.raises(StatementError, match="naive datetime"):
        history.record(FakeAlert(), ["log"], sent_at=datetime(2025, 3, 1, 12, 0))
    assert history.last_sent("input_drift@7") is None


def test_sent_at_defaults_to_now(history: AlertHistory) -> None:
    before = datetime.now(UTC)
    history.record(FakeAlert(), ["log"])
    last = history.last_sent("input_drift@7")
    assert last is not None and before - timedelta(seconds=1) <= last <= datetime.now(UTC) + timedelta(seconds=1)
