"""Every alert that monitoring actually sent, so the next run can stay quiet about a problem already reported.

Deduplication has to survive the process: the monitoring job is a short run (a cron, an Airflow task, the local
runner) and two runs an hour apart share nothing but the store. Only alerts that at least one sink accepted are
written; one that reached nobody leaves no trace and is sent again by the next run.

The store imports only the core, so it cannot name :class:`autoinspect.monitoring.alerts.Alert`;
:meth:`AlertHistory.record` takes anything shaped like it (:class:`AlertLike`) and reads back :class:`SentAlert`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from pydantic import AwareDatetime, BaseModel, ConfigDict
from sqlalchemy import JSON, Engine, Float, String, Text, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from autoinspect.errors import ConfigError
from autoinspect.store.tables import Base, UTCDateTime

logger = logging.getLogger(__name__)

MAX_FINGERPRINT_LENGTH = 128


class AlertLike(Protocol):
    """What the history needs of an alert; :class:`~autoinspect.monitoring.alerts.Alert` has it."""

    @property
    def fingerprint(self) -> str:
        """Same problem on the same model, same fingerprint: the key the cool-down is kept by."""

    @property
    def rule(self) -> str: ...

    @property
    def severity(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def value(self) -> float: ...

    @property
    def threshold(self) -> float: ...

    @property
    def model_version(self) -> str | None: ...


class AlertRecord(Base):
    """One sent alert as stored."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(MAX_FINGERPRINT_LENGTH), index=True)
    rule: Mapped[str] = mapped_column(String(256))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sinks: Mapped[list[str]] = mapped_column(JSON)


class SentAlert(BaseModel):
    """An alert as the history reads it back: what was said, when, and which sinks took it."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    fingerprint: str
    rule: str
    severity: str
    message: str
    value: float
    threshold: float
    model_version: str | None
    sent_at: AwareDatetime
    sinks: list[str]
    """Names of the sinks that accepted it (``log``, ``webhook``, ``email``); never empty."""


class AlertHistory:
    """Reads and writes the ``alerts`` table; thread-safe (each call uses its own connection).

    Example:
        >>> from autoinspect.store.database import create_schema, make_engine
        >>> engine = make_engine("sqlite://")
        >>> create_schema(engine)
        >>> AlertHistory(engine).last_sent("input_drift@7") is None
        True
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, alert: AlertLike, sinks: Sequence[str], *, sent_at: datetime | None = None) -> None:
        """Store ``alert`` as sent to ``sinks`` at ``sent_at`` (now by default).

        ``sent_at`` is the clock the caller judges the cool-down with, so a run that was handed its ``now``
        (a backfill, a test) measures the next cool-down from that time and not from the wall clock.

        Raises:
            ConfigError: no sink is named (an alert nobody accepted must not be recorded, or it would never be
                retried), or the fingerprint is longer than the column.
        """
        if not sinks:
            raise ConfigError(f"alert {alert.fingerprint} reached no sink; only sent alerts are recorded")
        if len(alert.fingerprint) > MAX_FINGERPRINT_LENGTH:
            raise ConfigError(
                f"alert fingerprint is {len(alert.fingerprint)} characters; the limit is {MAX_FINGERPRINT_LENGTH}"
            )
        row = {
            "fingerprint": alert.fingerprint,
            "rule": alert.rule,
            "severity": str(alert.severity),
            "message": alert.message,
            "value": alert.value,
            "threshold": alert.threshold,
            "model_version": alert.model_version,
            "sent_at": sent_at if sent_at is not None else datetime.now(UTC),
            "sinks": list(sinks),
        }
        with self._engine.begin() as connection:
            connection.execute(insert(AlertRecord), [row])
        logger.debug("recorded alert %s sent to %s", alert.fingerprint, ", ".join(sinks))

    def last_sent(self, fingerprint: str) -> datetime | None:
        """When an alert with ``fingerprint`` was last sent (tz-aware UTC), or ``None`` if never."""
        query = (
            select(AlertRecord.sent_at)
            .where(AlertRecord.fingerprint == fingerprint)
            .order_by(AlertRecord.sent_at.desc())
            .limit(1)
        )
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one_or_none()

    def between(self, since: datetime, until: datetime) -> list[SentAlert]:
        """Alerts sent in ``[since, until)``, oldest first, like the other store readers."""
        query = (
            select(AlertRecord)
            .where(AlertRecord.sent_at >= since, AlertRecord.sent_at < until)
            .order_by(AlertRecord.sent_at, AlertRecord.id)
        )
        with Session(self._engine) as session:
            return [SentAlert.model_validate(record) for record in session.scalars(query)]
