"""What the pipelines left in the home folder, read for the UI: monitoring runs, dataset versions, reports.

Reports written on other hosts (Airflow workers) are mirrored into this home first when ``storage.reports_url``
is set (``autoinspect.shared_reports``); when object storage cannot be reached the pages show what this home has.

Summaries are parsed into small models of just the fields the pages show, ignoring the rest, so a monitoring run
written by a newer release still renders; an unreadable file is logged and skipped, never fatal to a page.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from autoinspect.config import Settings
from autoinspect.data.versions import DatasetStore
from autoinspect.shared_reports import mirror
from autoinspect.store import PredictionLog, Route, open_store

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
DRIFT_REPORTS = ("input_drift.html", "output_drift.html")
VALIDATION_JSON = "report.json"
VALIDATION_HTML = "report.html"
PROFILE_HTML = "profile.html"
LABEL_ISSUES_JSON = "label_issues.json"
LABEL_ISSUES_HTML = "label_issues.html"
LABEL_ISSUES_SHEET = "contact_sheet.png"
KPI_RATES = ("automation_rate", "review_rate", "override_rate", "none_rate", "retake_rate")


class LiveFigures(BaseModel):
    """What the prediction log says about the last hours, before (and between) monitoring runs."""

    hours: float
    answered: int
    verdicts: dict[str, int]
    """Answers per verdict: ``None``, ``Retake`` or the classes found, e.g. ``dent, scratch``."""
    review_share: float | None
    latency_p95_ms: float | None


def mirror_reports(settings: Settings, folder: Path) -> None:
    """Fetch the published reports ``folder`` lacks; when the object store fails (down, credentials refused),
    log it and carry on with the local copies, so a page never breaks for lack of the newest report."""
    try:
        mirror(settings, folder)
    except Exception as error:  # boto3's and the network's errors alike: the page must still render
        logger.warning("published reports under %s not fetched: %s", folder, error)


def live_figures(settings: Settings, hours: float = 1.0) -> LiveFigures:
    """Answers of the last ``hours`` straight from the prediction log (shadow copies left out)."""
    until = datetime.now(UTC)
    with open_store(settings.store_url) as engine:
        entries = [
            e
            for e in PredictionLog(engine).between(until - timedelta(hours=hours), until)
            if e.route is not Route.SHADOW
        ]
    verdicts = Counter(entry.verdict_text for entry in entries)
    return LiveFigures(
        hours=hours,
        answered=len(entries),
        verdicts=dict(verdicts.most_common()),
        review_share=sum(e.needs_review for e in entries) / len(entries) if entries else None,
        latency_p95_ms=float(np.percentile([e.latency_ms for e in entries], 95)) if entries else None,
    )


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SampleFigures(_Lenient):
    sampled: int = 0
    reviewed: int = 0
    overridden: int = 0
    override_rate: float | None = None


class KpiFigures(_Lenient):
    answered: int = 0
    automation_rate: float | None = None
    review_rate: float | None = None
    override_rate: float | None = None
    none_rate: float | None = None
    retake_rate: float | None = None
    latency_p95_ms: float | None = None
    samples: dict[str, SampleFigures] = {}


class SentAlert(_Lenient):
    rule: str
    severity: str
    message: str
    value: float
    threshold: float


class SignalFigures(_Lenient):
    drift_share: float | None = None


class MonitoringRun(_Lenient):
    """One ``summary.json``, with the folder it was read from."""

    folder: Path
    window_end: datetime
    model_version: str | None = None
    kpis: KpiFigures
    signals: SignalFigures = SignalFigures()
    alerts_sent: list[SentAlert] = []


def monitoring_runs(settings: Settings, last: int) -> list[MonitoringRun]:
    """The ``last`` monitoring runs, oldest first (run folders are UTC stamps, so names sort by time)."""
    root = settings.monitoring_dir
    mirror_reports(settings, root)
    if not root.is_dir():
        return []
    folders = sorted(path for path in root.iterdir() if (path / SUMMARY_FILE).is_file())[-last:]
    runs: list[MonitoringRun] = []
    for folder in folders:
        payload = _read_json(folder / SUMMARY_FILE)
        if payload is None:
            continue
        try:
            runs.append(MonitoringRun.model_validate({**payload, "folder": folder}))
        except ValidationError as error:
            logger.warning("skipping monitoring summary %s: %s", folder, error)
    return runs


def kpi_rows(runs: list[MonitoringRun]) -> list[dict[str, Any]]:
    """One row per run: window end, the KPI rates, p95 latency and the input drift share."""
    return [
        {
            "window_end": run.window_end,
            **{name: getattr(run.kpis, name) for name in KPI_RATES},
            "latency_p95_ms": run.kpis.latency_p95_ms,
            "drift_share": run.signals.drift_share,
            "answered": run.kpis.answered,
        }
        for run in runs
    ]


def alert_rows(runs: list[MonitoringRun]) -> list[dict[str, Any]]:
    """Every alert sent, newest run first."""
    return [{"window_end": run.window_end, **alert.model_dump()} for run in reversed(runs) for alert in run.alerts_sent]


def dataset_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every dataset version, newest first per name: images and boxes per split, and its profile if one exists."""
    store = DatasetStore.for_settings(settings)
    mirror_reports(settings, settings.reports_dir / "profile")
    rows: list[dict[str, Any]] = []
    for name in store.names():
        for manifest in reversed(store.history(name)):
            splits = manifest.split_counts()
            boxes = manifest.box_counts()
            rows.append(
                {
                    "version": manifest.ref.short,
                    "created_at": manifest.created_at,
                    "images": len(manifest.items),
                    **{f"images/{split}": count for split, count in sorted(splits.items())},
                    **{f"boxes/{split}": sum(counts.values()) for split, counts in sorted(boxes.items())},
                    "excluded": len(manifest.excluded),
                    "message": manifest.message,
                    "profile": str(profile) if (profile := profile_html(settings, manifest.digest)) else None,
                }
            )
    return rows


def profile_html(settings: Settings, digest: str) -> Path | None:
    path = settings.reports_dir / "profile" / digest[:12] / PROFILE_HTML
    return path if path.is_file() else None


def latest_validation(settings: Settings) -> tuple[Path, dict[str, Any]] | None:
    """The newest validation report's folder and its JSON, or ``None`` when validation never ran."""
    root = settings.reports_dir / "validation"
    mirror_reports(settings, root)
    if not root.is_dir():
        return None
    for folder in sorted(root.iterdir(), reverse=True):
        payload = _read_json(folder / VALIDATION_JSON)
        if payload is not None:
            return folder, payload
    return None


def latest_label_issues(settings: Settings) -> tuple[Path, dict[str, Any]] | None:
    """The newest ``autoinspect data issues`` report's folder and its JSON, or ``None`` when it never ran."""
    root = settings.label_issues_dir
    mirror_reports(settings, root)
    found = sorted(root.glob(f"*/{LABEL_ISSUES_JSON}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in found:
        payload = _read_json(path)
        if payload is not None:
            return path.parent, payload
    return None


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        logger.warning("unreadable %s: %s", path, error)
        return None
    return payload if isinstance(payload, dict) else None
