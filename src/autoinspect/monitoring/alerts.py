"""Alert rules over what a monitoring run measured, the sinks that deliver alerts, and deduplicated dispatch.

Three steps kept apart so each can be tested on its own: :func:`evaluate_rules` is a pure function from the
measured :class:`Signals` and the thresholds in :class:`~autoinspect.config.AlertSettings` to a list of
:class:`Alert`; sinks (:class:`LogSink`, :class:`WebhookSink`, :class:`EmailSink`) each deliver one alert or
raise; :func:`dispatch` decides what to send, using the :class:`~autoinspect.store.AlertHistory` so that a problem
already reported stays quiet for the cool-down even though every monitoring run is a new process.

Example:
    >>> from datetime import UTC, datetime
    >>> from autoinspect.config import AlertSettings
    >>> alerts = evaluate_rules(Signals(drift_share=0.5, model_version="7"), AlertSettings(), now=datetime.now(UTC))
    >>> [(alert.rule, alert.severity.value, alert.fingerprint) for alert in alerts]
    [('input_drift', 'warning', 'input_drift@7')]
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from autoinspect.config import AlertSettings
from autoinspect.errors import AutoInspectError, ConfigError
from autoinspect.store.alert_history import MAX_FINGERPRINT_LENGTH, AlertHistory

logger = logging.getLogger(__name__)

DEFAULT_SINK_TIMEOUT_S = 10.0
"""A sink that hangs must not hold the monitoring run (and the other sinks) for long."""
PERFORMANCE_RULE_PREFIX = "performance:"
"""Performance rules are named ``performance:<metric key>``, one per metric, so each dedupes on its own."""


class Rule(StrEnum):
    """Names of the fixed rules; what continuous-training triggers and dashboards match on."""

    INPUT_DRIFT = "input_drift"
    NONE_RATE_CHANGE = "none_rate_change"
    REVIEW_RATE = "review_rate"
    P95_LATENCY = "p95_latency"


class Severity(StrEnum):
    WARNING = "warning"
    """Something moved that may hurt the answers (inputs, answer mix, load); a person should look."""
    CRITICAL = "critical"
    """The model is measurably worse on reviewed photos than it was on its test split."""


class AlertDeliveryError(AutoInspectError):
    """A sink could not deliver an alert (server down, refused, non-2xx answer)."""


class Alert(BaseModel):
    """One breached rule, with the numbers that breached it.

    Example:
        >>> from datetime import UTC, datetime
        >>> Alert(rule="p95_latency", severity=Severity.WARNING, message="slow", value=2500.0, threshold=2000.0,
        ...       model_version=None, at=datetime.now(UTC)).fingerprint
        'p95_latency@'
    """

    model_config = ConfigDict(frozen=True)

    rule: str
    """``input_drift``, ``none_rate_change``, ``review_rate``, ``p95_latency`` or ``performance:<metric key>``."""
    severity: Severity
    message: str
    """One human sentence with the measured value and the threshold."""
    value: float
    threshold: float
    model_version: str | None
    """The model the window was served by; ``None`` when the run did not know (or mixed versions)."""
    at: AwareDatetime
    """When the run measured it (not when it was sent)."""

    @property
    def fingerprint(self) -> str:
        """``rule@model_version``: the same problem on the same model dedupes, a new model version alerts again.

        Hashed down to the history's column width in the unlikely case of a very long metric key or version.
        """
        key = f"{self.rule}@{self.model_version or ''}"
        if len(key) <= MAX_FINGERPRINT_LENGTH:
            return key
        digest = hashlib.sha256(key.encode()).hexdigest()
        return f"{key[: MAX_FINGERPRINT_LENGTH - len(digest) - 1]}#{digest}"


class Signals(BaseModel):
    """What one monitoring run measured; ``None`` means not measured in this window (too few photos, no reviews),
    which raises no alert, so a quiet hour never looks like a healthy or a broken model."""

    drift_share: float | None = Field(None, ge=0.0, le=1.0)
    """Share of the image features whose distribution drifted from the model's reference table."""
    none_rate_change: float | None = Field(None, ge=0.0, le=1.0)
    """Absolute change in the share of "None" answers against the reference window."""
    review_rate: float | None = Field(None, ge=0.0, le=1.0)
    """Share of answers sent to the review queue."""
    p95_latency_ms: float | None = Field(None, ge=0.0)
    performance_drops: dict[str, float] = Field(default_factory=dict)
    """Metric key (``recall/dent``) -> how far it is below the offline test figure; positive is worse."""
    model_version: str | None = None


def evaluate_rules(signals: Signals, rules: AlertSettings, *, now: datetime) -> list[Alert]:
    """One alert per rule that ``signals`` breach, at or above its threshold; nothing for unmeasured signals.

    Pure: no I/O and no clock (``now`` stamps the alerts), so rules are unit-tested without a store or sinks.
    Performance drops are CRITICAL, one per metric key, in key order; everything else is a WARNING.
    """
    on_model = f" for model {signals.model_version}" if signals.model_version is not None else ""
    checks: list[tuple[str, Severity, float | None, float, Callable[[float], str]]] = [
        (
            Rule.INPUT_DRIFT,
            Severity.WARNING,
            signals.drift_share,
            rules.drift_share,
            lambda value: (
                f"{value:.0%} of the image features drifted from the reference{on_model} "
                f"(alert at {rules.drift_share:.0%})."
            ),
        ),
        (
            Rule.NONE_RATE_CHANGE,
            Severity.WARNING,
            signals.none_rate_change,
            rules.none_rate_change,
            lambda value: (
                f'The share of "None" answers{on_model} moved by {value * 100:.1f} points against the '
                f"reference window (alert at {rules.none_rate_change * 100:.1f} points)."
            ),
        ),
        (
            Rule.REVIEW_RATE,
            Severity.WARNING,
            signals.review_rate,
            rules.max_review_rate,
            lambda value: (
                f"{value:.0%} of the answers{on_model} went to the review queue (alert at {rules.max_review_rate:.0%})."
            ),
        ),
        (
            Rule.P95_LATENCY,
            Severity.WARNING,
            signals.p95_latency_ms,
            rules.max_p95_latency_ms,
            lambda value: f"p95 latency{on_model} is {value:.0f} ms (alert at {rules.max_p95_latency_ms:.0f} ms).",
        ),
    ]
    for metric, drop in sorted(signals.performance_drops.items()):
        checks.append(
            (
                f"{PERFORMANCE_RULE_PREFIX}{metric}",
                Severity.CRITICAL,
                drop,
                rules.min_ap50_drop,
                _describe_drop(metric, on_model, rules.min_ap50_drop),
            )
        )
    return [
        Alert(
            rule=rule,
            severity=severity,
            message=describe(value),
            value=value,
            threshold=threshold,
            model_version=signals.model_version,
            at=now,
        )
        for rule, severity, value, threshold, describe in checks
        if value is not None and value >= threshold
    ]


def _describe_drop(metric: str, on_model: str, threshold: float) -> Callable[[float], str]:
    """The message of one performance rule (a factory, so each metric's closure keeps its own key)."""
    return lambda value: (
        f"{metric} on reviewed photos{on_model} is {value:.3f} below the offline test figure "
        f"(alert at {threshold:.3f})."
    )


class AlertSink(Protocol):
    """Somewhere an alert goes; ``send`` returns when delivered and raises when not (the caller logs it)."""

    name: str
    """Recorded in the alert history as one of the sinks that accepted the alert."""

    def send(self, alert: Alert) -> None: ...


class LogSink:
    """Writes alerts to the log (WARNING, or ERROR when critical): always on, so an alert is never only in a
    database, and log-based alerting (Loki, CloudWatch, journald) works with no other sink configured."""

    def __init__(self) -> None:
        self.name = "log"

    def send(self, alert: Alert) -> None:
        level = logging.ERROR if alert.severity is Severity.CRITICAL else logging.WARNING
        logger.log(level, "ALERT %s [%s]: %s", alert.rule, alert.fingerprint, alert.message)


class WebhookSink:
    """Posts Slack-compatible JSON (``{"text": ..., "attachments": [...]}``) to an incoming webhook.

    The ``text`` alone carries the whole alert, so Mattermost, Rocket.Chat, Teams connectors and plain HTTP
    receivers that ignore attachments lose nothing. The URL usually embeds a secret, so only its host is logged.
    """

    def __init__(self, url: str, timeout: float = DEFAULT_SINK_TIMEOUT_S) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"alert webhook URL must be http(s)://host/...; got scheme {parts.scheme!r}")
        self.name = "webhook"
        self._url = url
        self._host = parts.hostname
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"WebhookSink(host={self._host!r})"

    def send(self, alert: Alert) -> None:
        """POST the alert; a transport error or any non-2xx answer (redirects included) raises."""
        try:
            response = httpx.post(self._url, json=webhook_payload(alert), timeout=self._timeout)
        except httpx.HTTPError as error:
            raise AlertDeliveryError(f"webhook {self._host} unreachable: {type(error).__name__}: {error}") from None
        if not response.is_success:
            raise AlertDeliveryError(f"webhook {self._host} answered HTTP {response.status_code}")


def webhook_payload(alert: Alert) -> dict[str, Any]:
    """The JSON body :class:`WebhookSink` posts: ``text`` for every receiver, a coloured attachment for Slack."""
    return {
        "text": f"[AutoInspect] {alert.severity.value.upper()}: {alert.rule} — {alert.message}",
        "attachments": [
            {
                "color": "danger" if alert.severity is Severity.CRITICAL else "warning",
                "fields": [
                    {"title": "rule", "value": alert.rule, "short": True},
                    {"title": "model version", "value": alert.model_version or "unknown", "short": True},
                    {"title": "value", "value": f"{alert.value:g}", "short": True},
                    {"title": "threshold", "value": f"{alert.threshold:g}", "short": True},
                ],
                "ts": int(alert.at.timestamp()),
            }
        ],
    }


class EmailSink:
    """Sends one plain-text e-mail per alert through an SMTP relay (no TLS or login: a relay inside the network)."""

    def __init__(
        self, host: str, port: int, sender: str, recipients: Sequence[str], timeout: float = DEFAULT_SINK_TIMEOUT_S
    ) -> None:
        if not recipients:
            raise ConfigError(f"alert e-mail through {host} has no recipients; set alerts.smtp_recipients")
        self.name = "email"
        self._host, self._port, self._timeout = host, port, timeout
        self._sender, self._recipients = sender, list(recipients)

    def __repr__(self) -> str:
        return f"EmailSink(host={self._host!r}, port={self._port}, recipients={self._recipients!r})"

    def send(self, alert: Alert) -> None:
        """Deliver to the relay; raises when the relay is unreachable or refuses every recipient."""
        message = EmailMessage()
        message["Subject"] = f"[AutoInspect] {alert.severity.value.upper()}: {alert.rule}"
        message["From"] = self._sender
        message["To"] = ", ".join(self._recipients)
        message.set_content(
            f"{alert.message}\n\n"
            f"rule: {alert.rule}\n"
            f"severity: {alert.severity.value}\n"
            f"value: {alert.value:g}\n"
            f"threshold: {alert.threshold:g}\n"
            f"model version: {alert.model_version or 'unknown'}\n"
            f"measured at: {alert.at.isoformat()}\n"
        )
        try:
            with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
                refused = smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as error:
            raise AlertDeliveryError(
                f"e-mail via {self._host}:{self._port} failed: {type(error).__name__}: {error}"
            ) from None
        if refused:
            logger.warning("alert e-mail %s refused for %s", alert.fingerprint, ", ".join(sorted(refused)))


def sinks_from_settings(rules: AlertSettings) -> list[AlertSink]:
    """The log sink always; the webhook and e-mail sinks when their settings are given.

    Raises:
        ConfigError: the webhook URL is not http(s), or an SMTP host is set without recipients (an alert
            configured to go nowhere fails at start-up, not silently at the first incident).
    """
    sinks: list[AlertSink] = [LogSink()]
    if rules.webhook_url:
        sinks.append(WebhookSink(rules.webhook_url))
    if rules.smtp_host:
        sinks.append(EmailSink(rules.smtp_host, rules.smtp_port, rules.smtp_sender, rules.smtp_recipients))
    return sinks


def dispatch(
    alerts: Sequence[Alert],
    *,
    sinks: Sequence[AlertSink],
    history: AlertHistory,
    cooldown: timedelta,
    now: datetime,
) -> list[Alert]:
    """Send each alert not already sent within ``cooldown`` to every sink; return the alerts that went out.

    An alert is quiet while ``now - last_sent < cooldown`` (so exactly one cool-down later it is sent again).
    A failing sink is logged and the others still get the alert. The alert is recorded with the sinks that
    accepted it and ``now`` as its time; if none accepted it, nothing is recorded and the next run retries it.
    """
    sent: list[Alert] = []
    for alert in alerts:
        last = history.last_sent(alert.fingerprint)
        if last is not None and now - last < cooldown:
            logger.info("alert %s already sent at %s; quiet until the cool-down ends", alert.fingerprint, last)
            continue
        accepted: list[str] = []
        for sink in sinks:
            try:
                sink.send(alert)
            except Exception:
                # Any failure of one sink (a bug, a dead server) must not cost the other sinks the alert.
                logger.exception("alert sink %s failed to deliver %s", sink.name, alert.fingerprint)
                continue
            accepted.append(sink.name)
        if not accepted:
            logger.error("no sink accepted alert %s; the next run retries it", alert.fingerprint)
            continue
        try:
            history.record(alert, accepted, sent_at=now)
        except Exception:
            # It did go out: report it as sent; the price of the lost record is one repeat on the next run.
            logger.exception("alert %s was sent but could not be recorded; it may be repeated", alert.fingerprint)
        sent.append(alert)
    return sent
