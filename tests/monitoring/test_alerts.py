"""Alert rules, sinks and dispatch against real receivers: an HTTP webhook server, an SMTP server, a SQLite store."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import Engine

from autoinspect.config import AlertSettings
from autoinspect.errors import ConfigError
from autoinspect.monitoring.alerts import (
    Alert,
    AlertDeliveryError,
    AlertSink,
    EmailSink,
    LogSink,
    Severity,
    Signals,
    WebhookSink,
    dispatch,
    evaluate_rules,
    sinks_from_settings,
)
from autoinspect.store import AlertHistory, create_schema, make_engine

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
RULES = AlertSettings()
COOLDOWN = timedelta(minutes=RULES.cooldown_minutes)


# --- real receivers ---------------------------------------------------------------------------------------------


class WebhookReceiver:
    """A local HTTP server that keeps every POSTed JSON body and answers with ``status``."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                assert self.headers["Content-Type"] == "application/json"
                receiver.received.append(json.loads(body))
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


class MailCollector:
    """aiosmtpd handler that keeps every delivered message."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd hook)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[Message]:
        return [message_from_bytes(envelope.original_content or b"") for envelope in self.envelopes]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, MailCollector]]:
    collector = MailCollector()
    controller = Controller(collector, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield controller, collector
    controller.stop()


def _free_port() -> int:
    """A port nothing listens on (bound then released): a closed port for failures, a free one for aiosmtpd."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def history(tmp_path: Path) -> Iterator[AlertHistory]:
    engine: Engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    create_schema(engine)
    yield AlertHistory(engine)
    engine.dispose()


def _email_sink(controller: Controller) -> EmailSink:
    return EmailSink("127.0.0.1", controller.port, "monitor@example.com", ["ops@example.com", "ml@example.com"])


def _alert(rule: str = "input_drift", model_version: str | None = "7", severity: Severity = Severity.WARNING) -> Alert:
    return Alert(
        rule=rule,
        severity=severity,
        message="42% of the image features drifted from the reference for model 7 (alert at 30%).",
        value=0.42,
        threshold=0.3,
        model_version=model_version,
        at=T0,
    )


# --- rules --------------------------------------------------------------------------------------------------------

WARNING_RULES = [
    ("drift_share", "input_drift", RULES.drift_share),
    ("none_rate_change", "none_rate_change", RULES.none_rate_change),
    ("review_rate", "review_rate", RULES.max_review_rate),
    ("p95_latency_ms", "p95_latency", RULES.max_p95_latency_ms),
]


@pytest.mark.parametrize(("field", "rule", "threshold"), WARNING_RULES)
def test_warning_rules_fire_at_and_above_the_threshold_and_not_below(field: str, rule: str, threshold: float) -> None:
    below = evaluate_rules(Signals(**{field: math.nextafter(threshold, 0.0)}), RULES, now=T0)
    assert below == []
    for value in (threshold, min(threshold * 1.5, 1.0) if field != "p95_latency_ms" else threshold * 1.5):
        alerts = evaluate_rules(Signals(**{field: value}, model_version="7"), RULES, now=T0)
        assert [(alert.rule, alert.severity) for alert in alerts] == [(rule, Severity.WARNING)]
        (alert,) = alerts
        assert (alert.value, alert.threshold, alert.model_version, alert.at) == (value, threshold, "7", T0)
        assert alert.fingerprint == f"{rule}@7"


def test_thresholds_come_from_the_settings() -> None:
    strict = AlertSettings(drift_share=0.1, none_rate_change=0.05, max_review_rate=0.2, max_p95_latency_ms=100.0)
    signals = Signals(drift_share=0.15, none_rate_change=0.06, review_rate=0.25, p95_latency_ms=150.0)
    assert evaluate_rules(signals, RULES, now=T0) == []
    fired = evaluate_rules(signals, strict, now=T0)
    assert [alert.rule for alert in fired] == ["input_drift", "none_rate_change", "review_rate", "p95_latency"]
    assert [alert.threshold for alert in fired] == [0.1, 0.05, 0.2, 100.0]


def test_messages_are_one_sentence_with_the_numbers() -> None:
    signals = Signals(
        drift_share=0.42, none_rate_change=0.2, review_rate=0.75, p95_latency_ms=2500.0, model_version="7"
    )
    messages = {alert.rule: alert.message for alert in evaluate_rules(signals, RULES, now=T0)}
    assert messages == {
        "input_drift": "42% of the image features drifted from the reference for model 7 (alert at 30%).",
        "none_rate_change": 'The share of "None" answers for model 7 moved by 20.0 points against the reference '
        "window (alert at 15.0 points).",
        "review_rate": "75% of the answers for model 7 went to the review queue (alert at 50%).",
        "p95_latency": "p95 latency for model 7 is 2500 ms (alert at 2000 ms).",
    }


def test_unmeasured_signals_raise_nothing() -> None:
    assert evaluate_rules(Signals(), RULES, now=T0) == []
    assert evaluate_rules(Signals(model_version="7"), AlertSettings(drift_share=0.0, max_review_rate=0.0), now=T0) == []


def test_each_performance_drop_past_the_limit_is_a_critical_alert_of_its_own() -> None:
    drops = {"recall/dent": 0.25, "precision/scratch": 0.10, "recall/scratch": 0.0999, "precision/dent": -0.3}
    alerts = evaluate_rules(Signals(performance_drops=drops, model_version="7"), RULES, now=T0)
    assert [(alert.rule, alert.severity, alert.value) for alert in alerts] == [
        ("performance:precision/scratch", Severity.CRITICAL, 0.10),
        ("performance:recall/dent", Severity.CRITICAL, 0.25),
    ]
    assert {alert.fingerprint for alert in alerts} == {"performance:precision/scratch@7", "performance:recall/dent@7"}
    assert alerts[1].message == (
        "recall/dent on reviewed photos for model 7 is 0.250 below the offline test figure (alert at 0.100)."
    )


def test_unmeasured_rates_are_not_confused_with_zero() -> None:
    with pytest.raises(ValueError, match="drift_share"):
        Signals(drift_share=1.5)
    with pytest.raises(ValueError, match="review_rate"):
        Signals(review_rate=-0.1)


def test_fingerprint_is_rule_and_model_version() -> None:
    assert _alert().fingerprint == _alert().model_copy(update={"at": T0 + timedelta(days=1)}).fingerprint
    assert _alert().fingerprint != _alert(model_version="8").fingerprint
    assert _alert().fingerprint != _alert(rule="review_rate").fingerprint
    assert _alert(model_version=None).fingerprint == "input_drift@"
    long_a, long_b = _alert(rule="performance:" + "a" * 200), _alert(rule="performance:" + "a" * 199 + "b")
    assert len(long_a.fingerprint) == 128 and long_a.fingerprint != long_b.fingerprint


# --- sinks --------------------------------------------------------------------------------------------------------


def test_log_sink_logs_warnings_and_critical_alerts_as_errors(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink()
    with caplog.at_level(logging.WARNING, logger="autoinspect.monitoring.alerts"):
        sink.send(_alert())
        sink.send(_alert(rule="performance:recall/dent", severity=Severity.CRITICAL))
    assert [(record.levelno, record.getMessage()) for record in caplog.records] == [
        (logging.WARNING, f"ALERT input_drift [input_drift@7]: {_alert().message}"),
        (logging.ERROR, f"ALERT performance:recall/dent [performance:recall/dent@7]: {_alert().message}"),
    ]


def test_webhook_sink_posts_slack_compatible_json(webhook: WebhookReceiver) -> None:
    WebhookSink(webhook.url).send(_alert(rule="performance:recall/dent", severity=Severity.CRITICAL))
    (payload,) = webhook.received
    assert payload["text"] == f"[AutoInspect] CRITICAL: performance:recall/dent — {_alert().message}"
    (attachment,) = payload["attachments"]
    assert attachment["color"] == "danger"
    fields = {field["title"]: field["value"] for field in attachment["fields"]}
    assert fields == {"rule": "performance:recall/dent", "model version": "7", "value": "0.42", "threshold": "0.3"}
    assert attachment["ts"] == int(T0.timestamp())


@pytest.mark.parametrize("status", [500, 404, 302])
def test_webhook_answering_non_2xx_is_a_failure(webhook: WebhookReceiver, status: int) -> None:
    webhook.status = status
    with pytest.raises(AlertDeliveryError, match=f"HTTP {status}") as failure:
        WebhookSink(webhook.url).send(_alert())
    assert "secret" not in str(failure.value)
    assert len(webhook.received) == 1


def test_webhook_on_a_closed_port_is_a_failure() -> None:
    with pytest.raises(AlertDeliveryError, match="unreachable"):
        WebhookSink(f"http://127.0.0.1:{_free_port()}/hook", timeout=2.0).send(_alert())


def test_email_sink_delivers_subject_and_body(smtp_server: tuple[Controller, MailCollector]) -> None:
    controller, collector = smtp_server
    _email_sink(controller).send(_alert(rule="performance:recall/dent", severity=Severity.CRITICAL))
    (envelope,) = collector.envelopes
    assert envelope.mail_from == "monitor@example.com"
    assert envelope.rcpt_tos == ["ops@example.com", "ml@example.com"]
    (message,) = collector.messages()
    assert message["Subject"] == "[AutoInspect] CRITICAL: performance:recall/dent"
    assert message["To"] == "ops@example.com, ml@example.com"
    body = message.get_payload(decode=True)
    assert isinstance(body, bytes)
    text = body.decode()
    assert _alert().message in text and "threshold: 0.3" in text and "model version: 7" in text


def test_email_to_a_closed_port_is_a_failure() -> None:
    sink = EmailSink("127.0.0.1", _free_port(), "monitor@example.com", ["ops@example.com"], timeout=2.0)
    with pytest.raises(AlertDeliveryError, match=r"e-mail via 127\.0\.0\.1"):
        sink.send(_alert())


def test_sinks_from_settings_log_always_others_when_configured(webhook: WebhookReceiver) -> None:
    assert [sink.name for sink in sinks_from_settings(AlertSettings())] == ["log"]
    configured = AlertSettings(webhook_url=webhook.url, smtp_host="127.0.0.1", smtp_recipients=["ops@example.com"])
    assert [sink.name for sink in sinks_from_settings(configured)] == ["log", "webhook", "email"]
    with pytest.raises(ConfigError, match="no recipients"):
        sinks_from_settings(AlertSettings(smtp_host="127.0.0.1"))
    with pytest.raises(ConfigError, match="webhook URL"):
        sinks_from_settings(AlertSettings(webhook_url="hooks.slack.com/services/x"))


# --- dispatch -----------------------------------------------------------------------------------------------------


def test_the_same_alert_is_sent_once_per_cool_down(webhook: WebhookReceiver, history: AlertHistory) -> None:
    sinks: list[AlertSink] = [WebhookSink(webhook.url)]

    def run(now: datetime, alert: Alert | None = None) -> list[Alert]:
        return dispatch([alert or _alert()], sinks=sinks, history=history, cooldown=COOLDOWN, now=now)

    assert run(T0) == [_alert()]
    assert run(T0 + COOLDOWN - timedelta(seconds=1)) == []
    assert len(webhook.received) == 1
    assert run(T0 + COOLDOWN) == [_alert()]
    assert run(T0 + COOLDOWN + timedelta(minutes=1)) == []
    new_model = _alert(model_version="8")
    assert run(T0 + COOLDOWN + timedelta(minutes=2), new_model) == [new_model]
    assert len(webhook.received) == 3
    sent = history.between(T0, T0 + timedelta(days=1))
    assert [(alert.fingerprint, alert.sent_at, alert.sinks) for alert in sent] == [
        ("input_drift@7", T0, ["webhook"]),
        ("input_drift@7", T0 + COOLDOWN, ["webhook"]),
        ("input_drift@8", T0 + COOLDOWN + timedelta(minutes=2), ["webhook"]),
    ]


def test_duplicates_in_one_run_are_sent_once(webhook: WebhookReceiver, history: AlertHistory) -> None:
    sinks: list[AlertSink] = [WebhookSink(webhook.url)]
    sent = dispatch(
        [_alert(), _alert(), _alert(rule="review_rate")], sinks=sinks, history=history, cooldown=COOLDOWN, now=T0
    )
    assert [alert.rule for alert in sent] == ["input_drift", "review_rate"]
    assert len(webhook.received) == 2


def test_zero_cool_down_sends_every_time(webhook: WebhookReceiver, history: AlertHistory) -> None:
    sinks: list[AlertSink] = [WebhookSink(webhook.url)]
    for _ in range(3):
        assert dispatch([_alert()], sinks=sinks, history=history, cooldown=timedelta(0), now=T0) == [_alert()]
    assert len(webhook.received) == 3


@pytest.mark.parametrize("failure", ["http-500", "closed-port"])
def test_a_failing_sink_does_not_stop_the_others(
    failure: str,
    webhook: WebhookReceiver,
    smtp_server: tuple[Controller, MailCollector],
    history: AlertHistory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller, collector = smtp_server
    webhook.status = 500
    url = webhook.url if failure == "http-500" else f"http://127.0.0.1:{_free_port()}/hook"
    sinks: list[AlertSink] = [WebhookSink(url, timeout=2.0), LogSink(), _email_sink(controller)]
    with caplog.at_level(logging.WARNING, logger="autoinspect.monitoring.alerts"):
        sent = dispatch([_alert()], sinks=sinks, history=history, cooldown=COOLDOWN, now=T0)
    assert sent == [_alert()]
    assert len(collector.envelopes) == 1
    messages = [record.getMessage() for record in caplog.records]
    assert "alert sink webhook failed to deliver input_drift@7" in messages
    assert f"ALERT input_drift [input_drift@7]: {_alert().message}" in messages
    (stored,) = history.between(T0, T0 + timedelta(seconds=1))
    assert stored.sinks == ["log", "email"]


def test_an_alert_nobody_accepted_is_retried_next_run(webhook: WebhookReceiver, history: AlertHistory) -> None:
    webhook.status = 500
    sinks: list[AlertSink] = [WebhookSink(webhook.url)]
    assert dispatch([_alert()], sinks=sinks, history=history, cooldown=COOLDOWN, now=T0) == []
    assert history.last_sent("input_drift@7") is None
    webhook.status = 200
    later = T0 + timedelta(minutes=5)
    assert dispatch([_alert()], sinks=sinks, history=history, cooldown=COOLDOWN, now=later) == [_alert()]
    assert len(webhook.received) == 2
    assert history.last_sent("input_drift@7") == later


def test_rules_to_receivers_end_to_end(
    webhook: WebhookReceiver, smtp_server: tuple[Controller, MailCollector], history: AlertHistory
) -> None:
    controller, collector = smtp_server
    settings = AlertSettings(
        webhook_url=webhook.url,
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        smtp_recipients=["ops@example.com"],
    )
    signals = Signals(drift_share=0.5, performance_drops={"recall/dent": 0.3}, model_version="7")
    alerts = evaluate_rules(signals, settings, now=T0)
    sent = dispatch(alerts, sinks=sinks_from_settings(settings), history=history, cooldown=COOLDOWN, now=T0)
    assert [alert.rule for alert in sent] == ["input_drift", "performance:recall/dent"]
    assert [payload["text"].split(" — ")[0] for payload in webhook.received] == [
        "[AutoInspect] WARNING: input_drift",
        "[AutoInspect] CRITICAL: performance:recall/dent",
    ]
    assert [message["Subject"] for message in collector.messages()] == [
        "[AutoInspect] WARNING: input_drift",
        "[AutoInspect] CRITICAL: performance:recall/dent",
    ]
    assert [alert.sinks for alert in history.between(T0, T0 + timedelta(seconds=1))] == [
        ["log", "webhook", "email"]
    ] * 2
