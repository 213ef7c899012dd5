"""The monitoring job: one window of the prediction log turned into KPIs, drift reports, performance and alerts.

Each run reads the window ``[until - hours, until)`` and leaves a folder under ``settings.monitoring_dir``
(``input_drift.html``, ``output_drift.html``, their JSON, ``summary.json``) so that every figure an alert quotes
can be opened and checked later. It compares the window with three references:

- the champion's ``reference_features.csv`` (its training photos) for the photos themselves (input drift);
- the window of the same length just before it for the answers (output drift, change of the "None" rate);
- the champion's offline test figures for its answers that inspectors reviewed in the window (performance).

A comparison on a handful of rows means nothing, so each one is skipped, with the reason in the report, when its
side has fewer than ``monitoring.min_window_size`` rows; a skipped comparison raises no alert. The alerts go
through :mod:`autoinspect.monitoring.alerts`, whose history keeps a repeated problem quiet for the cool-down.

Performance is scored on the reviewed answers exactly as served: the logged detections already passed the
model's thresholds (the Detector reports only those), so they are evaluated at threshold 0 for every class,
which reproduces the served verdicts even when a replica ran with overridden thresholds. Average precision
needs the sub-threshold candidates, which are not logged, so only the operating-point and verdict figures are
compared. Reviewed photos are not a random sample (the queue holds the uncertain answers), so a gap to the
offline figures is expected; the alert threshold (``alerts.min_ap50_drop``) is what absorbs it.

Example::

    report = run_monitoring(settings, hours=24)
    report.summary_json, report.kpis.automation_rate, [alert.rule for alert in report.alerts_sent]
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Engine

from autoinspect.config import Settings
from autoinspect.data.features import FeatureValue
from autoinspect.evaluation import EvalImage, MetricName, evaluate, metric_key
from autoinspect.monitoring.alerts import Alert, Signals, dispatch, evaluate_rules, sinks_from_settings
from autoinspect.monitoring.drift import IMAGE_FEATURE_COLUMNS, DriftResult, features_frame, input_drift, output_drift
from autoinspect.monitoring.kpis import Kpis, compute_kpis
from autoinspect.registry.aliases import CHAMPION
from autoinspect.registry.mlflow_registry import RegisteredModel, download_model_files, get_by_alias
from autoinspect.shared_reports import new_report_folder, publish
from autoinspect.store import (
    AlertHistory,
    PredictionEntry,
    PredictionLog,
    Review,
    ReviewLog,
    Route,
    open_store,
)

logger = logging.getLogger(__name__)

INPUT_DRIFT = "input_drift"
OUTPUT_DRIFT = "output_drift"
SUMMARY_FILE = "summary.json"
DEFAULT_SIZE = 1000
"""Pixels assumed for a reviewed photo logged without features: boxes are normalised and IoU does not depend on
the scale, so the size only moves a box between the size buckets of the slices, which are not compared."""


class DriftSection(BaseModel):
    """A drift comparison, or why it was not made."""

    result: DriftResult | None = None
    skipped: str | None = None


class Performance(BaseModel):
    """The champion's figures on the answers reviewed in the window against its offline test figures."""

    model_version: str | None = None
    reviewed: int = 0
    """Reviewed answers of this version that were scored."""
    online: dict[str, float] = Field(default_factory=dict)
    offline: dict[str, float] = Field(default_factory=dict)
    drops: dict[str, float] = Field(default_factory=dict)
    """Metric key -> offline minus online (positive is worse), for every key both sides have."""
    skipped: str | None = None


class MonitoringReport(BaseModel):
    """Everything one monitoring run measured and sent; ``summary.json`` holds the same."""

    folder: Path
    summary_json: Path
    window_start: AwareDatetime
    window_end: AwareDatetime
    model_version: str | None
    """The champion the window was compared with; ``None`` when the registry has none."""
    kpis: Kpis
    reference_none_rate: float | None
    """The "None" rate of the window before, which ``signals.none_rate_change`` is measured against."""
    input_drift: DriftSection
    output_drift: DriftSection
    performance: Performance
    signals: Signals
    alerts_raised: list[Alert]
    alerts_sent: list[Alert]
    """The raised alerts that went out (the others were within their cool-down, or no sink took them)."""


def run_monitoring(
    settings: Settings, *, until: datetime | None = None, hours: float | None = None
) -> MonitoringReport:
    """Monitor the window of ``hours`` (default ``monitoring.window_hours``) ending at ``until`` (default now).

    Raises:
        ValueError: ``until`` is naive or ``hours`` is not positive.
    """
    now = datetime.now(UTC)
    end = until or now
    if end.tzinfo is None:
        raise ValueError(f"until must be tz-aware, got {end.isoformat()}")
    window = timedelta(hours=hours if hours is not None else settings.monitoring.window_hours)
    if window <= timedelta(0):
        raise ValueError(f"the window must be positive, got {hours} hours")
    start = end - window
    with open_store(settings.store_url) as engine:
        return _monitor(settings, engine, start, end, now)


def _monitor(settings: Settings, engine: Engine, start: datetime, end: datetime, now: datetime) -> MonitoringReport:
    config = settings.monitoring
    log = PredictionLog(engine)
    entries = log.between(start, end)
    answers = _answers(entries)
    previous = _answers(log.between(start - (end - start), start))
    reviews = ReviewLog(engine).between(start, end)
    kpis = compute_kpis(entries, reviews, window=end - start)
    reference_kpis = compute_kpis(previous, [], window=end - start)
    champion = get_by_alias(settings, CHAMPION)
    folder = new_report_folder(settings.monitoring_dir, now=now)
    logger.info("monitoring %s to %s: %d answers, %d reviews -> %s", start, end, len(answers), len(reviews), folder)

    inputs = _input_drift(settings, champion, answers, folder)
    outputs = _output_drift(settings, previous, answers, folder)
    performance = _performance(settings, log, champion, answers, reviews)
    enough = len(answers) >= config.min_window_size
    signals = Signals(
        drift_share=inputs.result.drift_share if inputs.result else None,
        none_rate_change=(
            abs(kpis.none_rate - reference_kpis.none_rate)
            if outputs.result and kpis.none_rate is not None and reference_kpis.none_rate is not None
            else None
        ),
        review_rate=kpis.review_rate if enough else None,
        p95_latency_ms=kpis.latency_p95_ms if enough else None,
        performance_drops=performance.drops,
        model_version=str(champion.version) if champion else None,
    )
    rules = config.alerts
    raised = evaluate_rules(signals, rules, now=now)
    sent = dispatch(
        raised,
        sinks=sinks_from_settings(rules),
        history=AlertHistory(engine),
        cooldown=timedelta(minutes=rules.cooldown_minutes),
        now=now,
    )
    report = MonitoringReport(
        folder=folder,
        summary_json=folder / SUMMARY_FILE,
        window_start=start,
        window_end=end,
        model_version=signals.model_version,
        kpis=kpis,
        reference_none_rate=reference_kpis.none_rate,
        input_drift=inputs,
        output_drift=outputs,
        performance=performance,
        signals=signals,
        alerts_raised=raised,
        alerts_sent=sent,
    )
    report.summary_json.write_text(report.model_dump_json(indent=2), encoding="utf-8")
    publish(settings, folder)
    logger.info("monitoring: %d alerts raised, %d sent; summary %s", len(raised), len(sent), report.summary_json)
    return report


def _answers(entries: Sequence[PredictionEntry]) -> list[PredictionEntry]:
    """What was returned to callers: shadow copies duplicate a photo and were never answered."""
    return [entry for entry in entries if entry.route is not Route.SHADOW]


def _input_drift(
    settings: Settings, champion: RegisteredModel | None, answers: Sequence[PredictionEntry], folder: Path
) -> DriftSection:
    """The window's photo features against the champion's reference table."""
    minimum = settings.monitoring.min_window_size
    current = features_frame(answers)
    if len(current) < minimum:
        return _skip(INPUT_DRIFT, f"{len(current)} answers with features in the window, fewer than {minimum}")
    if champion is None:
        return _skip(INPUT_DRIFT, "the registry has no champion, so no reference features")
    reference = _reference_features(settings, champion)
    if reference is None:
        return _skip(INPUT_DRIFT, f"model version {champion.version} was registered without reference features")
    columns = [column for column in IMAGE_FEATURE_COLUMNS if column in reference.columns]
    if not columns:
        return _skip(INPUT_DRIFT, f"the reference features of version {champion.version} have no image columns")
    if len(reference) < minimum:
        return _skip(INPUT_DRIFT, f"the reference features have {len(reference)} rows, fewer than {minimum}")
    result = input_drift(
        reference,
        current,
        columns=columns,
        pvalue=settings.monitoring.drift_method_pvalue,
        drift_share=settings.monitoring.alerts.drift_share,
        out_dir=folder,
        name=INPUT_DRIFT,
    )
    return DriftSection(result=result)


def _reference_features(settings: Settings, champion: RegisteredModel) -> pd.DataFrame | None:
    with tempfile.TemporaryDirectory(prefix="autoinspect-monitoring-") as tmp:
        files = download_model_files(settings, champion.version, Path(tmp))
        if files.reference_features is None:
            return None
        return pd.read_csv(files.reference_features)


def _output_drift(
    settings: Settings, previous: Sequence[PredictionEntry], answers: Sequence[PredictionEntry], folder: Path
) -> DriftSection:
    """The window's answers against those of the window before it."""
    minimum = settings.monitoring.min_window_size
    if len(answers) < minimum:
        return _skip(OUTPUT_DRIFT, f"{len(answers)} answers in the window, fewer than {minimum}")
    if len(previous) < minimum:
        return _skip(OUTPUT_DRIFT, f"{len(previous)} answers in the reference window before it, fewer than {minimum}")
    result = output_drift(
        previous,
        answers,
        pvalue=settings.monitoring.drift_method_pvalue,
        drift_share=settings.monitoring.alerts.drift_share,
        out_dir=folder,
        name=OUTPUT_DRIFT,
    )
    return DriftSection(result=result)


def _performance(
    settings: Settings,
    log: PredictionLog,
    champion: RegisteredModel | None,
    answers: Sequence[PredictionEntry],
    reviews: Sequence[Review],
) -> Performance:
    """The champion's operating-point and verdict figures on its reviewed answers, against its offline ones."""
    if champion is None:
        return _skip_performance("the registry has no champion to compare with", None)
    version = str(champion.version)
    images = _reviewed_images(log, answers, reviews, version)
    minimum = settings.monitoring.min_window_size
    if len(images) < minimum:
        return _skip_performance(f"{len(images)} reviewed answers of version {version}, fewer than {minimum}", version)
    classes = settings.classes
    try:
        result = evaluate(images, classes, dict.fromkeys(classes, 0.0), error_count=0)
    except ValueError as error:  # a label outside settings.classes: report it, keep the rest of the run
        return _skip_performance(f"reviewed answers cannot be scored: {error}", version)
    keys = _compared_keys(classes)
    flat = result.flat_metrics()
    online = {key: flat[key] for key in keys if key in flat}
    offline = {key: champion.metrics[key] for key in keys if key in champion.metrics}
    drops = {key: offline[key] - online[key] for key in keys if key in online and key in offline}
    return Performance(model_version=version, reviewed=len(images), online=online, offline=offline, drops=drops)


def _reviewed_images(
    log: PredictionLog, answers: Sequence[PredictionEntry], reviews: Sequence[Review], version: str
) -> list[EvalImage]:
    """Each review of an answer by ``version`` as an evaluator photo: the review's truth, the served detections."""
    served = {entry.request_id: entry for entry in answers}
    images = []
    for review in reviews:
        entry = served.get(review.request_id) or log.get(review.request_id)
        if entry is None or entry.route is Route.SHADOW or entry.model_version != version:
            continue
        features = entry.features or {}
        images.append(
            EvalImage(
                image_id=entry.request_id,
                width=_pixels(features.get("width")),
                height=_pixels(features.get("height")),
                truth=review.labels,
                predictions=entry.detections,
            )
        )
    return images


def _pixels(value: FeatureValue) -> int:
    return int(value) if isinstance(value, int | float) and value >= 1 else DEFAULT_SIZE


def _compared_keys(classes: Sequence[str]) -> list[str]:
    """Per-class box precision and recall, and the two verdict figures the business reads."""
    per_class = [metric_key(name, label) for label in classes for name in (MetricName.PRECISION, MetricName.RECALL)]
    return [*per_class, metric_key(MetricName.DAMAGED_CAUGHT), metric_key(MetricName.CLEAN_NONE_RATE)]


def _skip(name: str, reason: str) -> DriftSection:
    logger.info("%s skipped: %s", name, reason)
    return DriftSection(skipped=reason)


def _skip_performance(reason: str, version: str | None) -> Performance:
    logger.info("performance skipped: %s", reason)
    return Performance(model_version=version, skipped=reason)
